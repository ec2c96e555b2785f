// RUN: loom-opt %s -split-input-file -loom-autodiff="trainable=w,b,c" -loom-materialize-parameters -loom-optimizer=kind=adamw | FileCheck %s

// Tests that adjacent trainable parameters with the same learning rate
// update in one loop over their range, across the alignment padding between
// them (@w: floats 0-39, @b: 48-52, @c: 64-67), and that a range ending with
// the last parameter reaches the end of the padded buffer (80 floats): here
// the whole buffer, with no slices and no inserts; the check reads it as
// one grid too.
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[P:arg[0-9]+]]: tensor<80xf32> {bufferization.writable = true, loom.name = "params"}
// CHECK-SAME: %[[M:arg[0-9]+]]: tensor<80xf32> {bufferization.writable = true, loom.name = "m"}
// CHECK-SAME: %[[V:arg[0-9]+]]: tensor<80xf32> {bufferization.writable = true, loom.name = "v"}
// CHECK: %[[G:.*]] = tensor.concat dim(0)
// CHECK-NOT: tensor.extract_slice %[[P]]
// CHECK: %[[PG:.*]] = tensor.expand_shape %[[P]] {{\[\[}}0, 1, 2]] output_shape [1, 5, 16]
// CHECK: %[[GG:.*]] = tensor.expand_shape %[[G]] {{\[\[}}0, 1, 2]] output_shape [1, 5, 16]
// CHECK: linalg.generic {{.*}} ins(%[[PG]], %[[GG]], %{{.*}}, %{{.*}} : tensor<1x5x16xf32>, tensor<1x5x16xf32>, tensor<1x5x16xf32>, tensor<1x5x16xf32>) outs(%{{.*}} : tensor<1x16xi32>)
// CHECK: %[[U:.*]]:3 = linalg.generic {{.*}}iterator_types = ["parallel"]} ins(%[[G]] : tensor<80xf32>) outs(%[[P]], %[[M]], %[[V]] : tensor<80xf32>, tensor<80xf32>, tensor<80xf32>)
// CHECK-NOT: linalg.generic
// CHECK-NOT: tensor.insert_slice
// CHECK: return %{{.*}}, %[[U]]#0, %[[U]]#1, %[[U]]#2, %{{.*}}, %{{.*}} :

loom.parameter @w : tensor<8x5xf32> init = {kind = "normal", std = 2.000000e-02 : f64}
loom.parameter @b : tensor<5xf32> init = {kind = "zeros"}
loom.parameter @c : tensor<4xf32> init = {kind = "zeros"}
func.func @loss(%x: tensor<4x8xf32>, %t: tensor<4xi32>) -> tensor<f32> {
  %w = loom.get_parameter @w : tensor<8x5xf32>
  %b = loom.get_parameter @b : tensor<5xf32>
  %c = loom.get_parameter @c : tensor<4xf32>
  %0 = loom.matmul %x, %w : tensor<4x8xf32>, tensor<8x5xf32>
  %1 = loom.add %0, %b : tensor<4x5xf32>, tensor<5xf32>
  %l = loom.cross_entropy %1, %t, ignore_index = -100 : tensor<4x5xf32>, tensor<4xi32>
  %s = loom.reduce_sum %c, axes = [0], keepdim = false : tensor<4xf32>
  %r = loom.add %l, %s : tensor<f32>, tensor<f32>
  return %r : tensor<f32>
}


// -----

// Tests that a frozen parameter splits the ranges (@e, floats 48-50, is
// frozen between @w and @b) and that a change of multiplier does too: @w
// alone [0, 40), then @b and @c (multiplier 0.5, floats 64-68 and 80-83)
// as one range [64, 96) that reaches the buffer's end. The check covers
// the same two runs (its indices offset by each run's start), and the
// frozen parameter is neither read nor written by either pass.
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME: %[[P:arg[0-9]+]]: tensor<96xf32> {bufferization.writable = true, loom.name = "params"}
// Each run's learning rate, once: x 1 and x 0.5.
// CHECK: arith.constant 1.000000e+00 : f32
// CHECK: arith.constant 5.000000e-01 : f32
// CHECK: tensor.extract_slice %[[P]][0] [40] [1] : tensor<96xf32> to tensor<40xf32>
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<1x40xf32>, tensor<1x40xf32>, tensor<1x40xf32>, tensor<1x40xf32>)
// CHECK: arith.constant 0 : i64
// CHECK: tensor.extract_slice %[[P]][64] [32] [1] : tensor<96xf32> to tensor<32xf32>
// CHECK: linalg.generic {{.*}} ins({{.*}} : tensor<1x2x16xf32>, tensor<1x2x16xf32>, tensor<1x2x16xf32>, tensor<1x2x16xf32>)
// CHECK: arith.constant 64 : i64
// CHECK: %[[P0S:.*]] = tensor.extract_slice %[[P]][0] [40] [1] : tensor<96xf32> to tensor<40xf32>
// CHECK: %[[U0:.*]]:3 = linalg.generic {{.*}} ins({{.*}} : tensor<40xf32>) outs(%[[P0S]], {{.*}} : tensor<40xf32>, tensor<40xf32>, tensor<40xf32>)
// CHECK: %[[P0:.*]] = tensor.insert_slice %[[U0]]#0 into %[[P]][0] [40] [1]
// CHECK: tensor.extract_slice %[[P0]][64] [32] [1] : tensor<96xf32> to tensor<32xf32>
// CHECK: %[[U1:.*]]:3 = linalg.generic {{.*}} ins({{.*}} : tensor<32xf32>) outs({{.*}} : tensor<32xf32>, tensor<32xf32>, tensor<32xf32>)
// CHECK: %[[P1:.*]] = tensor.insert_slice %[[U1]]#0 into %[[P0]][64] [32] [1]
// CHECK-NOT: linalg.generic
// CHECK-NOT: [48]
// CHECK: return %{{.*}}, %[[P1]], {{.*}} :

loom.parameter @w : tensor<8x5xf32> init = {kind = "normal", std = 2.000000e-02 : f64}
loom.parameter @e : tensor<3xf32> init = {kind = "zeros"}
loom.parameter @b : tensor<5xf32> init = {kind = "zeros"} {loom.lr_mult = 5.000000e-01 : f64}
loom.parameter @c : tensor<4xf32> init = {kind = "zeros"} {loom.lr_mult = 5.000000e-01 : f64}
func.func @loss(%x: tensor<4x8xf32>, %t: tensor<4xi32>) -> tensor<f32> {
  %w = loom.get_parameter @w : tensor<8x5xf32>
  %b = loom.get_parameter @b : tensor<5xf32>
  %c = loom.get_parameter @c : tensor<4xf32>
  %0 = loom.matmul %x, %w : tensor<4x8xf32>, tensor<8x5xf32>
  %1 = loom.add %0, %b : tensor<4x5xf32>, tensor<5xf32>
  %l = loom.cross_entropy %1, %t, ignore_index = -100 : tensor<4x5xf32>, tensor<4xi32>
  %s = loom.reduce_sum %c, axes = [0], keepdim = false : tensor<4xf32>
  %r = loom.add %l, %s : tensor<f32>, tensor<f32>
  return %r : tensor<f32>
}
