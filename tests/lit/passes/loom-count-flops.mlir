// RUN: loom-opt %s -split-input-file -verify-diagnostics -loom-count-flops | FileCheck %s

// Tests that matmul counts 2*M*N*K and elementwise ops one per element.
// CHECK-LABEL: func.func @mlp
// CHECK-SAME: attributes {loom.flops = 1088 : i64}
func.func @mlp(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>)
    -> tensor<4x16xf32> {
  // 2 * 4 * 16 * 8 = 1024
  %0 = loom.matmul %x, %w : tensor<4x8xf32>, tensor<8x16xf32>
  // 4 * 16 = 64
  %1 = loom.add %0, %b : tensor<4x16xf32>, tensor<16xf32>
  return %1 : tensor<4x16xf32>
}

// -----

// Tests that softmax counts five per element and transpose none.
// CHECK-LABEL: func.func @scores
// CHECK-SAME: attributes {loom.flops = 120 : i64}
func.func @scores(%x: tensor<4x6xf32>) -> tensor<6x4xf32> {
  %0 = loom.softmax %x, axis = 1 : tensor<4x6xf32>
  %1 = loom.transpose %0, perm = [1, 0] : tensor<4x6xf32>
  return %1 : tensor<6x4xf32>
}

// -----

// Tests that a dynamic shape leaves the function unannotated, with a warning.
// CHECK-LABEL: func.func @dynamic
// CHECK-NOT: loom.flops
func.func @dynamic(%x: tensor<?x6xf32>) -> tensor<?x6xf32> {
  // expected-warning @+1 {{FLOP count unknown (dynamic shape); bind the dims first}}
  %0 = loom.exp %x : tensor<?x6xf32>
  return %0 : tensor<?x6xf32>
}

// -----

// Tests layer_norm and gelu (eight per element), reduce_mean (one per input
// and one per result element) and the shape ops (none).
// CHECK-LABEL: func.func @norm_gelu
// CHECK-SAME: attributes {loom.flops = 1096 : i64}
func.func @norm_gelu(%x: tensor<2x4x8xf32>, %g: tensor<8xf32>) -> tensor<4x2xf32> {
  // 64 * 8 = 512
  %0 = loom.layer_norm %x, %g, %g, eps = 1.0e-05
      : tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>
  // 64 * 8 = 512
  %1 = loom.gelu %0, approximate = true : tensor<2x4x8xf32>
  // 64 + 8 = 72
  %2 = loom.reduce_mean %1, axes = [2], keepdim = false : tensor<2x4x8xf32>
  %3 = loom.reshape %2, shape = [-1, 2] : tensor<2x4xf32>
  return %3 : tensor<4x2xf32>
}

// -----

// Tests attention (2*Tq*Tk*(D + Dv) + 6*Tq*Tk per batch entry) and lstm
// (B*T*(8*H*(I + H) + 30*H)).
// CHECK-LABEL: func.func @attention_lstm
// CHECK-SAME: attributes {loom.flops = 1904 : i64}
func.func @attention_lstm(%q: tensor<2x4x8xf32>, %x: tensor<1x2x3xf32>,
                          %h0: tensor<1x4xf32>, %wih: tensor<3x16xf32>,
                          %whh: tensor<4x16xf32>, %b: tensor<16xf32>)
    -> (tensor<2x4x8xf32>, tensor<1x2x4xf32>) {
  // 2 * (2*4*4*8 + 2*4*4*8 + 6*4*4) = 1216
  %0 = loom.attention %q, %q, %q, causal = true, scale = 0.125
      : tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>
  // 1 * 2 * (8*4*(3 + 4) + 30*4) = 688
  %out, %h, %c = loom.lstm %x, %h0, %h0, %wih, %whh, %b
      : tensor<1x2x3xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<3x16xf32>,
        tensor<4x16xf32>, tensor<16xf32>
  return %0, %out : tensor<2x4x8xf32>, tensor<1x2x4xf32>
}
