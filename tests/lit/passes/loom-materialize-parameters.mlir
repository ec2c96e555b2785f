// RUN: loom-opt %s -split-input-file -verify-diagnostics -loom-materialize-parameters | FileCheck %s

// Tests that parameters get 64-byte-aligned byte offsets in declaration order,
// that the module records the aligned total, and that each get_parameter
// becomes a slice of the flat buffer at the element offset (byte offset / 4)
// reshaped to its type: expand_shape for rank > 1, the slice itself for
// rank 1 and a collapse_shape to a scalar tensor for rank 0. The `params`
// argument is prepended and no argument is writable.
// CHECK-LABEL: module attributes {loom.param_bytes = 320 : i64}
// 2x3 = 24 bytes at 0.
// CHECK: loom.parameter @a : tensor<2x3xf32> {{.*}} {loom.offset = 0 : i64}
// 5 = 20 bytes at 64.
// CHECK: loom.parameter @b : tensor<5xf32> {{.*}} {loom.offset = 64 : i64}
// 1 = 4 bytes at 128.
// CHECK: loom.parameter @c : tensor<f32> {{.*}} {loom.offset = 128 : i64}
// 4x4x2 = 128 bytes at 192, so 320 in all.
// CHECK: loom.parameter @d : tensor<4x4x2xf32> {{.*}} {loom.offset = 192 : i64}
// CHECK-LABEL: func.func @f
// CHECK-SAME: (%[[P:.*]]: tensor<80xf32> {bufferization.writable = false, loom.name = "params"}, %{{.*}}: tensor<3xf32> {bufferization.writable = false})
// CHECK-SAME: -> (tensor<2x3xf32>, tensor<5xf32>, tensor<f32>, tensor<4x4x2xf32>)
// CHECK-NOT: loom.get_parameter
// CHECK: %[[SA:.*]] = tensor.extract_slice %[[P]][0] [6] [1] : tensor<80xf32> to tensor<6xf32>
// CHECK: %[[A:.*]] = tensor.expand_shape %[[SA]] {{\[\[}}0, 1]] output_shape [2, 3] : tensor<6xf32> into tensor<2x3xf32>
// CHECK: %[[B:.*]] = tensor.extract_slice %[[P]][16] [5] [1] : tensor<80xf32> to tensor<5xf32>
// CHECK: %[[SC:.*]] = tensor.extract_slice %[[P]][32] [1] [1] : tensor<80xf32> to tensor<1xf32>
// CHECK: %[[C:.*]] = tensor.collapse_shape %[[SC]] [] : tensor<1xf32> into tensor<f32>
// CHECK: %[[SD:.*]] = tensor.extract_slice %[[P]][48] [32] [1] : tensor<80xf32> to tensor<32xf32>
// CHECK: %[[D:.*]] = tensor.expand_shape %[[SD]] {{\[\[}}0, 1, 2]] output_shape [4, 4, 2] : tensor<32xf32> into tensor<4x4x2xf32>
// CHECK-NOT: loom.get_parameter
// CHECK: return %[[A]], %[[B]], %[[C]], %[[D]]
loom.parameter @a : tensor<2x3xf32> init = {kind = "zeros"}
loom.parameter @b : tensor<5xf32> init = {kind = "zeros"}
loom.parameter @c : tensor<f32> init = {kind = "zeros"}
loom.parameter @d : tensor<4x4x2xf32> init = {kind = "zeros"}
func.func @f(%x: tensor<3xf32>)
    -> (tensor<2x3xf32>, tensor<5xf32>, tensor<f32>, tensor<4x4x2xf32>) {
  %a = loom.get_parameter @a : tensor<2x3xf32>
  %b = loom.get_parameter @b : tensor<5xf32>
  %c = loom.get_parameter @c : tensor<f32>
  %d = loom.get_parameter @d : tensor<4x4x2xf32>
  return %a, %b, %c, %d
      : tensor<2x3xf32>, tensor<5xf32>, tensor<f32>, tensor<4x4x2xf32>
}

// -----

// Tests that a parameter of exactly 64 bytes is followed without padding, that
// one of 68 bytes pushes the next to the following 64-byte boundary, and that
// a parameter read in two functions is sliced at the same offset in both.
// CHECK-LABEL: module attributes {loom.param_bytes = 256 : i64}
// CHECK: loom.parameter @x : tensor<16xf32> {{.*}} {loom.offset = 0 : i64}
// CHECK: loom.parameter @y : tensor<17xf32> {{.*}} {loom.offset = 64 : i64}
// CHECK: loom.parameter @z : tensor<2xf32> {{.*}} {loom.offset = 192 : i64}
// CHECK-LABEL: func.func @first
// CHECK-SAME: (%[[P:.*]]: tensor<64xf32> {bufferization.writable = false, loom.name = "params"})
// CHECK: %[[Z:.*]] = tensor.extract_slice %[[P]][48] [2] [1] : tensor<64xf32> to tensor<2xf32>
// CHECK: return %[[Z]]
// CHECK-LABEL: func.func @second
// CHECK-SAME: (%[[P:.*]]: tensor<64xf32> {bufferization.writable = false, loom.name = "params"})
// CHECK: %[[Y:.*]] = tensor.extract_slice %[[P]][16] [17] [1] : tensor<64xf32> to tensor<17xf32>
// CHECK: %[[Z:.*]] = tensor.extract_slice %[[P]][48] [2] [1] : tensor<64xf32> to tensor<2xf32>
// CHECK: return %[[Y]], %[[Z]]
loom.parameter @x : tensor<16xf32> init = {kind = "zeros"}
loom.parameter @y : tensor<17xf32> init = {kind = "zeros"}
loom.parameter @z : tensor<2xf32> init = {kind = "zeros"}
func.func @first() -> tensor<2xf32> {
  %z = loom.get_parameter @z : tensor<2xf32>
  return %z : tensor<2xf32>
}
func.func @second() -> (tensor<17xf32>, tensor<2xf32>) {
  %y = loom.get_parameter @y : tensor<17xf32>
  %z = loom.get_parameter @z : tensor<2xf32>
  return %y, %z : tensor<17xf32>, tensor<2xf32>
}

// -----

// Tests that a function that reads no parameter still gets the `params`
// argument, and that an external declaration gets none.
// CHECK-LABEL: module attributes {loom.param_bytes = 64 : i64}
// CHECK-LABEL: func.func @unused
// CHECK-SAME: (%{{.*}}: tensor<16xf32> {bufferization.writable = false, loom.name = "params"}, %[[X:.*]]: tensor<4xf32> {bufferization.writable = false}) -> tensor<4xf32>
// CHECK-NEXT: return %[[X]] : tensor<4xf32>
// CHECK-LABEL: func.func private @external
// CHECK-SAME: (tensor<4xf32>) -> tensor<4xf32>
loom.parameter @w : tensor<3xf32> init = {kind = "zeros"}
func.func @unused(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
func.func private @external(tensor<4xf32>) -> tensor<4xf32>

// -----

// Tests that a module without parameters records zero bytes and still gives
// each function an (empty) `params` argument.
// CHECK-LABEL: module attributes {loom.param_bytes = 0 : i64}
// CHECK-LABEL: func.func @none
// CHECK-SAME: (%{{.*}}: tensor<0xf32> {bufferization.writable = false, loom.name = "params"})
func.func @none() {
  return
}

// -----

// Tests that a parameter of another element type is refused.
loom.parameter @w : tensor<4xf32> init = {kind = "zeros"}
// expected-error @+1 {{only f32 parameters can be materialized yet, got 'tensor<2x2xbf16>'}}
loom.parameter @h : tensor<2x2xbf16> init = {kind = "zeros"}
func.func @f() -> tensor<2x2xbf16> {
  %h = loom.get_parameter @h : tensor<2x2xbf16>
  return %h : tensor<2x2xbf16>
}

// -----

// Tests that the gradients of a function (results marked loom.grad_of) are
// packed into one buffer in the parameter layout by one concatenation: each
// gradient flattened at its parameter's offset, zeros in the alignment
// padding, for a parameter without a gradient (@c, floats 32-35) and up to
// the padded end (48 floats: 16 for @a, 16 for @b, 4 for @c, 64-byte
// aligned); other results come first.
// CHECK-LABEL: func.func @g_grad
// CHECK-SAME: -> (tensor<f32>, tensor<48xf32> {loom.name = "grads"})
// CHECK: %[[FA:.*]] = tensor.collapse_shape %{{.*}} {{\[}}[0, 1]] : tensor<2x2xf32> into tensor<4xf32>
// CHECK-NEXT: %[[Z12:.*]] = arith.constant dense<0.000000e+00> : tensor<12xf32>
// CHECK-NEXT: %[[Z29:.*]] = arith.constant dense<0.000000e+00> : tensor<29xf32>
// CHECK-NEXT: %[[G:.*]] = tensor.concat dim(0) %[[FA]], %[[Z12]], %{{.*}}, %[[Z29]] : (tensor<4xf32>, tensor<12xf32>, tensor<3xf32>, tensor<29xf32>) -> tensor<48xf32>
// CHECK: return %{{.*}}, %[[G]] : tensor<f32>, tensor<48xf32>
loom.parameter @a : tensor<2x2xf32> init = {kind = "zeros"}
loom.parameter @b : tensor<3xf32> init = {kind = "zeros"}
loom.parameter @c : tensor<4xf32> init = {kind = "zeros"}
func.func @g_grad(%l: tensor<f32>, %ga: tensor<2x2xf32>, %gb: tensor<3xf32>)
    -> (tensor<f32>, tensor<2x2xf32> {loom.grad_of = "a"},
        tensor<3xf32> {loom.grad_of = "b"}) {
  return %l, %ga, %gb : tensor<f32>, tensor<2x2xf32>, tensor<3xf32>
}
