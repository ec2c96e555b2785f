// RUN: loom-opt %s -split-input-file -verify-diagnostics

// Tests that non-broadcastable shapes are rejected.
func.func @add_mismatch(%a: tensor<2x3xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{shapes [2, 3] and [4] do not broadcast}}
  %0 = loom.add %a, %b : tensor<2x3xf32>, tensor<4xf32>
  return
}

// -----

// Tests that mixed element types are rejected.
func.func @mul_types(%a: tensor<3xf32>, %b: tensor<3xbf16>) {
  // expected-error @+1 {{operand element types differ: 'f32' vs 'bf16'}}
  %0 = loom.mul %a, %b : tensor<3xf32>, tensor<3xbf16>
  return
}

// -----

// Tests that matmul checks its contraction dims.
func.func @matmul_k(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+1 {{contraction dims differ: lhs [2, 3] has K = 3, rhs [4, 5] has K = 4}}
  %0 = loom.matmul %a, %b : tensor<2x3xf32>, tensor<4x5xf32>
  return
}

// -----

// Tests that matmul needs matrices.
func.func @matmul_rank(%a: tensor<3xf32>, %b: tensor<3x5xf32>) {
  // expected-error @+1 {{expected operands of rank >= 2, got ranks 1 and 2}}
  %0 = loom.matmul %a, %b : tensor<3xf32>, tensor<3x5xf32>
  return
}

// -----

// Tests that matmul batch dims must broadcast.
func.func @matmul_batch(%a: tensor<2x4x3xf32>, %b: tensor<5x3x6xf32>) {
  // expected-error @+1 {{batch dims [2] and [5] do not broadcast}}
  %0 = loom.matmul %a, %b : tensor<2x4x3xf32>, tensor<5x3x6xf32>
  return
}

// -----

// Tests that matmul rejects integer operands.
func.func @matmul_int(%a: tensor<2x3xi32>, %b: tensor<3x2xi32>) {
  // expected-error @+1 {{must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float or 64-bit float values}}
  %0 = loom.matmul %a, %b : tensor<2x3xi32>, tensor<3x2xi32>
  return
}

// -----

// Tests that transpose needs a permutation.
func.func @transpose_perm(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{perm [0, 0] is not a permutation of [0, 2)}}
  %0 = loom.transpose %a, perm = [0, 0] : tensor<2x3xf32>
  return
}

// -----

// Tests that transpose's perm has one entry per dim.
func.func @transpose_rank(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{perm has 3 entries but the input has rank 2}}
  %0 = loom.transpose %a, perm = [0, 1, 2] : tensor<2x3xf32>
  return
}

// -----

// Tests that softmax's axis lies within the rank.
func.func @softmax_axis(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{'loom.softmax' op axis 2 is out of range for rank 2}}
  %0 = loom.softmax %a, axis = 2 : tensor<2x3xf32>
  return
}

// -----

// Tests that a wrongly declared result type is caught by inference.
func.func @wrong_result(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) {
  // expected-error @+2 {{inferred type(s) 'tensor<2x4xf32>' are incompatible with return type(s) of operation 'tensor<2x5xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = "loom.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x5xf32>
  return
}

// -----

// Tests that unranked operands get an error rather than a crash.
func.func @unranked(%a: tensor<*xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{invalid kind of type specified: expected builtin.tensor, but found 'tensor<*xf32>'}}
  %0 = loom.add %a, %b : tensor<*xf32>, tensor<3xf32>
  return
}

// -----

// Tests the same in generic form, where the operand constraint catches it.
func.func @unranked_generic(%a: tensor<*xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor}}
  %0 = "loom.add"(%a, %b) : (tensor<*xf32>, tensor<3xf32>) -> tensor<3xf32>
  return
}

// -----

// Tests that a constant's attribute and result types agree.
func.func @constant_type() {
  // expected-error @+1 {{failed to verify that all of {value, result} have same type}}
  %0 = "loom.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<3xf32>
  return
}
