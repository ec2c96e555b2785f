// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-cpu-fuse-gemm-epilogues))' | FileCheck %s

// Tests that a matmul's bias + tanh consumer (through the expansion of its
// rows) becomes its epilogue: moved right after it, ids on both and the
// operand that reads the product recorded; the product has no other
// reader, so the epilogue writes its result over it (no new buffer).
// CHECK-LABEL: func.func @bias_tanh
// CHECK-NOT: bufferization.alloc_tensor
// CHECK: %[[P:.*]] = linalg.matmul {loom.epilogue = 0 : i64, loom.zero_init}
// CHECK-NEXT: %[[E:.*]] = tensor.expand_shape %[[P]]
// CHECK-NEXT: %[[Y:.*]] = linalg.generic {{.*}} ins(%[[E]], %{{.*}} : tensor<2x4x16xf32>, tensor<16xf32>) outs(%[[E]] : tensor<2x4x16xf32>)
// CHECK-SAME: loom.epilogue_of = 0 : i64, loom.epilogue_operand = 0 : i64
// CHECK: math.tanh
// CHECK: %[[OTHER:.*]] = arith.addf
// CHECK: return %[[Y]]
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#col = affine_map<(d0, d1, d2) -> (d2)>
func.func @bias_tanh(%x: tensor<8x32xf32>, %w: tensor<32x16xf32>, %b: tensor<16xf32>, %s: f32) -> (tensor<2x4x16xf32>, f32) {
  %e = tensor.empty() : tensor<8x16xf32>
  %p = linalg.matmul {loom.zero_init} ins(%x, %w : tensor<8x32xf32>, tensor<32x16xf32>) outs(%e : tensor<8x16xf32>) -> tensor<8x16xf32>
  %other = arith.addf %s, %s : f32
  %p3 = tensor.expand_shape %p [[0, 1], [2]] output_shape [2, 4, 16] : tensor<8x16xf32> into tensor<2x4x16xf32>
  %o = tensor.empty() : tensor<2x4x16xf32>
  %y = linalg.generic {indexing_maps = [#id3, #col, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p3, %b : tensor<2x4x16xf32>, tensor<16xf32>) outs(%o : tensor<2x4x16xf32>) {
  ^bb0(%in: f32, %bias: f32, %out: f32):
    %0 = arith.addf %in, %bias : f32
    %1 = math.tanh %0 : f32
    linalg.yield %1 : f32
  } -> tensor<2x4x16xf32>
  return %y, %other : tensor<2x4x16xf32>, f32
}

// -----

// Tests that an epilogue gets fresh outputs, allocated before the GEMM,
// where the product is read after it as well (the residual add of a
// product that is also returned) and for its second output.
// CHECK-LABEL: func.func @product_also_returned
// CHECK: %[[OUT:.*]] = bufferization.alloc_tensor() : tensor<8x16xf32>
// CHECK: %[[P:.*]] = linalg.matmul {loom.epilogue = 0 : i64, loom.zero_init}
// CHECK-NEXT: %[[Y:.*]] = linalg.generic {{.*}} ins(%[[P]], %{{.*}} : tensor<8x16xf32>, tensor<8x16xf32>) outs(%[[OUT]] : tensor<8x16xf32>)
// CHECK: return %[[Y]], %[[P]]
// CHECK-LABEL: func.func @two_outputs
// CHECK: %[[SECOND:.*]] = bufferization.alloc_tensor() : tensor<8x16xf32>
// CHECK: %[[P:.*]] = linalg.matmul {loom.epilogue = 0 : i64, loom.zero_init}
// CHECK-NEXT: %{{.*}}:2 = linalg.generic {{.*}} ins(%[[P]], %{{.*}} : tensor<8x16xf32>, tensor<8x16xf32>) outs(%[[P]], %[[SECOND]] : tensor<8x16xf32>, tensor<8x16xf32>)
#i2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @product_also_returned(%x: tensor<8x32xf32>, %w: tensor<32x16xf32>, %r: tensor<8x16xf32>) -> (tensor<8x16xf32>, tensor<8x16xf32>) {
  %e = tensor.empty() : tensor<8x16xf32>
  %p = linalg.matmul {loom.zero_init} ins(%x, %w : tensor<8x32xf32>, tensor<32x16xf32>) outs(%e : tensor<8x16xf32>) -> tensor<8x16xf32>
  %o = tensor.empty() : tensor<8x16xf32>
  %y = linalg.generic {indexing_maps = [#i2, #i2, #i2], iterator_types = ["parallel", "parallel"]}
      ins(%p, %r : tensor<8x16xf32>, tensor<8x16xf32>) outs(%o : tensor<8x16xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %0 = arith.addf %a, %b : f32
    linalg.yield %0 : f32
  } -> tensor<8x16xf32>
  return %y, %p : tensor<8x16xf32>, tensor<8x16xf32>
}
func.func @two_outputs(%x: tensor<8x32xf32>, %w: tensor<32x16xf32>, %r: tensor<8x16xf32>) -> (tensor<8x16xf32>, tensor<8x16xf32>) {
  %e = tensor.empty() : tensor<8x16xf32>
  %p = linalg.matmul {loom.zero_init} ins(%x, %w : tensor<8x32xf32>, tensor<32x16xf32>) outs(%e : tensor<8x16xf32>) -> tensor<8x16xf32>
  %o = tensor.empty() : tensor<8x16xf32>
  %y:2 = linalg.generic {indexing_maps = [#i2, #i2, #i2, #i2], iterator_types = ["parallel", "parallel"]}
      ins(%p, %r : tensor<8x16xf32>, tensor<8x16xf32>) outs(%o, %o : tensor<8x16xf32>, tensor<8x16xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32, %out2: f32):
    %0 = arith.addf %a, %b : f32
    %1 = math.tanh %0 : f32
    linalg.yield %0, %1 : f32, f32
  } -> (tensor<8x16xf32>, tensor<8x16xf32>)
  return %y#0, %y#1 : tensor<8x16xf32>, tensor<8x16xf32>
}

// -----

// Tests that two consumers of the product's rows that each qualify (the
// pre-activation, kept for the backward, and its GELU) are merged into one
// generic with both outputs, the shared inputs passed once, which becomes
// the epilogue: the first output over the product, the second fresh.
// CHECK-LABEL: func.func @siblings
// CHECK: %[[SECOND:.*]] = bufferization.alloc_tensor() : tensor<2x4x16xf32>
// CHECK: %[[P:.*]] = linalg.matmul {loom.epilogue = 0 : i64, loom.zero_init}
// CHECK-NEXT: %[[E:.*]] = tensor.expand_shape %[[P]]
// CHECK-NEXT: %[[Y:.*]]:2 = linalg.generic {{.*}} ins(%[[E]], %{{.*}} : tensor<2x4x16xf32>, tensor<16xf32>) outs(%[[E]], %[[SECOND]] : tensor<2x4x16xf32>, tensor<2x4x16xf32>)
// CHECK-SAME: loom.epilogue_of = 0 : i64, loom.epilogue_operand = 0 : i64
// CHECK: arith.addf
// CHECK: arith.addf
// CHECK: math.tanh
// CHECK: linalg.yield %{{.*}}, %{{.*}} : f32, f32
// CHECK-NOT: linalg.generic
// CHECK: return %[[Y]]#0, %[[Y]]#1
#s3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#scol = affine_map<(d0, d1, d2) -> (d2)>
func.func @siblings(%x: tensor<8x32xf32>, %w: tensor<32x16xf32>, %b: tensor<16xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>) {
  %e = tensor.empty() : tensor<8x16xf32>
  %p = linalg.matmul {loom.zero_init} ins(%x, %w : tensor<8x32xf32>, tensor<32x16xf32>) outs(%e : tensor<8x16xf32>) -> tensor<8x16xf32>
  %p3 = tensor.expand_shape %p [[0, 1], [2]] output_shape [2, 4, 16] : tensor<8x16xf32> into tensor<2x4x16xf32>
  %o = tensor.empty() : tensor<2x4x16xf32>
  %h = linalg.generic {indexing_maps = [#s3, #scol, #s3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p3, %b : tensor<2x4x16xf32>, tensor<16xf32>) outs(%o : tensor<2x4x16xf32>) {
  ^bb0(%in: f32, %bias: f32, %out: f32):
    %0 = arith.addf %in, %bias : f32
    linalg.yield %0 : f32
  } -> tensor<2x4x16xf32>
  %a = linalg.generic {indexing_maps = [#s3, #scol, #s3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p3, %b : tensor<2x4x16xf32>, tensor<16xf32>) outs(%o : tensor<2x4x16xf32>) {
  ^bb0(%in: f32, %bias: f32, %out: f32):
    %0 = arith.addf %in, %bias : f32
    %1 = math.tanh %0 : f32
    linalg.yield %1 : f32
  } -> tensor<2x4x16xf32>
  return %h, %a : tensor<2x4x16xf32>, tensor<2x4x16xf32>
}

// -----

// Tests that a GEMM whose only reader needs values computed after it (the
// sum of the three products of the attention projections' input gradient)
// moves down to that reader, which becomes its epilogue; the other two
// GEMMs, whose reader is then taken, stay where they were (before it).
// CHECK-LABEL: func.func @sunk
// CHECK: %[[P2:.*]] = linalg.matmul {loom.zero_init} ins(%arg1
// CHECK: %[[P3:.*]] = linalg.matmul {loom.zero_init} ins(%arg2
// CHECK: %[[P1:.*]] = linalg.matmul {loom.epilogue = 0 : i64, loom.zero_init} ins(%arg0
// CHECK-NEXT: %[[S:.*]] = linalg.generic {{.*}} ins(%[[P1]], %[[P2]], %[[P3]] : {{.*}}) outs(%[[P1]] : tensor<8x16xf32>)
// CHECK-SAME: loom.epilogue_of = 0 : i64, loom.epilogue_operand = 0 : i64
// CHECK: return %[[S]]
#j2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @sunk(%x1: tensor<8x32xf32>, %x2: tensor<8x32xf32>, %x3: tensor<8x32xf32>, %w: tensor<32x16xf32>) -> tensor<8x16xf32> {
  %e = tensor.empty() : tensor<8x16xf32>
  %p1 = linalg.matmul {loom.zero_init} ins(%x1, %w : tensor<8x32xf32>, tensor<32x16xf32>) outs(%e : tensor<8x16xf32>) -> tensor<8x16xf32>
  %p2 = linalg.matmul {loom.zero_init} ins(%x2, %w : tensor<8x32xf32>, tensor<32x16xf32>) outs(%e : tensor<8x16xf32>) -> tensor<8x16xf32>
  %p3 = linalg.matmul {loom.zero_init} ins(%x3, %w : tensor<8x32xf32>, tensor<32x16xf32>) outs(%e : tensor<8x16xf32>) -> tensor<8x16xf32>
  %s = linalg.generic {indexing_maps = [#j2, #j2, #j2, #j2], iterator_types = ["parallel", "parallel"]}
      ins(%p1, %p2, %p3 : tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>) outs(%e : tensor<8x16xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32, %out: f32):
    %0 = arith.addf %a, %b : f32
    %1 = arith.addf %0, %c : f32
    linalg.yield %1 : f32
  } -> tensor<8x16xf32>
  return %s : tensor<8x16xf32>
}

// -----

// Tests what stays apart: a consumer that reads a value computed after
// the GEMM, one that reduces, and a batched GEMM.
// CHECK-LABEL: func.func @not_epilogues
// CHECK-NOT: loom.epilogue
// CHECK: return
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
func.func @not_epilogues(%x: tensor<8x32xf32>, %w: tensor<32x16xf32>, %q: tensor<2x8x32xf32>, %v: tensor<2x32x16xf32>) -> (tensor<8x16xf32>, tensor<8xf32>, tensor<2x8x16xf32>) {
  %e = tensor.empty() : tensor<8x16xf32>
  %p = linalg.matmul {loom.zero_init} ins(%x, %w : tensor<8x32xf32>, tensor<32x16xf32>) outs(%e : tensor<8x16xf32>) -> tensor<8x16xf32>
  %two = arith.constant 2.0 : f32
  %e2 = tensor.empty() : tensor<8x16xf32>
  %later = linalg.fill ins(%two : f32) outs(%e2 : tensor<8x16xf32>) -> tensor<8x16xf32>
  %y = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%p, %later : tensor<8x16xf32>, tensor<8x16xf32>) outs(%e : tensor<8x16xf32>) {
  ^bb0(%a: f32, %c: f32, %out: f32):
    %0 = arith.mulf %a, %c : f32
    linalg.yield %0 : f32
  } -> tensor<8x16xf32>
  %r0 = tensor.empty() : tensor<8xf32>
  %r = linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]}
      ins(%p : tensor<8x16xf32>) outs(%r0 : tensor<8xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %0 = arith.addf %a, %acc : f32
    linalg.yield %0 : f32
  } -> tensor<8xf32>
  %be = tensor.empty() : tensor<2x8x16xf32>
  %bp = linalg.batch_matmul ins(%q, %v : tensor<2x8x32xf32>, tensor<2x32x16xf32>) outs(%be : tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  return %y, %r, %bp : tensor<8x16xf32>, tensor<8xf32>, tensor<2x8x16xf32>
}
