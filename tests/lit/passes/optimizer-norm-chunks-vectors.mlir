// RUN: loom-opt %s -loom-autodiff="trainable=w" -loom-materialize-parameters -loom-optimizer=kind=sgd | FileCheck %s

// Tests that the gradient norm's chunks are whole vectors: 64 x 4097 =
// 262208 gradients in 64 chunks would be 4097 floats each (summed a few
// lanes at a time); 8 or 16 chunks are not a multiple of 16 floats either,
// so 4 chunks of 65552 = 4097 rows of 16 lanes.
// CHECK-LABEL: func.func @train_step(
// CHECK: tensor.expand_shape %{{.*}} {{\[\[}}0, 1, 2]] output_shape [4, 4097, 16] : tensor<262208xf32> into tensor<4x4097x16xf32>
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]} ins(%{{.*}} : tensor<4x4097x16xf32>) outs(%{{.*}} : tensor<4x16xf32>)

loom.parameter @w : tensor<4097x64xf32> init = {kind = "normal", std = 2.000000e-02 : f64}
func.func @loss(%x: tensor<4x4097xf32>, %t: tensor<4xi32>) -> tensor<f32> {
  %w = loom.get_parameter @w : tensor<4097x64xf32>
  %0 = loom.matmul %x, %w : tensor<4x4097xf32>, tensor<4097x64xf32>
  %l = loom.cross_entropy %0, %t, ignore_index = -100 : tensor<4x64xf32>, tensor<4xi32>
  return %l : tensor<f32>
}
