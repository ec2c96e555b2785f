// RUN: loom-opt %s -loom-gpu-split-reductions | FileCheck %s

// Tests that a full reduction of 3290624 elements (a gradient norm) becomes
// 512 interleaved partial sums (thread j sums elements j, j + 512, ...: the
// reduction dim outer, the parallel one inner) and a reduction of those,
// with the body's square kept in the first stage.
// CHECK-DAG: #[[$IN:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[$PART:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @norm
// CHECK: %[[X:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0, 1]] output_shape [6427, 512]
// CHECK: %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<512xf32>)
// CHECK: %[[P:.*]] = linalg.generic {indexing_maps = [#[[$IN]], #[[$PART]]], iterator_types = ["reduction", "parallel"]} ins(%[[X]] : tensor<6427x512xf32>) outs(%[[Z]] : tensor<512xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: %[[R:.*]] = linalg.generic {{.*}}iterator_types = ["reduction"]} ins(%[[P]] : tensor<512xf32>)
// CHECK: return %[[R]]
#id = affine_map<(d0) -> (d0)>
#scalar = affine_map<(d0) -> ()>
func.func @norm(%g: tensor<3290624xf32>) -> tensor<f32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<f32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<f32>) -> tensor<f32>
  %r = linalg.generic {indexing_maps = [#id, #scalar], iterator_types = ["reduction"]}
      ins(%g : tensor<3290624xf32>) outs(%init : tensor<f32>) {
  ^bb0(%x: f32, %acc: f32):
    %sq = arith.mulf %x, %x : f32
    %s = arith.addf %acc, %sq : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  return %r : tensor<f32>
}
func.func @short(%g: tensor<1000xf32>) -> tensor<f32> {

// Tests that a reduction shorter than min-size (4096) stays one loop.
// CHECK-LABEL: func.func @short
// CHECK-NOT: tensor.expand_shape
// CHECK: linalg.generic {{.*}}iterator_types = ["reduction"]} ins(%{{.*}} : tensor<1000xf32>)
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<f32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<f32>) -> tensor<f32>
  %r = linalg.generic {indexing_maps = [#id, #scalar], iterator_types = ["reduction"]}
      ins(%g : tensor<1000xf32>) outs(%init : tensor<f32>) {
  ^bb0(%x: f32, %acc: f32):
    %s = arith.addf %acc, %x : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  return %r : tensor<f32>
}

// Tests that a reduction with few outputs (the gradient norm's per-chunk
// sums: 4 rows of 8192) is split too: the partials' dim after the rows
// (4 x 1024 partial sums, thread (i, j) reducing elements j, j + 1024, ...
// of row i), then one reduction per row of its 1024 partials.
// CHECK-LABEL: func.func @chunks
// CHECK: %[[X:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0], [1, 2]] output_shape [4, 8, 1024] : tensor<4x8192xf32> into tensor<4x8x1024xf32>
// CHECK: %[[P:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[X]] : tensor<4x8x1024xf32>) outs(%{{.*}} : tensor<4x1024xf32>)
// CHECK: %[[R:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins(%[[P]] : tensor<4x1024xf32>) outs(%{{.*}} : tensor<4xf32>)
// CHECK: return %[[R]]
func.func @chunks(%g: tensor<4x8192xf32>) -> tensor<4xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<4xf32>) -> tensor<4xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%g : tensor<4x8192xf32>) outs(%init : tensor<4xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %sq = arith.mulf %x, %x : f32
    %s = arith.addf %acc, %sq : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  return %r : tensor<4xf32>
}

// Tests that a row reduction with many rows (softmax's max over 2048 rows)
// stays as it is: one thread per row is enough threads.
// CHECK-LABEL: func.func @many_rows
// CHECK-NOT: tensor.expand_shape
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins(%{{.*}} : tensor<2048x8192xf32>)
func.func @many_rows(%g: tensor<2048x8192xf32>) -> tensor<2048xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2048xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<2048xf32>) -> tensor<2048xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0)>],
                       iterator_types = ["parallel", "reduction"]}
      ins(%g : tensor<2048x8192xf32>) outs(%init : tensor<2048xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %s = arith.maximumf %acc, %x : f32
    linalg.yield %s : f32
  } -> tensor<2048xf32>
  return %r : tensor<2048xf32>
}
