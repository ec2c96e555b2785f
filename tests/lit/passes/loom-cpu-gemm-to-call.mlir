// RUN: loom-opt %s -split-input-file -loom-cpu-gemm-to-call -canonicalize -cse | FileCheck %s --enable-var-scope
// RUN: loom-opt %s -split-input-file -loom-cpu-gemm-to-call=threads=2 -canonicalize -cse | FileCheck %s --check-prefix=TEAM

// (canonicalize folds the strided metadata of static layouts to constants.)

// Tests that a matmul on buffers becomes one loom_sgemm call with sizes
// (batch 1, M 8, N 4, K 16), each operand's address and row/column strides
// from its strided metadata, and accumulate = 0 for loom.zero_init.
// CHECK-LABEL: func.func private @loom_sgemm(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64)
// CHECK-LABEL: func.func @matmul
// CHECK-SAME: (%[[A:.*]]: memref<8x16xf32>, %[[B:.*]]: memref<16x4xf32>, %[[C:.*]]: memref<8x4xf32>)
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : i64
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : i64
// CHECK-DAG: %[[C4:.*]] = arith.constant 4 : i64
// CHECK-DAG: %[[C8:.*]] = arith.constant 8 : i64
// CHECK-DAG: %[[C16:.*]] = arith.constant 16 : i64
// CHECK: %[[PA:.*]] = memref.extract_aligned_pointer_as_index %[[A]]
// CHECK: %[[IA:.*]] = arith.index_cast %[[PA]] : index to i64
// CHECK: %[[PB:.*]] = memref.extract_aligned_pointer_as_index %[[B]]
// CHECK: %[[IB:.*]] = arith.index_cast %[[PB]] : index to i64
// CHECK: %[[PC:.*]] = memref.extract_aligned_pointer_as_index %[[C]]
// CHECK: %[[IC:.*]] = arith.index_cast %[[PC]] : index to i64
// CHECK: call @loom_sgemm(%[[C1]], %[[C8]], %[[C4]], %[[C16]], %[[IA]], %[[C0]], %[[C16]], %[[C1]], %[[IB]], %[[C0]], %[[C4]], %[[C1]], %[[IC]], %[[C0]], %[[C4]], %[[C0]], %[[C1]])
// CHECK-NOT: linalg.matmul
// With threads=2, the last argument asks the kernel for a team of two.
// TEAM-LABEL: func.func @matmul
// TEAM: %[[T:.*]] = arith.constant 2 : i64
// TEAM: call @loom_sgemm({{.*}}, %[[T]])
func.func @matmul(%a: memref<8x16xf32>, %b: memref<16x4xf32>, %c: memref<8x4xf32>) {
  linalg.matmul {loom.zero_init} ins(%a, %b : memref<8x16xf32>, memref<16x4xf32>) outs(%c : memref<8x4xf32>)
  return
}

// -----

// Tests that a batched contraction reading k transposed passes k's strides
// swapped (B(k, n) = k[b][n][k]: row stride 1, column stride 8) and the
// batch strides, accumulating (no loom.zero_init).
// CHECK-LABEL: func.func @scores
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : i64
// CHECK-DAG: %[[C4:.*]] = arith.constant 4 : i64
// CHECK-DAG: %[[C8:.*]] = arith.constant 8 : i64
// CHECK-DAG: %[[C16:.*]] = arith.constant 16 : i64
// CHECK-DAG: %[[C128:.*]] = arith.constant 128 : i64
// CHECK-DAG: %[[C256:.*]] = arith.constant 256 : i64
// CHECK: call @loom_sgemm(%[[C4]], %[[C16]], %[[C16]], %[[C8]], %{{.*}}, %[[C128]], %[[C8]], %[[C1]], %{{.*}}, %[[C128]], %[[C1]], %[[C8]], %{{.*}}, %[[C256]], %[[C16]], %[[C1]], %[[C1]])
#q = affine_map<(b, m, n, k) -> (b, m, k)>
#k = affine_map<(b, m, n, k) -> (b, n, k)>
#s = affine_map<(b, m, n, k) -> (b, m, n)>
func.func @scores(%q: memref<4x16x8xf32>, %k: memref<4x16x8xf32>, %s: memref<4x16x16xf32>) {
  linalg.generic {indexing_maps = [#q, #k, #s], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<4x16x8xf32>, memref<4x16x8xf32>) outs(%s : memref<4x16x16xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Tests that an output whose columns are strided in both orientations
// keeps its loop nest and gets its zero fill back.
// CHECK-LABEL: func.func @strided_out
// CHECK-NOT: call @loom_sgemm
// CHECK: linalg.fill
// CHECK-NEXT: linalg.matmul ins
// CHECK-NOT: loom.zero_init
func.func @strided_out(%a: memref<4x4xf32>, %b: memref<4x4xf32>, %c: memref<4x4xf32, strided<[8, 2]>>) {
  linalg.matmul {loom.zero_init} ins(%a, %b : memref<4x4xf32>, memref<4x4xf32>) outs(%c : memref<4x4xf32, strided<[8, 2]>>)
  return
}

// -----

// Tests that an output whose rows are contiguous (C^T stored) is computed
// as C^T = B^T A^T: M and N swap, and so do A and B with their strides.
// CHECK-LABEL: func.func @transposed_out
// CHECK-SAME: (%[[A:.*]]: memref<8x16xf32>, %[[B:.*]]: memref<16x4xf32>, %[[CT:.*]]: memref<4x8xf32>)
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : i64
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : i64
// CHECK-DAG: %[[C4:.*]] = arith.constant 4 : i64
// CHECK-DAG: %[[C8:.*]] = arith.constant 8 : i64
// CHECK-DAG: %[[C16:.*]] = arith.constant 16 : i64
// CHECK: %[[PB:.*]] = memref.extract_aligned_pointer_as_index %[[B]]
// CHECK: %[[IB:.*]] = arith.index_cast %[[PB]] : index to i64
// CHECK: %[[PA:.*]] = memref.extract_aligned_pointer_as_index %[[A]]
// CHECK: %[[IA:.*]] = arith.index_cast %[[PA]] : index to i64
// CHECK: call @loom_sgemm(%[[C1]], %[[C4]], %[[C8]], %[[C16]], %[[IB]], %[[C0]], %[[C1]], %[[C4]], %[[IA]], %[[C0]], %[[C1]], %[[C16]], %{{.*}}, %[[C0]], %[[C8]], %[[C1]], %[[C1]])
#a = affine_map<(m, n, k) -> (m, k)>
#b = affine_map<(m, n, k) -> (k, n)>
#ct = affine_map<(m, n, k) -> (n, m)>
func.func @transposed_out(%a: memref<8x16xf32>, %b: memref<16x4xf32>, %ct: memref<4x8xf32>) {
  linalg.generic {indexing_maps = [#a, #b, #ct], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<8x16xf32>, memref<16x4xf32>) outs(%ct : memref<4x8xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Tests that a GEMM paired with an epilogue calls loom_sgemm_epilogue with
// a function compiled from the generic's body (vector loads of the product
// and the bias, the body on vectors, stores) and a context
// on the stack: where this C starts in the product ([0], [1]), then each
// operand's address and strides. The generic is gone.
// CHECK-LABEL: func.func private @loom_sgemm_epilogue
// CHECK-SAME: (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, (i64, i64, i64, i64, i64) -> (), i64, i64)
// CHECK-LABEL: func.func @epilogue
// CHECK: %[[F:.*]] = constant @__loom_epilogue_epilogue_0
// CHECK: %[[CTX:.*]] = memref.alloca() : memref<11xi64>
// CHECK: call @loom_sgemm_epilogue({{.*}}, %[[F]], %{{.*}}, %{{.*}})
// TEAM-LABEL: func.func @epilogue
// TEAM: %[[T:.*]] = arith.constant 2 : i64
// TEAM: call @loom_sgemm_epilogue({{.*}}, %[[T]])
// CHECK-NOT: linalg.generic
// CHECK-LABEL: func.func private @__loom_epilogue_epilogue_0
// CHECK-SAME: (%{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64)
// Rows, then whole vectors of columns (plain loads and stores), then the
// partial vector at the end of a row (masked).
// CHECK: scf.for
// CHECK: scf.for
// CHECK: llvm.load {{.*}} -> vector<[[W:32|64]]xf32>
// CHECK: llvm.load {{.*}} -> vector<[[W]]xf32>
// CHECK: arith.addf {{.*}} : vector<[[W]]xf32>
// CHECK: math.tanh {{.*}} : vector<[[W]]xf32>
// CHECK: llvm.store {{.*}} : vector<[[W]]xf32>
// CHECK: scf.if
// CHECK: vector.create_mask
// CHECK: llvm.intr.masked.load {{.*}} -> vector<[[W]]xf32>
// CHECK: llvm.intr.masked.load {{.*}} -> vector<[[W]]xf32>
// CHECK: math.tanh {{.*}} : vector<[[W]]xf32>
// CHECK: llvm.intr.masked.store
#e_id = affine_map<(d0, d1) -> (d0, d1)>
#e_col = affine_map<(d0, d1) -> (d1)>
func.func @epilogue(%a: memref<8x16xf32>, %b: memref<16x20xf32>, %c: memref<8x20xf32>, %bias: memref<20xf32>, %y: memref<8x20xf32>) {
  linalg.matmul {loom.zero_init, loom.epilogue = 0 : i64} ins(%a, %b : memref<8x16xf32>, memref<16x20xf32>) outs(%c : memref<8x20xf32>)
  linalg.generic {indexing_maps = [#e_id, #e_col, #e_id], iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<8x20xf32>, memref<20xf32>) outs(%y : memref<8x20xf32>)
      attrs = {loom.epilogue_of = 0 : i64, loom.epilogue_operand = 0 : i64} {
  ^bb0(%in: f32, %bb: f32, %out: f32):
    %0 = arith.addf %in, %bb : f32
    %1 = math.tanh %0 : f32
    linalg.yield %1 : f32
  }
  return
}

// -----

// Tests that an epilogue whose output is the GEMM's own input (which the
// kernel reads while the epilogue runs) is not run inside the kernel: a
// plain call, and the generic stays.
// CHECK-LABEL: func.func @aliased
// CHECK: call @loom_sgemm(
// CHECK: linalg.generic
// CHECK-NOT: loom.epilogue_of
#a_id = affine_map<(d0, d1) -> (d0, d1)>
func.func @aliased(%a: memref<8x8xf32>, %b: memref<8x8xf32>, %c: memref<8x8xf32>) {
  linalg.matmul {loom.zero_init, loom.epilogue = 0 : i64} ins(%a, %b : memref<8x8xf32>, memref<8x8xf32>) outs(%c : memref<8x8xf32>)
  linalg.generic {indexing_maps = [#a_id, #a_id], iterator_types = ["parallel", "parallel"]}
      ins(%c : memref<8x8xf32>) outs(%a : memref<8x8xf32>)
      attrs = {loom.epilogue_of = 0 : i64, loom.epilogue_operand = 0 : i64} {
  ^bb0(%in: f32, %out: f32):
    %0 = math.tanh %in : f32
    linalg.yield %0 : f32
  }
  return
}
