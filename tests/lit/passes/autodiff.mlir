// RUN: loom-opt %s -split-input-file -verify-diagnostics -loom-autodiff | FileCheck %s
// RUN: loom-opt %s -split-input-file -verify-diagnostics -loom-autodiff="trainable=b keep-forward" | FileCheck %s --check-prefix=FROZEN
// RUN: not loom-opt %s -split-input-file -loom-autodiff=trainable=nope 2>&1 | FileCheck %s --check-prefix=UNKNOWN

// The diagnostics of each case are the same under the first two RUN lines
// (only @b takes part in the error cases); with `trainable=nope` every case
// that has a scalar loss fails.
// UNKNOWN: error: loom-autodiff: trainable 'nope' names no parameter

// Tests the backward sweep of a one-layer classifier: the cross-entropy
// gradient (seeded with d_loss = 1), the tanh VJP g - g*y*y, the bias
// gradient summed over the broadcast rows, and the weight gradient
// x^T @ dz. Results: the loss, then one gradient per trainable parameter in
// declaration order, each tagged with `loom.grad_of`. All parameters are
// trainable by default; the forward function is replaced.
// CHECK-LABEL: loom.parameter @w : tensor<8x5xf32>
// CHECK-SAME: {loom.trainable}
// CHECK: loom.parameter @b : tensor<5xf32>
// CHECK-SAME: {loom.trainable}
// CHECK: func.func @loss_grad(%[[X:.*]]: tensor<4x8xf32>, %[[T:.*]]: tensor<4xi32>)
// CHECK-SAME: -> (tensor<f32>, tensor<8x5xf32> {loom.grad_of = "w"}, tensor<5xf32> {loom.grad_of = "b"})
// CHECK: %[[W:.*]] = loom.get_parameter @w
// CHECK: %[[B:.*]] = loom.get_parameter @b
// CHECK: %[[MM:.*]] = loom.matmul %[[X]], %[[W]] : tensor<4x8xf32>, tensor<8x5xf32>
// CHECK: %[[Z:.*]] = loom.add %[[MM]], %[[B]]
// CHECK: %[[Y:.*]] = loom.tanh %[[Z]]
// CHECK: %[[LOSS:.*]] = loom.cross_entropy %[[Y]], %[[T]], ignore_index = -100
// CHECK: %[[ONE:.*]] = loom.fill value = 1.000000e+00 : tensor<f32>
// CHECK: %[[DY:.*]] = loom.cross_entropy_grad %[[Y]], %[[T]], %[[ONE]], ignore_index = -100 : tensor<4x5xf32>, tensor<4xi32>, tensor<f32>
// CHECK: %[[GY:.*]] = loom.mul %[[DY]], %[[Y]]
// CHECK: %[[GYY:.*]] = loom.mul %[[GY]], %[[Y]]
// CHECK: %[[DZ:.*]] = loom.sub %[[DY]], %[[GYY]] : tensor<4x5xf32>, tensor<4x5xf32>
// CHECK: %[[DB:.*]] = loom.reduce_sum %[[DZ]], axes = [0], keepdim = false : tensor<4x5xf32>
// CHECK: %[[XT:.*]] = loom.transpose %[[X]], perm = [1, 0] : tensor<4x8xf32>
// CHECK: %[[DW:.*]] = loom.matmul %[[XT]], %[[DZ]] : tensor<8x4xf32>, tensor<4x5xf32>
// CHECK: return %[[LOSS]], %[[DW]], %[[DB]] : tensor<f32>, tensor<8x5xf32>, tensor<5xf32>
// CHECK-NOT: func.func @loss(

// With `trainable=b` the weight is frozen: no loom.trainable on it, no
// gradient result for it, and no backward matmul or transpose (the only
// matmul is the forward one). `keep-forward` keeps @loss.
// FROZEN-LABEL: loom.parameter @w : tensor<8x5xf32>
// FROZEN-NOT: loom.trainable
// FROZEN: loom.parameter @b : tensor<5xf32>
// FROZEN-SAME: {loom.trainable}
// FROZEN: func.func @loss_grad(%{{.*}}: tensor<4x8xf32>, %{{.*}}: tensor<4xi32>)
// FROZEN-SAME: -> (tensor<f32>, tensor<5xf32> {loom.grad_of = "b"})
// FROZEN: loom.matmul
// FROZEN-NOT: loom.matmul
// FROZEN-NOT: loom.transpose
// FROZEN: loom.cross_entropy_grad
// FROZEN: %[[DB:.*]] = loom.reduce_sum %{{.*}}, axes = [0], keepdim = false : tensor<4x5xf32>
// FROZEN-NOT: loom.matmul
// FROZEN-NOT: loom.transpose
// FROZEN: return %{{.*}}, %[[DB]] : tensor<f32>, tensor<5xf32>
// FROZEN: func.func @loss(
loom.parameter @w : tensor<8x5xf32> init = {kind = "normal", std = 2.000000e-02 : f64}
loom.parameter @b : tensor<5xf32> init = {kind = "zeros"}
func.func @loss(%x: tensor<4x8xf32>, %t: tensor<4xi32>) -> tensor<f32> {
  %w = loom.get_parameter @w : tensor<8x5xf32>
  %b = loom.get_parameter @b : tensor<5xf32>
  %0 = loom.matmul %x, %w : tensor<4x8xf32>, tensor<8x5xf32>
  %1 = loom.add %0, %b : tensor<4x5xf32>, tensor<5xf32>
  %2 = loom.tanh %1 : tensor<4x5xf32>
  %l = loom.cross_entropy %2, %t, ignore_index = -100 : tensor<4x5xf32>, tensor<4xi32>
  return %l : tensor<f32>
}

// -----

// Tests trainable prefixes and repeated reads: `b` selects `b.x` and `b.y`
// but not `bx`. @"b.x" is read twice; its gradient is the sum of both
// reads' (d(sum(x*bx*y + x))/dx = bx*y + 1), and under `trainable=b` the
// gradient of the frozen @bx (the mul by @"b.x") is not computed.
// CHECK-LABEL: func.func @loss_grad()
// CHECK-SAME: -> (tensor<f32>, tensor<3xf32> {loom.grad_of = "b.x"}, tensor<3xf32> {loom.grad_of = "bx"}, tensor<3xf32> {loom.grad_of = "b.y"})
// CHECK: %[[X1:.*]] = loom.get_parameter @b.x
// CHECK: %[[BX:.*]] = loom.get_parameter @bx
// CHECK: %[[Y:.*]] = loom.get_parameter @b.y
// CHECK: %[[X2:.*]] = loom.get_parameter @b.x
// CHECK: %[[XBX:.*]] = loom.mul %[[X1]], %[[BX]]
// CHECK: %[[G:.*]] = loom.add %{{.*}}, %{{.*}} : tensor<3xf32>, tensor<1xf32>
// CHECK: %[[GY:.*]] = loom.mul %[[G]], %[[Y]]
// CHECK: %[[DY:.*]] = loom.mul %[[G]], %[[XBX]]
// CHECK: %[[DX1:.*]] = loom.mul %[[GY]], %[[BX]]
// CHECK: %[[DBX:.*]] = loom.mul %[[GY]], %[[X1]]
// CHECK: %[[DX:.*]] = loom.add %[[DX1]], %[[G]] : tensor<3xf32>, tensor<3xf32>
// CHECK: return %{{.*}}, %[[DX]], %[[DBX]], %[[DY]]

// FROZEN-LABEL: loom.parameter @b.x
// FROZEN-SAME: {loom.trainable}
// FROZEN: loom.parameter @bx
// FROZEN-NOT: loom.trainable
// FROZEN: loom.parameter @b.y
// FROZEN-SAME: {loom.trainable}
// FROZEN: func.func @loss_grad()
// FROZEN-SAME: -> (tensor<f32>, tensor<3xf32> {loom.grad_of = "b.x"}, tensor<3xf32> {loom.grad_of = "b.y"})
// FROZEN: %[[X1:.*]] = loom.get_parameter @b.x
// FROZEN: %[[BX:.*]] = loom.get_parameter @bx
// FROZEN: %[[Y:.*]] = loom.get_parameter @b.y
// FROZEN: %[[G:.*]] = loom.add %{{.*}}, %{{.*}} : tensor<3xf32>, tensor<1xf32>
// FROZEN: %[[GY:.*]] = loom.mul %[[G]], %[[Y]]
// FROZEN-NOT: loom.mul %[[GY]], %[[X1]]
// FROZEN: %[[DX1:.*]] = loom.mul %[[GY]], %[[BX]]
// FROZEN-NOT: loom.mul %[[GY]], %[[X1]]
// FROZEN: return
loom.parameter @"b.x" : tensor<3xf32> init = {kind = "zeros"}
loom.parameter @bx : tensor<3xf32> init = {kind = "zeros"}
loom.parameter @"b.y" : tensor<3xf32> init = {kind = "zeros"}
func.func @loss() -> tensor<f32> {
  %x1 = loom.get_parameter @"b.x" : tensor<3xf32>
  %bx = loom.get_parameter @bx : tensor<3xf32>
  %y = loom.get_parameter @"b.y" : tensor<3xf32>
  %x2 = loom.get_parameter @"b.x" : tensor<3xf32>
  %0 = loom.mul %x1, %bx : tensor<3xf32>, tensor<3xf32>
  %1 = loom.mul %0, %y : tensor<3xf32>, tensor<3xf32>
  %2 = loom.add %1, %x2 : tensor<3xf32>, tensor<3xf32>
  %l = loom.reduce_sum %2, axes = [0], keepdim = false : tensor<3xf32>
  return %l : tensor<f32>
}

// -----

// Tests that a loss that is not a scalar is rejected.
loom.parameter @b : tensor<3xf32> init = {kind = "zeros"}
// expected-error @+1 {{loom-autodiff: 'loss' must return one rank-0 float tensor (a loss), got 'tensor<3xf32>'}}
func.func @loss() -> tensor<3xf32> {
  %b = loom.get_parameter @b : tensor<3xf32>
  return %b : tensor<3xf32>
}

// -----

// Tests that a parameter reaching the loss only through a comparison gets
// a zero gradient, with a warning at the parameter.
// CHECK-LABEL: func.func @loss_grad()
// CHECK-SAME: -> (tensor<f32>, tensor<3xf32> {loom.grad_of = "b"})
// CHECK: %[[ZERO:.*]] = loom.fill value = 0.000000e+00 : tensor<3xf32>
// CHECK-NEXT: return %{{.*}}, %[[ZERO]]
// expected-warning @+1 {{loom-autodiff: the loss does not depend differentiably on parameter 'b'}}
loom.parameter @b : tensor<3xf32> init = {kind = "zeros"}
func.func @loss() -> tensor<f32> {
  %b = loom.get_parameter @b : tensor<3xf32>
  %z = loom.fill value = 0.0 : tensor<f32>
  %one = loom.fill value = 1.0 : tensor<3xf32>
  %c = loom.compare %b, %z, predicate = "gt" : tensor<3xf32>, tensor<f32>
  %y = loom.where %c, %one, %z : tensor<3xi1>, tensor<3xf32>, tensor<f32>
  %l = loom.reduce_sum %y, axes = [0], keepdim = false : tensor<3xf32>
  return %l : tensor<f32>
}

// -----

// Tests that an op without a VJP on the path from a trainable parameter to
// the loss is an error at that op.
loom.parameter @b : tensor<1x2x3xf32> init = {kind = "zeros"}
func.func @loss() -> tensor<f32> {
  %b = loom.get_parameter @b : tensor<1x2x3xf32>
  // expected-error @+1 {{'loom.attention_lse' op has no vector-Jacobian product (VjpOpInterface); cannot differentiate through it}}
  %s = loom.attention_lse %b, %b, causal = false, scale = 1.0
      : tensor<1x2x3xf32>, tensor<1x2x3xf32> -> tensor<1x2xf32>
  %l = loom.reduce_sum %s, axes = [0, 1], keepdim = false : tensor<1x2xf32>
  return %l : tensor<f32>
}

// -----

// Tests that calls must be inlined first.
loom.parameter @b : tensor<3xf32> init = {kind = "zeros"}
func.func @sum(%x: tensor<3xf32>) -> tensor<f32> {
  %l = loom.reduce_sum %x, axes = [0], keepdim = false : tensor<3xf32>
  return %l : tensor<f32>
}
func.func @loss() -> tensor<f32> {
  %b = loom.get_parameter @b : tensor<3xf32>
  // expected-error @+1 {{'func.call' op is a call; inline it before loom-autodiff}}
  %l = func.call @sum(%b) : (tensor<3xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
