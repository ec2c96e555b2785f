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

// -----

// Tests that loom.dims expressions size reshape and arange results: the
// attributes are dropped, `shape` and `size` are rewritten, and the new shapes
// flow into the ops that follow.
// CHECK-LABEL: func.func @result_dims
// CHECK-SAME: (%[[X:.*]]: tensor<2x16x8xf32>) -> (tensor<32x8xf32>, tensor<15x8xf32>, tensor<15xi32>)
// CHECK-SAME: attributes {loom.bound = {B = 2 : i64, T = 16 : i64}}
// CHECK: %[[R:.*]] = loom.reshape %[[X]], shape = [32, 8] : tensor<2x16x8xf32>
// CHECK: %[[S:.*]] = loom.slice %[[R]], axis = 0, start = 1, end = 16 : tensor<32x8xf32>
// CHECK: %[[P:.*]] = loom.arange size = 15 : tensor<15xi32>
// CHECK: %[[B:.*]] = loom.reshape %[[R]], shape = [2, 16, 8] : tensor<32x8xf32>
// CHECK-NOT: loom.dims
// CHECK: return %[[R]], %[[S]], %[[P]]
func.func @result_dims(%x: tensor<?x?x8xf32> {loom.dims = ["B", "T", ""]})
    -> (tensor<?x8xf32>, tensor<15x8xf32>, tensor<?xi32>) {
  %r = loom.reshape %x, shape = [-1, 8] {loom.dims = ["B*T", ""]}
      : tensor<?x?x8xf32>
  %s = loom.slice %r, axis = 0, start = 1, end = 16 : tensor<?x8xf32>
  %p = loom.arange size = -1 {loom.dims = [" (T - 1) * 1 "]} : tensor<?xi32>
  %b = loom.reshape %r, shape = [-1, -1, 8] {loom.dims = ["B", "T", ""]}
      : tensor<?x8xf32>
  return %r, %s, %p : tensor<?x8xf32>, tensor<15x8xf32>, tensor<?xi32>
}

// -----

// Tests that a name used only in an op's loom.dims is recorded as bound.
// CHECK-LABEL: func.func @arange_only
// CHECK-SAME: () -> tensor<32xi32>
// CHECK-SAME: attributes {loom.bound = {B = 2 : i64, T = 16 : i64}}
// CHECK: loom.arange size = 32 : tensor<32xi32>
func.func @arange_only() -> tensor<?xi32> {
  %p = loom.arange size = -1 {loom.dims = ["B*T"]} : tensor<?xi32>
  return %p : tensor<?xi32>
}

// -----

// Tests that loom.dims sizes a fill, so a zero state can depend on B.
// CHECK-LABEL: func.func @zero_state
// CHECK-SAME: (%{{.*}}: tensor<2x16x8xf32>) -> tensor<2x32xf32>
// CHECK: loom.fill value = 0.000000e+00 : tensor<2x32xf32>
// CHECK-NOT: loom.dims
func.func @zero_state(%x: tensor<?x?x8xf32> {loom.dims = ["B", "T", ""]})
    -> tensor<?x32xf32> {
  %h = loom.fill value = 0.0 {loom.dims = ["B", ""]} : tensor<?x32xf32>
  return %h : tensor<?x32xf32>
}
