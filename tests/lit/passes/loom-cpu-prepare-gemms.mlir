// RUN: loom-opt %s -split-input-file -loom-cpu-prepare-gemms | FileCheck %s --enable-var-scope

// Tests that attention's q @ k^T reads k in place (the transpose becomes a
// permuted map of a generic contraction) and that the zero fill of the
// output is dropped for loom.zero_init.
// CHECK-DAG: #[[$Q:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK-DAG: #[[$K:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
// CHECK-DAG: #[[$S:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @scores
// CHECK-SAME: (%[[Q:.*]]: tensor<4x16x8xf32>, %[[K:.*]]: tensor<4x16x8xf32>)
// CHECK-NOT: linalg.transpose
// CHECK-NOT: linalg.fill
// CHECK: %[[E:.*]] = tensor.empty() : tensor<4x16x16xf32>
// CHECK: linalg.generic {indexing_maps = [#[[$Q]], #[[$K]], #[[$S]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[Q]], %[[K]] : tensor<4x16x8xf32>, tensor<4x16x8xf32>) outs(%[[E]] : tensor<4x16x16xf32>)
// CHECK-SAME: attrs = {loom.zero_init}
func.func @scores(%q: tensor<4x16x8xf32>, %k: tensor<4x16x8xf32>) -> tensor<4x16x16xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8x16xf32>
  %kt = linalg.transpose ins(%k : tensor<4x16x8xf32>) outs(%e : tensor<4x8x16xf32>) permutation = [0, 2, 1]
  %e2 = tensor.empty() : tensor<4x16x16xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e2 : tensor<4x16x16xf32>) -> tensor<4x16x16xf32>
  %s = linalg.batch_matmul ins(%q, %kt : tensor<4x16x8xf32>, tensor<4x8x16xf32>) outs(%z : tensor<4x16x16xf32>) -> tensor<4x16x16xf32>
  return %s : tensor<4x16x16xf32>
}

// -----

// Tests that a weight gradient x^T @ dy reads x in place and keeps the
// matmul's accumulation when the output is not a zero fill.
// CHECK-DAG: #[[$X:.*]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// CHECK-DAG: #[[$DY:.*]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-LABEL: func.func @weight_grad
// CHECK-SAME: (%[[X:.*]]: tensor<32x8xf32>, %[[DY:.*]]: tensor<32x16xf32>, %[[ACC:.*]]: tensor<8x16xf32>)
// CHECK-NOT: linalg.transpose
// CHECK: linalg.generic {indexing_maps = [#[[$X]], #[[$DY]], #{{.*}}]
// CHECK-SAME: ins(%[[X]], %[[DY]] : tensor<32x8xf32>, tensor<32x16xf32>) outs(%[[ACC]] : tensor<8x16xf32>)
// CHECK-NOT: loom.zero_init
func.func @weight_grad(%x: tensor<32x8xf32>, %dy: tensor<32x16xf32>, %acc: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %e = tensor.empty() : tensor<8x32xf32>
  %xt = linalg.transpose ins(%x : tensor<32x8xf32>) outs(%e : tensor<8x32xf32>) permutation = [1, 0]
  %g = linalg.matmul ins(%xt, %dy : tensor<8x32xf32>, tensor<32x16xf32>) outs(%acc : tensor<8x16xf32>) -> tensor<8x16xf32>
  return %g : tensor<8x16xf32>
}

// -----

// Tests that a non-zero fill stays, and that contractions the kernel does
// not compute (f64) are left alone.
// CHECK-LABEL: func.func @left_alone
// CHECK: linalg.fill
// CHECK: linalg.matmul ins
// CHECK-NOT: loom.zero_init
// CHECK: linalg.transpose
// CHECK: linalg.matmul ins
// CHECK-NOT: loom.zero_init
func.func @left_alone(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>, %c: tensor<4x8xf64>, %d: tensor<4x4xf64>) -> (tensor<4x4xf32>, tensor<4x4xf64>) {
  %one = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<4x4xf32>
  %f = linalg.fill ins(%one : f32) outs(%e : tensor<4x4xf32>) -> tensor<4x4xf32>
  %r = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%f : tensor<4x4xf32>) -> tensor<4x4xf32>
  %e2 = tensor.empty() : tensor<8x4xf64>
  %ct = linalg.transpose ins(%c : tensor<4x8xf64>) outs(%e2 : tensor<8x4xf64>) permutation = [1, 0]
  %r2 = linalg.matmul ins(%c, %ct : tensor<4x8xf64>, tensor<8x4xf64>) outs(%d : tensor<4x4xf64>) -> tensor<4x4xf64>
  return %r, %r2 : tensor<4x4xf32>, tensor<4x4xf64>
}

// -----

// Tests that a transposed product is computed in the transposed layout: the
// tied head's weight gradient x^T @ dlogits [d, V] transposed to [V, d]
// becomes dlogits^T @ x written straight into [V, d], its loops renumbered
// so that V is the first (M) loop again, with no transpose left.
// CHECK-DAG: #[[$A:.*]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// CHECK-DAG: #[[$B:.*]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-DAG: #[[$C:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @tied_head_grad
// CHECK-SAME: (%[[X:.*]]: tensor<6x4xf32>, %[[DL:.*]]: tensor<6x10xf32>)
// CHECK-NOT: linalg.transpose
// CHECK: %[[T:.*]] = tensor.empty() : tensor<10x4xf32>
// CHECK: %[[G:.*]] = linalg.generic {indexing_maps = [#[[$A]], #[[$B]], #[[$C]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[DL]], %[[X]] : tensor<6x10xf32>, tensor<6x4xf32>) outs(%[[T]] : tensor<10x4xf32>)
// CHECK-SAME: attrs = {loom.zero_init}
// CHECK: arith.mulf
// CHECK: return %[[G]]
#xt = affine_map<(d0, d1, d2) -> (d2, d0)>
#dl = affine_map<(d0, d1, d2) -> (d2, d1)>
#wo = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @tied_head_grad(%x: tensor<6x4xf32>, %dl: tensor<6x10xf32>) -> tensor<10x4xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x10xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x10xf32>) -> tensor<4x10xf32>
  %g = linalg.generic {indexing_maps = [#xt, #dl, #wo], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %dl : tensor<6x4xf32>, tensor<6x10xf32>) outs(%z : tensor<4x10xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %0 = arith.mulf %a, %b : f32
    %1 = arith.addf %acc, %0 : f32
    linalg.yield %1 : f32
  } -> tensor<4x10xf32>
  %et = tensor.empty() : tensor<10x4xf32>
  %t = linalg.transpose ins(%g : tensor<4x10xf32>) outs(%et : tensor<10x4xf32>) permutation = [1, 0]
  return %t : tensor<10x4xf32>
}

// -----

// Tests what keeps its transpose: a product that is also read untransposed.
// CHECK-LABEL: func.func @product_read_twice
// CHECK: linalg.transpose
#xt = affine_map<(d0, d1, d2) -> (d2, d0)>
#dl = affine_map<(d0, d1, d2) -> (d2, d1)>
#wo = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @product_read_twice(%x: tensor<6x4xf32>, %dl: tensor<6x10xf32>) -> (tensor<10x4xf32>, tensor<4x10xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x10xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x10xf32>) -> tensor<4x10xf32>
  %g = linalg.generic {indexing_maps = [#xt, #dl, #wo], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %dl : tensor<6x4xf32>, tensor<6x10xf32>) outs(%z : tensor<4x10xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %0 = arith.mulf %a, %b : f32
    %1 = arith.addf %acc, %0 : f32
    linalg.yield %1 : f32
  } -> tensor<4x10xf32>
  %et = tensor.empty() : tensor<10x4xf32>
  %t = linalg.transpose ins(%g : tensor<4x10xf32>) outs(%et : tensor<10x4xf32>) permutation = [1, 0]
  return %t, %g : tensor<10x4xf32>, tensor<4x10xf32>
}
