// RUN: loom-opt %s -split-input-file -loom-cpu-tile-and-vectorize="vector-width=16" | FileCheck %s
// RUN: loom-opt %s -split-input-file -loom-cpu-tile-and-vectorize="threads=2 vector-width=16" | FileCheck %s --check-prefix=THREADS
// RUN: loom-opt %s -split-input-file -loom-cpu-tile-and-vectorize="threads=2 vector-width=16 gemm-kernel=1" | FileCheck %s --check-prefix=GEMM

// Tests that a 16x64x32 matmul is tiled to 8 rows x 32 columns x 16 of K
// (M, N, K loops in that order) and each tile becomes one vector.contract of
// vector<8x16xf32> x vector<16x32xf32> into the vector<8x32xf32> accumulator.
// CHECK-DAG: #[[$A:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[$B:.*]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-DAG: #[[$C:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @matmul
// CHECK-SAME: (%[[A:.*]]: tensor<16x32xf32>, %[[B:.*]]: tensor<32x64xf32>, %[[C:.*]]: tensor<16x64xf32>)
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG: %[[C8:.*]] = arith.constant 8 : index
// CHECK-DAG: %[[C16:.*]] = arith.constant 16 : index
// CHECK-DAG: %[[C32:.*]] = arith.constant 32 : index
// CHECK-DAG: %[[C64:.*]] = arith.constant 64 : index
// CHECK: %[[R:.*]] = scf.for %[[I:.*]] = %[[C0]] to %[[C16]] step %[[C8]] iter_args(%[[ACC0:.*]] = %[[C]]) -> (tensor<16x64xf32>)
// CHECK-NEXT: scf.for %[[J:.*]] = %[[C0]] to %[[C64]] step %[[C32]] iter_args(%[[ACC1:.*]] = %[[ACC0]]) -> (tensor<16x64xf32>)
// CHECK-NEXT: scf.for %[[K:.*]] = %[[C0]] to %[[C32]] step %[[C16]] iter_args(%[[ACC2:.*]] = %[[ACC1]]) -> (tensor<16x64xf32>)
// CHECK-NEXT: %[[AT:.*]] = tensor.extract_slice %[[A]][%[[I]], %[[K]]] [8, 16] [1, 1] : tensor<16x32xf32> to tensor<8x16xf32>
// CHECK-NEXT: %[[BT:.*]] = tensor.extract_slice %[[B]][%[[K]], %[[J]]] [16, 32] [1, 1] : tensor<32x64xf32> to tensor<16x32xf32>
// CHECK-NEXT: %[[CT:.*]] = tensor.extract_slice %[[ACC2]][%[[I]], %[[J]]] [8, 32] [1, 1] : tensor<16x64xf32> to tensor<8x32xf32>
// CHECK-NEXT: %[[VA:.*]] = vector.transfer_read %[[AT]][%[[C0]], %[[C0]]], %{{.*}} {in_bounds = [true, true]} : tensor<8x16xf32>, vector<8x16xf32>
// CHECK-NEXT: %[[VB:.*]] = vector.transfer_read %[[BT]][%[[C0]], %[[C0]]], %{{.*}} {in_bounds = [true, true]} : tensor<16x32xf32>, vector<16x32xf32>
// CHECK-NEXT: %[[VC:.*]] = vector.transfer_read %[[CT]][%[[C0]], %[[C0]]], %{{.*}} {in_bounds = [true, true]} : tensor<8x32xf32>, vector<8x32xf32>
// CHECK-NEXT: %[[VR:.*]] = vector.contract {indexing_maps = [#[[$A]], #[[$B]], #[[$C]]], iterator_types = ["parallel", "parallel", "reduction"], kind = #vector.kind<add>} %[[VA]], %[[VB]], %[[VC]] : vector<8x16xf32>, vector<16x32xf32> into vector<8x32xf32>
// CHECK-NEXT: %[[W:.*]] = vector.transfer_write %[[VR]], %[[CT]][%[[C0]], %[[C0]]] {in_bounds = [true, true]} : vector<8x32xf32>, tensor<8x32xf32>
// CHECK-NEXT: %[[INS:.*]] = tensor.insert_slice %[[W]] into %[[ACC2]][%[[I]], %[[J]]] [8, 32] [1, 1]
// CHECK-NEXT: scf.yield %[[INS]] : tensor<16x64xf32>
// CHECK-NOT: linalg.matmul
// CHECK: return %[[R]]
// With threads=2 its 16 x 64 x 32 = 2^15 points just reach the threshold
// for a split, into 2 chunks of 8 rows.
// THREADS-LABEL: func.func @matmul
// THREADS: scf.forall (%{{.*}}) = (0) to (16) step (8)
// THREADS: vector.contract {{.*}} : vector<8x16xf32>, vector<16x32xf32> into vector<8x32xf32>
// THREADS: tensor.parallel_insert_slice
func.func @matmul(%a: tensor<16x32xf32>, %b: tensor<32x64xf32>,
                  %c: tensor<16x64xf32>) -> tensor<16x64xf32> {
  %0 = linalg.matmul ins(%a, %b : tensor<16x32xf32>, tensor<32x64xf32>)
      outs(%c : tensor<16x64xf32>) -> tensor<16x64xf32>
  return %0 : tensor<16x64xf32>
}

// -----

// Tests that a matmul that is already one register block is vectorized
// without loops.
// CHECK-LABEL: func.func @matmul_one_block
// CHECK-NOT: scf.for
// CHECK: vector.contract {{.*}} : vector<8x16xf32>, vector<16x32xf32> into vector<8x32xf32>
// CHECK-NOT: linalg.matmul
func.func @matmul_one_block(%a: tensor<8x16xf32>, %b: tensor<16x32xf32>,
                            %c: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %0 = linalg.matmul ins(%a, %b : tensor<8x16xf32>, tensor<16x32xf32>)
      outs(%c : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %0 : tensor<8x32xf32>
}

// -----

// Tests that batch_matmul is tiled by 1 over the batch and to the same
// register blocks over M, N and K; M (8) and N (32) fit one block, so only
// the batch and K loops remain.
// CHECK-LABEL: func.func @batch_matmul
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG: %[[C2:.*]] = arith.constant 2 : index
// CHECK-DAG: %[[C16:.*]] = arith.constant 16 : index
// CHECK-DAG: %[[C32:.*]] = arith.constant 32 : index
// CHECK: scf.for %{{.*}} = %{{.*}} to %[[C2]] step %[[C1]] iter_args
// CHECK-NEXT: scf.for %{{.*}} = %{{.*}} to %[[C32]] step %[[C16]] iter_args
// CHECK: vector.contract {{.*}} : vector<1x8x16xf32>, vector<1x16x32xf32> into vector<1x8x32xf32>
// CHECK-NOT: linalg.batch_matmul
func.func @batch_matmul(%a: tensor<2x8x32xf32>, %b: tensor<2x32x32xf32>,
                        %c: tensor<2x8x32xf32>) -> tensor<2x8x32xf32> {
  %0 = linalg.batch_matmul ins(%a, %b : tensor<2x8x32xf32>, tensor<2x32x32xf32>)
      outs(%c : tensor<2x8x32xf32>) -> tensor<2x8x32xf32>
  return %0 : tensor<2x8x32xf32>
}

// -----

// Tests that an elementwise generic over 4x128 is tiled to one row and 64
// (4 x the vector width of 16) columns, read and written as vector<1x64xf32>,
// with the broadcast operand read through a permutation map.
// CHECK-DAG: #[[$BCAST:.*]] = affine_map<(d0) -> (0, d0)>
// CHECK-LABEL: func.func @elementwise
// CHECK-SAME: (%[[X:.*]]: tensor<4x128xf32>, %[[G:.*]]: tensor<128xf32>)
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG: %[[C4:.*]] = arith.constant 4 : index
// CHECK-DAG: %[[C64:.*]] = arith.constant 64 : index
// CHECK-DAG: %[[C128:.*]] = arith.constant 128 : index
// CHECK: %[[R:.*]] = scf.for %[[I:.*]] = %[[C0]] to %[[C4]] step %[[C1]]
// CHECK-NEXT: scf.for %[[J:.*]] = %[[C0]] to %[[C128]] step %[[C64]] iter_args(%[[ACC:.*]] = %{{.*}})
// CHECK-NEXT: %[[XT:.*]] = tensor.extract_slice %[[X]][%[[I]], %[[J]]] [1, 64] [1, 1] : tensor<4x128xf32> to tensor<1x64xf32>
// CHECK-NEXT: %[[GT:.*]] = tensor.extract_slice %[[G]][%[[J]]] [64] [1] : tensor<128xf32> to tensor<64xf32>
// CHECK-NEXT: %[[OT:.*]] = tensor.extract_slice %[[ACC]][%[[I]], %[[J]]] [1, 64] [1, 1]
// CHECK-NEXT: %[[VX:.*]] = vector.transfer_read %[[XT]][%[[C0]], %[[C0]]], %{{.*}} {in_bounds = [true, true]} : tensor<1x64xf32>, vector<1x64xf32>
// CHECK-NEXT: %[[VG:.*]] = vector.transfer_read %[[GT]][%[[C0]]], %{{.*}} {in_bounds = [true, true], permutation_map = #[[$BCAST]]} : tensor<64xf32>, vector<1x64xf32>
// CHECK-NEXT: %[[VM:.*]] = arith.mulf %[[VX]], %[[VG]] : vector<1x64xf32>
// CHECK-NEXT: %[[W:.*]] = vector.transfer_write %[[VM]], %[[OT]][%[[C0]], %[[C0]]] {in_bounds = [true, true]} : vector<1x64xf32>, tensor<1x64xf32>
// CHECK-NEXT: tensor.insert_slice %[[W]] into %[[ACC]][%[[I]], %[[J]]] [1, 64] [1, 1]
// CHECK-NOT: linalg.generic
// CHECK: return %[[R]]
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
func.func @elementwise(%x: tensor<4x128xf32>, %g: tensor<128xf32>)
    -> tensor<4x128xf32> {
  %e0 = tensor.empty() : tensor<4x128xf32>
  %0 = linalg.generic {indexing_maps = [#id, #row, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x, %g : tensor<4x128xf32>, tensor<128xf32>)
      outs(%e0 : tensor<4x128xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<4x128xf32>
  return %0 : tensor<4x128xf32>
}

// -----

// Tests that an innermost dim with no dividing tile (13 is prime) but no
// larger than a tile is vectorized whole, one row at a time.
// CHECK-LABEL: func.func @no_divisor
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG: %[[C7:.*]] = arith.constant 7 : index
// CHECK: scf.for %{{.*}} = %{{.*}} to %[[C7]] step %[[C1]]
// CHECK-NOT: scf.for
// CHECK: %[[V:.*]] = vector.transfer_read {{.*}} : tensor<1x13xf32>, vector<1x13xf32>
// CHECK-NEXT: math.exp %[[V]] : vector<1x13xf32>
// CHECK-NOT: linalg.generic
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @no_divisor(%x: tensor<7x13xf32>) -> tensor<7x13xf32> {
  %e0 = tensor.empty() : tensor<7x13xf32>
  %0 = linalg.generic {indexing_maps = [#id, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<7x13xf32>) outs(%e0 : tensor<7x13xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = math.exp %a : f32
    linalg.yield %m : f32
  } -> tensor<7x13xf32>
  return %0 : tensor<7x13xf32>
}

// -----

// Tests that a matmul whose dims are no larger than a register block
// (7x5x13) becomes a single vector.contract with no loops.
// CHECK-LABEL: func.func @matmul_no_divisor
// CHECK-NOT: scf.for
// CHECK: vector.contract {{.*}} : vector<7x13xf32>, vector<13x5xf32> into vector<7x5xf32>
// CHECK-NOT: linalg.matmul
func.func @matmul_no_divisor(%a: tensor<7x13xf32>, %b: tensor<13x5xf32>,
                             %c: tensor<7x5xf32>) -> tensor<7x5xf32> {
  %0 = linalg.matmul ins(%a, %b : tensor<7x13xf32>, tensor<13x5xf32>)
      outs(%c : tensor<7x5xf32>) -> tensor<7x5xf32>
  return %0 : tensor<7x5xf32>
}

// -----

// Tests that a tile that cannot be vectorized (a gather through
// tensor.extract at a computed row) stays a tiled scalar linalg.generic.
// CHECK-LABEL: func.func @gather
// CHECK: scf.for
// CHECK: %[[T:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<1x1xi32>) outs(%{{.*}} : tensor<1x1x64xf32>)
// CHECK: tensor.extract
// CHECK-NOT: vector.
#ids = affine_map<(d0, d1, d2) -> (d0, d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @gather(%table: tensor<256x64xf32>, %ids: tensor<2x16xi32>)
    -> tensor<2x16x64xf32> {
  %c0 = arith.constant 0 : index
  %c255 = arith.constant 255 : index
  %e = tensor.empty() : tensor<2x16x64xf32>
  %0 = linalg.generic {indexing_maps = [#ids, #id3],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%ids : tensor<2x16xi32>) outs(%e : tensor<2x16x64xf32>) {
  ^bb0(%in: i32, %out: f32):
    %i = arith.index_cast %in : i32 to index
    %lo = arith.maxsi %i, %c0 : index
    %row = arith.minsi %lo, %c255 : index
    %col = linalg.index 2 : index
    %v = tensor.extract %table[%row, %col] : tensor<256x64xf32>
    linalg.yield %v : f32
  } -> tensor<2x16x64xf32>
  return %0 : tensor<2x16x64xf32>
}

// -----

// Tests that with threads=2 an op with enough work (64 x 512 points) is first
// split over its outermost parallel loop into an scf.forall of 2 chunks of 32
// rows, each then tiled and vectorized as usual; without threads it is not.
// THREADS-LABEL: func.func @big
// THREADS-SAME: (%[[X:.*]]: tensor<64x512xf32>)
// THREADS: %[[R:.*]] = scf.forall (%[[T:.*]]) = (0) to (64) step (32) shared_outs(%[[OUT:.*]] = %{{.*}}) -> (tensor<64x512xf32>)
// THREADS-NEXT: %[[XS:.*]] = tensor.extract_slice %[[X]][%[[T]], 0] [32, 512] [1, 1] : tensor<64x512xf32> to tensor<32x512xf32>
// THREADS-NEXT: %[[OS:.*]] = tensor.extract_slice %[[OUT]][%[[T]], 0] [32, 512] [1, 1] : tensor<64x512xf32> to tensor<32x512xf32>
// THREADS-NEXT: %[[LOOP:.*]] = scf.for %{{.*}} iter_args(%{{.*}} = %[[OS]]) -> (tensor<32x512xf32>)
// THREADS: math.exp %{{.*}} : vector<1x64xf32>
// THREADS: scf.forall.in_parallel
// THREADS-NEXT: tensor.parallel_insert_slice %[[LOOP]] into %[[OUT]][%[[T]], 0] [32, 512] [1, 1] : tensor<32x512xf32> into tensor<64x512xf32>
// THREADS: return %[[R]]
// CHECK-LABEL: func.func @big
// CHECK-NOT: scf.forall
// CHECK: return
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @big(%x: tensor<64x512xf32>) -> tensor<64x512xf32> {
  %e0 = tensor.empty() : tensor<64x512xf32>
  %0 = linalg.generic {indexing_maps = [#id, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<64x512xf32>) outs(%e0 : tensor<64x512xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = math.exp %a : f32
    linalg.yield %m : f32
  } -> tensor<64x512xf32>
  return %0 : tensor<64x512xf32>
}

// -----

// Tests that with threads=2 a large matmul (32x32x64) is split over M into 2
// chunks of 16 rows, inside which the register tiling is unchanged.
// THREADS-LABEL: func.func @big_matmul
// THREADS-SAME: (%[[A:.*]]: tensor<32x64xf32>, %[[B:.*]]: tensor<64x32xf32>, %[[C:.*]]: tensor<32x32xf32>)
// THREADS: scf.forall (%[[T:.*]]) = (0) to (32) step (16) shared_outs(%[[OUT:.*]] = %[[C]]) -> (tensor<32x32xf32>)
// THREADS-NEXT: tensor.extract_slice %[[A]][%[[T]], 0] [16, 64] [1, 1]
// THREADS-NEXT: tensor.extract_slice %[[OUT]][%[[T]], 0] [16, 32] [1, 1]
// THREADS: vector.contract {{.*}} : vector<8x16xf32>, vector<16x32xf32> into vector<8x32xf32>
// THREADS: tensor.parallel_insert_slice %{{.*}} into %[[OUT]][%[[T]], 0] [16, 32] [1, 1]
func.func @big_matmul(%a: tensor<32x64xf32>, %b: tensor<64x32xf32>,
                      %c: tensor<32x32xf32>) -> tensor<32x32xf32> {
  %0 = linalg.matmul ins(%a, %b : tensor<32x64xf32>, tensor<64x32xf32>)
      outs(%c : tensor<32x32xf32>) -> tensor<32x32xf32>
  return %0 : tensor<32x32xf32>
}

// -----

// Tests that with threads=2 a small op (4 x 128 points) is not split.
// THREADS-LABEL: func.func @small
// THREADS-NOT: scf.forall
// THREADS: scf.for
// THREADS: math.exp %{{.*}} : vector<1x64xf32>
// THREADS: return
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @small(%x: tensor<4x128xf32>) -> tensor<4x128xf32> {
  %e0 = tensor.empty() : tensor<4x128xf32>
  %0 = linalg.generic {indexing_maps = [#id, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<4x128xf32>) outs(%e0 : tensor<4x128xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = math.exp %a : f32
    linalg.yield %m : f32
  } -> tensor<4x128xf32>
  return %0 : tensor<4x128xf32>
}

// -----

// Tests that an AVX2 width (8 lanes) gives 8x16 register blocks, so the 16
// accumulator vectors fit the 16 ymm registers.
// RUN: loom-opt %s -split-input-file -loom-cpu-tile-and-vectorize="vector-width=8" | FileCheck %s --check-prefix=AVX2
// AVX2-LABEL: func.func @matmul_avx2
// AVX2: vector.contract
// AVX2-SAME: vector<8x16xf32>, vector<16x16xf32> into vector<8x16xf32>
func.func @matmul_avx2(%a: tensor<64x128xf32>, %b: tensor<128x64xf32>) -> tensor<64x64xf32> {
  %z = tensor.empty() : tensor<64x64xf32>
  %c = linalg.matmul ins(%a, %b : tensor<64x128xf32>, tensor<128x64xf32>) outs(%z : tensor<64x64xf32>) -> tensor<64x64xf32>
  return %c : tensor<64x64xf32>
}

// -----

// Tests that with gemm-kernel, a GEMM stays whole even with threads (the
// kernel runs it on its own thread team, sharing the packed B panels):
// not split across threads, not register-tiled, not vectorized, and it
// keeps its loom.zero_init mark.
// GEMM-LABEL: func.func @gemm_for_kernel
// GEMM-NOT: scf.forall
// GEMM: %[[R:.*]] = linalg.matmul {loom.zero_init} ins(%{{.*}}, %{{.*}} : tensor<16x64xf32>, tensor<64x64xf32>) outs(%{{.*}} : tensor<16x64xf32>)
// GEMM-NOT: vector.contract
// GEMM-NOT: scf.forall
// GEMM: return %[[R]]
func.func @gemm_for_kernel(%a: tensor<16x64xf32>, %b: tensor<64x64xf32>,
                           %c: tensor<16x64xf32>) -> tensor<16x64xf32> {
  %0 = linalg.matmul {loom.zero_init} ins(%a, %b : tensor<16x64xf32>, tensor<64x64xf32>)
                     outs(%c : tensor<16x64xf32>) -> tensor<16x64xf32>
  return %0 : tensor<16x64xf32>
}

// -----

// Tests that an innermost loop no vector size divides (67, like a
// vocabulary of 50257) is split into a part of whole vectors (64: rows in
// vector<1x64>) and a static tail (3: vector<1x3>), instead of tiles of 1;
// a row reduction's tail continues from the head's result.
// CHECK-LABEL: func.func @odd_rows
// CHECK: %[[E:.*]] = scf.for
// CHECK: math.exp %{{.*}} : vector<1x64xf32>
// CHECK: %[[HEAD:.*]] = tensor.insert_slice %[[E]] into %{{.*}}[0, 0] [4, 64] [1, 1]
// CHECK: math.exp %{{.*}} : vector<1x3xf32>
// CHECK: tensor.insert_slice %{{.*}} into %[[HEAD]][0, 64] [4, 3] [1, 1]
// CHECK: %[[R0:.*]] = scf.for {{.*}} -> (tensor<4xf32>)
// CHECK: vector.multi_reduction <add>, %{{.*}} [1] : vector<1x64xf32> to vector<1xf32>
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %[[R0]]) -> (tensor<4xf32>)
// CHECK: vector.multi_reduction <add>, %{{.*}} [1] : vector<1x3xf32> to vector<1xf32>
// CHECK-NOT: vector<1x1xf32>
func.func @odd_rows(%x: tensor<4x67xf32>) -> (tensor<4x67xf32>, tensor<4xf32>) {
  %e0 = tensor.empty() : tensor<4x67xf32>
  %ex = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                         affine_map<(d0, d1) -> (d0, d1)>],
                        iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<4x67xf32>) outs(%e0 : tensor<4x67xf32>) {
  ^bb0(%v: f32, %o: f32):
    %r = math.exp %v : f32
    linalg.yield %r : f32
  } -> tensor<4x67xf32>
  %zero = arith.constant 0.0 : f32
  %e1 = tensor.empty() : tensor<4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e1 : tensor<4xf32>) -> tensor<4xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x67xf32>) outs(%z : tensor<4xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %r = arith.addf %acc, %v : f32
    linalg.yield %r : f32
  } -> tensor<4xf32>
  return %ex, %s : tensor<4x67xf32>, tensor<4xf32>
}

// -----

// Tests that an elementwise op with many operands gets fewer registers per
// value: with 8 operands (7 inputs and the output: 24 / (8 + 2) = 2
// registers), a 4x128 op is tiled to rows of 32 (vector<1x32>, two zmm per
// value), not 64, so that its live values fit the 32 vector registers.
// CHECK-LABEL: func.func @many_operands
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}}
// CHECK: arith.addf %{{.*}}, %{{.*}} : vector<1x32xf32>
// CHECK-NOT: vector<1x64xf32>
func.func @many_operands(%a: tensor<4x128xf32>, %b: tensor<4x128xf32>,
                         %c: tensor<4x128xf32>, %d: tensor<4x128xf32>,
                         %e: tensor<4x128xf32>, %f: tensor<4x128xf32>,
                         %g: tensor<4x128xf32>) -> tensor<4x128xf32> {
  %o = tensor.empty() : tensor<4x128xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0, d1)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%a, %b, %c, %d, %e, %f, %g : tensor<4x128xf32>, tensor<4x128xf32>,
          tensor<4x128xf32>, tensor<4x128xf32>, tensor<4x128xf32>,
          tensor<4x128xf32>, tensor<4x128xf32>)
      outs(%o : tensor<4x128xf32>) {
  ^bb0(%x0: f32, %x1: f32, %x2: f32, %x3: f32, %x4: f32, %x5: f32, %x6: f32,
       %out: f32):
    %s0 = arith.addf %x0, %x1 : f32
    %s1 = arith.mulf %s0, %x2 : f32
    %s2 = arith.addf %s1, %x3 : f32
    %s3 = arith.mulf %s2, %x4 : f32
    %s4 = arith.addf %s3, %x5 : f32
    %s5 = arith.mulf %s4, %x6 : f32
    linalg.yield %s5 : f32
  } -> tensor<4x128xf32>
  return %r : tensor<4x128xf32>
}

// -----

// Tests that a sum over rows of a product (a layer norm's weight gradient,
// x_hat * dy summed over 256 rows into 64 columns) is, per row, the
// product added to the row of sums: a vector add, not a vector.contract
// (a shuffle per element after lowering).
// CHECK-LABEL: func.func @column_sums
// CHECK: scf.for {{.*}} to %c256
// CHECK: %[[A:.*]] = vector.transfer_read {{.*}} : tensor<1x64xf32>, vector<1x64xf32>
// CHECK: %[[B:.*]] = vector.transfer_read {{.*}} : tensor<1x64xf32>, vector<1x64xf32>
// CHECK: %[[ACC:.*]] = vector.transfer_read {{.*}} : tensor<64xf32>, vector<64xf32>
// CHECK: %[[P:.*]] = arith.mulf %[[A]], %[[B]] : vector<1x64xf32>
// CHECK: %[[ROW:.*]] = vector.shape_cast %[[P]] : vector<1x64xf32> to vector<64xf32>
// CHECK: arith.addf %[[ACC]], %[[ROW]] : vector<64xf32>
// CHECK-NOT: vector.contract
#rows = affine_map<(d0, d1) -> (d0, d1)>
#cols = affine_map<(d0, d1) -> (d1)>
func.func @column_sums(%a: tensor<256x64xf32>, %b: tensor<256x64xf32>) -> tensor<64xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<64xf32>) -> tensor<64xf32>
  %r = linalg.generic {indexing_maps = [#rows, #rows, #cols], iterator_types = ["reduction", "parallel"]} ins(%a, %b : tensor<256x64xf32>, tensor<256x64xf32>) outs(%z : tensor<64xf32>) {
  ^bb0(%x: f32, %dy: f32, %out: f32):
    %p = arith.mulf %x, %dy : f32
    %sum = arith.addf %out, %p : f32
    linalg.yield %sum : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}

// -----

// Tests that a value per row broadcast along the row (layer norm's mean)
// is read once as an element and broadcast, not as a transfer_read whose
// innermost dim broadcasts (which convert-vector-to-scf lowered to a loop
// of scalar loads inserted into the vector one lane at a time).
// CHECK-LABEL: func.func @row_minus_mean
// CHECK: scf.for
// CHECK: %[[ROW:.*]] = vector.transfer_read %{{.*}} : tensor<1x64xf32>, vector<1x64xf32>
// CHECK: %[[MEAN:.*]] = tensor.extract %{{.*}}[%{{.*}}] : tensor<1xf32>
// CHECK: %[[SPLAT:.*]] = vector.broadcast %[[MEAN]] : f32 to vector<1x64xf32>
// CHECK: arith.subf %[[ROW]], %[[SPLAT]] : vector<1x64xf32>
// CHECK-NOT: permutation_map
func.func @row_minus_mean(%x: tensor<16x64xf32>, %mean: tensor<16xf32>) -> tensor<16x64xf32> {
  %init = tensor.empty() : tensor<16x64xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%x, %mean : tensor<16x64xf32>, tensor<16xf32>) outs(%init : tensor<16x64xf32>) {
  ^bb0(%a: f32, %m: f32, %o: f32):
    %d = arith.subf %a, %m : f32
    linalg.yield %d : f32
  } -> tensor<16x64xf32>
  return %r : tensor<16x64xf32>
}
