// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-fuse-cross-entropy))' | FileCheck %s

// Tests that a cross-entropy and its gradient over the same logits and
// targets share one logsumexp, inserted before the forward.
// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[L:.*]]: tensor<4x8x32xf32>, %[[T:.*]]: tensor<4x8xi32>, %[[D:.*]]: tensor<f32>)
// CHECK-NEXT: %[[LSE:.*]] = loom.logsumexp %[[L]] : tensor<4x8x32xf32> -> tensor<4x8xf32>
// CHECK-NEXT: %[[LOSS:.*]] = loom.cross_entropy %[[L]], %[[T]], lse %[[LSE]], ignore_index = -1
// CHECK-NEXT: %[[G:.*]] = loom.cross_entropy_grad %[[L]], %[[T]], %[[D]], lse %[[LSE]], ignore_index = -1
// CHECK-NEXT: return %[[LOSS]], %[[G]]
func.func @step(%l: tensor<4x8x32xf32>, %t: tensor<4x8xi32>, %d: tensor<f32>)
    -> (tensor<f32>, tensor<4x8x32xf32>) {
  %0 = loom.cross_entropy %l, %t, ignore_index = -1
      : tensor<4x8x32xf32>, tensor<4x8xi32>
  %1 = loom.cross_entropy_grad %l, %t, %d, ignore_index = -1
      : tensor<4x8x32xf32>, tensor<4x8xi32>, tensor<f32>
  return %0, %1 : tensor<f32>, tensor<4x8x32xf32>
}

// -----

// Tests what is left alone: other targets, another ignore_index, a
// gradient without a forward, and a forward without a gradient.
// CHECK-LABEL: func.func @unpaired
// CHECK-NOT: loom.logsumexp
// CHECK-NOT: lse
// CHECK: return
func.func @unpaired(%l: tensor<8x32xf32>, %t: tensor<8xi32>,
                    %u: tensor<8xi32>, %d: tensor<f32>)
    -> (tensor<f32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<8x32xf32>) {
  %0 = loom.cross_entropy %l, %t, ignore_index = -100
      : tensor<8x32xf32>, tensor<8xi32>
  %1 = loom.cross_entropy_grad %l, %u, %d, ignore_index = -100
      : tensor<8x32xf32>, tensor<8xi32>, tensor<f32>
  %2 = loom.cross_entropy_grad %l, %t, %d, ignore_index = 0
      : tensor<8x32xf32>, tensor<8xi32>, tensor<f32>
  %3 = loom.cross_entropy_grad %l, %u, %d, ignore_index = 0
      : tensor<8x32xf32>, tensor<8xi32>, tensor<f32>
  return %0, %1, %2, %3
      : tensor<f32>, tensor<8x32xf32>, tensor<8x32xf32>, tensor<8x32xf32>
}

// -----

// Tests that a gradient before the forward (not a training step's order)
// is left alone.
// CHECK-LABEL: func.func @grad_first
// CHECK-NOT: loom.logsumexp
func.func @grad_first(%l: tensor<8x32xf32>, %t: tensor<8xi32>, %d: tensor<f32>)
    -> (tensor<8x32xf32>, tensor<f32>) {
  %0 = loom.cross_entropy_grad %l, %t, %d, ignore_index = -100
      : tensor<8x32xf32>, tensor<8xi32>, tensor<f32>
  %1 = loom.cross_entropy %l, %t, ignore_index = -100
      : tensor<8x32xf32>, tensor<8xi32>
  return %0, %1 : tensor<8x32xf32>, tensor<f32>
}
