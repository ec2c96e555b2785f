// RUN: loom-opt %s | loom-opt | FileCheck %s
// RUN: loom-opt %s --mlir-print-op-generic | loom-opt | FileCheck %s

// Tests that every op prints in its declarative form and parses back.
// CHECK-LABEL: func.func @ops
// CHECK-SAME: (%[[A:.*]]: tensor<2x3xf32>, %[[B:.*]]: tensor<3xf32>, %[[W:.*]]: tensor<4x3x5xf32>)
func.func @ops(%a: tensor<2x3xf32>, %b: tensor<3xf32>, %w: tensor<4x3x5xf32>)
    -> tensor<4x2x5xf32> {
  // CHECK: %[[C:.*]] = loom.constant dense<{{\[}}1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>
  %c = loom.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  // CHECK: %[[ADD:.*]] = loom.add %[[A]], %[[B]] : tensor<2x3xf32>, tensor<3xf32>
  %0 = loom.add %a, %b : tensor<2x3xf32>, tensor<3xf32>
  // CHECK: %[[SUB:.*]] = loom.sub %[[ADD]], %[[C]] : tensor<2x3xf32>, tensor<3xf32>
  %1 = loom.sub %0, %c : tensor<2x3xf32>, tensor<3xf32>
  // CHECK: %[[MUL:.*]] = loom.mul %[[SUB]], %[[A]] : tensor<2x3xf32>, tensor<2x3xf32>
  %2 = loom.mul %1, %a : tensor<2x3xf32>, tensor<2x3xf32>
  // CHECK: %[[DIV:.*]] = loom.div %[[MUL]], %[[B]] : tensor<2x3xf32>, tensor<3xf32>
  %3 = loom.div %2, %b : tensor<2x3xf32>, tensor<3xf32>
  // CHECK: %[[NEG:.*]] = loom.neg %[[DIV]] : tensor<2x3xf32>
  %4 = loom.neg %3 : tensor<2x3xf32>
  // CHECK: %[[EXP:.*]] = loom.exp %[[NEG]] : tensor<2x3xf32>
  %5 = loom.exp %4 : tensor<2x3xf32>
  // CHECK: %[[SM:.*]] = loom.softmax %[[EXP]], axis = 1 : tensor<2x3xf32>
  %6 = loom.softmax %5, axis = 1 : tensor<2x3xf32>
  // CHECK: %[[MM:.*]] = loom.matmul %[[SM]], %[[W]] : tensor<2x3xf32>, tensor<4x3x5xf32>
  %7 = loom.matmul %6, %w : tensor<2x3xf32>, tensor<4x3x5xf32>
  // CHECK: %[[T:.*]] = loom.transpose %[[MM]], perm = [0, 1, 2] : tensor<4x2x5xf32>
  %8 = loom.transpose %7, perm = [0, 1, 2] : tensor<4x2x5xf32>
  // CHECK: return %[[T]] : tensor<4x2x5xf32>
  return %8 : tensor<4x2x5xf32>
}

// Tests that dynamic dims survive the round trip and infer through ops.
// CHECK-LABEL: func.func @dynamic
func.func @dynamic(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>) -> tensor<?x?x4xf32> {
  // CHECK: loom.matmul %{{.*}}, %{{.*}} : tensor<?x?x8xf32>, tensor<8x4xf32>
  %0 = loom.matmul %x, %w : tensor<?x?x8xf32>, tensor<8x4xf32>
  return %0 : tensor<?x?x4xf32>
}
