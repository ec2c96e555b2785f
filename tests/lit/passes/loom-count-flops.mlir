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
