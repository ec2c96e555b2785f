// RUN: loom-opt %s -split-input-file -loom-specialize="bind=B=2,T=16" | FileCheck %s

// Tests that named dims are bound and shapes re-inferred through every op.
// CHECK-LABEL: func.func @attention
// CHECK-SAME: (%[[Q:.*]]: tensor<2x16x8xf32>, %[[K:.*]]: tensor<2x16x8xf32>) -> tensor<2x16x16xf32>
// CHECK-SAME: attributes {loom.bound = {B = 2 : i64, T = 16 : i64}}
// CHECK: %[[KT:.*]] = loom.transpose %[[K]], perm = [0, 2, 1] : tensor<2x16x8xf32>
// CHECK: %[[S:.*]] = loom.matmul %[[Q]], %[[KT]] : tensor<2x16x8xf32>, tensor<2x8x16xf32>
// CHECK: %[[P:.*]] = loom.softmax %[[S]], axis = 2 : tensor<2x16x16xf32>
// CHECK: return %[[P]] : tensor<2x16x16xf32>
func.func @attention(%q: tensor<?x?x8xf32> {loom.dims = ["B", "T", ""]},
                     %k: tensor<?x?x8xf32> {loom.dims = ["B", "T", ""]})
    -> tensor<?x?x?xf32> {
  %kt = loom.transpose %k, perm = [0, 2, 1] : tensor<?x?x8xf32>
  %s = loom.matmul %q, %kt : tensor<?x?x8xf32>, tensor<?x8x?xf32>
  %p = loom.softmax %s, axis = 2 : tensor<?x?x?xf32>
  return %p : tensor<?x?x?xf32>
}

// -----

// Tests that a function using only some bindings records only those, and that
// static arguments pass through.
// CHECK-LABEL: func.func @partial
// CHECK-SAME: (%{{.*}}: tensor<16x4xf32>, %{{.*}}: tensor<4xf32>) -> tensor<16x4xf32>
// CHECK-SAME: attributes {loom.bound = {T = 16 : i64}}
func.func @partial(%x: tensor<?x4xf32> {loom.dims = ["T", ""]},
                   %b: tensor<4xf32>) -> tensor<?x4xf32> {
  %0 = loom.add %x, %b : tensor<?x4xf32>, tensor<4xf32>
  return %0 : tensor<?x4xf32>
}
