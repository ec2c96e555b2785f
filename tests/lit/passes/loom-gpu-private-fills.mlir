// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-gpu-private-fills))' | FileCheck %s

// Tests that each product starting from the one zero fill gets a fill of
// its own into a tensor.empty of its own, and that the original stays for
// the op that reads it (an input, not an output).
// CHECK-LABEL: func.func @shared
// CHECK: %[[E:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK: %[[Z:.*]] = linalg.fill ins(%[[C0:.*]] : f32) outs(%[[E]] : tensor<4x8xf32>)
// CHECK: %[[E1:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK: %[[Z1:.*]] = linalg.fill ins(%[[C0]] : f32) outs(%[[E1]] : tensor<4x8xf32>)
// CHECK: %[[P:.*]] = linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<4x16xf32>, tensor<16x8xf32>) outs(%[[Z1]] : tensor<4x8xf32>)
// CHECK: %[[E2:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK: %[[Z2:.*]] = linalg.fill ins(%[[C0]] : f32) outs(%[[E2]] : tensor<4x8xf32>)
// CHECK: %[[Q:.*]] = linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<4x16xf32>, tensor<16x8xf32>) outs(%[[Z2]] : tensor<4x8xf32>)
// CHECK: linalg.add ins(%[[P]], %[[Z]] : tensor<4x8xf32>, tensor<4x8xf32>) outs(%[[Q]] : tensor<4x8xf32>)
func.func @shared(%a: tensor<4x16xf32>, %b: tensor<16x8xf32>, %c: tensor<16x8xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %p = linalg.matmul ins(%a, %b : tensor<4x16xf32>, tensor<16x8xf32>) outs(%z : tensor<4x8xf32>) -> tensor<4x8xf32>
  %q = linalg.matmul ins(%a, %c : tensor<4x16xf32>, tensor<16x8xf32>) outs(%z : tensor<4x8xf32>) -> tensor<4x8xf32>
  %s = linalg.add ins(%p, %z : tensor<4x8xf32>, tensor<4x8xf32>) outs(%q : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %s : tensor<4x8xf32>
}

// -----

// Tests that a fill only one product starts from stays as it is, and that
// one that only the two products start from is replaced by their own.
// CHECK-LABEL: func.func @alone
// CHECK: %[[E:.*]] = tensor.empty()
// CHECK-NEXT: %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E]] : tensor<4x8xf32>)
// CHECK-NEXT: linalg.matmul {{.*}} outs(%[[Z]] : tensor<4x8xf32>)
// CHECK-NOT: linalg.fill
// CHECK-LABEL: func.func @two
// CHECK: tensor.empty
// CHECK-NEXT: linalg.fill
// CHECK-NEXT: linalg.matmul
// CHECK-NEXT: tensor.empty
// CHECK-NEXT: linalg.fill
// CHECK-NEXT: linalg.matmul
// CHECK-NOT: linalg.fill
func.func @alone(%a: tensor<4x16xf32>, %b: tensor<16x8xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %p = linalg.matmul ins(%a, %b : tensor<4x16xf32>, tensor<16x8xf32>) outs(%z : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %p : tensor<4x8xf32>
}
func.func @two(%a: tensor<4x16xf32>, %b: tensor<16x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %p = linalg.matmul ins(%a, %b : tensor<4x16xf32>, tensor<16x8xf32>) outs(%z : tensor<4x8xf32>) -> tensor<4x8xf32>
  %q = linalg.matmul ins(%a, %b : tensor<4x16xf32>, tensor<16x8xf32>) outs(%z : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %p, %q : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Tests that an op that does not read its init (an elementwise add into
// the zeros) writes a tensor.empty of its own, and that the product, then
// the fill's only user, keeps the fill.
// CHECK-LABEL: func.func @unread
// CHECK: %[[E:.*]] = tensor.empty()
// CHECK-NEXT: %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E]] : tensor<4x8xf32>)
// CHECK-NEXT: linalg.matmul {{.*}} outs(%[[Z]] : tensor<4x8xf32>)
// CHECK-NEXT: %[[E2:.*]] = tensor.empty()
// CHECK-NEXT: linalg.add {{.*}} outs(%[[E2]] : tensor<4x8xf32>)
// CHECK-NOT: linalg.fill
func.func @unread(%a: tensor<4x16xf32>, %b: tensor<16x8xf32>, %x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %p = linalg.matmul ins(%a, %b : tensor<4x16xf32>, tensor<16x8xf32>) outs(%z : tensor<4x8xf32>) -> tensor<4x8xf32>
  %q = linalg.add ins(%x, %x : tensor<4x8xf32>, tensor<4x8xf32>) outs(%z : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %p, %q : tensor<4x8xf32>, tensor<4x8xf32>
}
