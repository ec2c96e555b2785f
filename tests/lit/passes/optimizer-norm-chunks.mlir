// RUN: loom-opt %s -loom-autodiff="trainable=w" -loom-materialize-parameters -loom-optimizer=kind=sgd | FileCheck %s

// Tests that the gradient norm of a large buffer is summed in two levels:
// the 256 x 64 = 16384 gradients as chunks (up to 64, at least 4096 floats
// each: here 4 of 4096), each a grid of 64 rows of 64 lanes; partial sums
// of squares per chunk and lane (the chunks a parallel loop, which threads
// split; whole vectors added, with no horizontal step per vector), then the
// sum of the 256 partials (not squared again), then the square root.
// CHECK-LABEL: func.func @train_step(
// CHECK: %[[G:.*]] = tensor.collapse_shape %{{.*}} {{\[\[}}0, 1]] : tensor<256x64xf32> into tensor<16384xf32>
// CHECK: %[[GRID:.*]] = tensor.expand_shape %[[G]] {{\[\[}}0, 1, 2]] output_shape [4, 64, 64] : tensor<16384xf32> into tensor<4x64x64xf32>
// CHECK: %[[PART:.*]] = linalg.generic {indexing_maps = [#[[ALL:.*]], #[[LANES:.*]]], iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[GRID]] : tensor<4x64x64xf32>) outs(%{{.*}} : tensor<4x64xf32>)
// CHECK-NEXT: ^bb0(%[[X:[^:]+]]: f32, %[[ACC:[^:]+]]: f32):
// CHECK-NEXT: %[[X2:.*]] = arith.mulf %[[X]], %[[X]] : f32
// CHECK-NEXT: %[[SUM:.*]] = arith.addf %[[ACC]], %[[X2]] : f32
// CHECK-NEXT: linalg.yield %[[SUM]] : f32
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %[[PART]] {{\[\[}}0, 1]] : tensor<4x64xf32> into tensor<256xf32>
// CHECK: %[[SQ:.*]] = linalg.generic {{.*}}iterator_types = ["reduction"]} ins(%[[FLAT]] : tensor<256xf32>) outs(%{{.*}} : tensor<f32>)
// CHECK-NEXT: ^bb0(%[[P:[^:]+]]: f32, %[[ACC2:[^:]+]]: f32):
// CHECK-NEXT: %[[SUM2:.*]] = arith.addf %[[ACC2]], %[[P]] : f32
// CHECK-NEXT: linalg.yield %[[SUM2]] : f32
// CHECK: %[[SQS:.*]] = tensor.extract %[[SQ]][] : tensor<f32>
// CHECK-NEXT: math.sqrt %[[SQS]] : f32
// The check of the update reads the same grid.
// CHECK: linalg.generic {indexing_maps = [#[[ALL]], #[[ALL]], #[[LANES]]], iterator_types = ["parallel", "reduction", "parallel"]} ins(%{{.*}}, %{{.*}} : tensor<4x64x64xf32>, tensor<4x64x64xf32>) outs(%{{.*}} : tensor<4x64xi32>)

loom.parameter @w : tensor<256x64xf32> init = {kind = "normal", std = 2.000000e-02 : f64}
func.func @loss(%x: tensor<4x256xf32>, %t: tensor<4xi32>) -> tensor<f32> {
  %w = loom.get_parameter @w : tensor<256x64xf32>
  %0 = loom.matmul %x, %w : tensor<4x256xf32>, tensor<256x64xf32>
  %l = loom.cross_entropy %0, %t, ignore_index = -100 : tensor<4x64xf32>, tensor<4xi32>
  return %l : tensor<f32>
}
