// RUN: loom-opt %s -split-input-file -canonicalize | FileCheck %s

// Tests that an identity transpose folds away.
// CHECK-LABEL: func.func @identity_transpose
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NOT: loom.transpose
// CHECK: return %[[X]]
func.func @identity_transpose(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = loom.transpose %x, perm = [0, 1] : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// Tests that two transposes compose into one.
// CHECK-LABEL: func.func @compose
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK: %[[T:.*]] = loom.transpose %[[X]], perm = [2, 0, 1] : tensor<2x3x4xf32>
// CHECK-NOT: loom.transpose
// CHECK: return %[[T]]
func.func @compose(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %0 = loom.transpose %x, perm = [1, 2, 0] : tensor<2x3x4xf32>
  %1 = loom.transpose %0, perm = [1, 2, 0] : tensor<3x4x2xf32>
  return %1 : tensor<4x2x3xf32>
}

// -----

// Tests that a transpose and its inverse cancel.
// CHECK-LABEL: func.func @inverse
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK-NOT: loom.transpose
// CHECK: return %[[X]]
func.func @inverse(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %0 = loom.transpose %x, perm = [0, 2, 1] : tensor<2x3x4xf32>
  %1 = loom.transpose %0, perm = [0, 2, 1] : tensor<2x4x3xf32>
  return %1 : tensor<2x3x4xf32>
}
