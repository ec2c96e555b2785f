// RUN: loom-opt %s -split-input-file -verify-diagnostics -loom-specialize="bind=B=2,T=16"

// Tests that an unbound dim is named in the error.
// expected-error @+1 {{dim 'N' of argument #0 is not bound; pass bind=N=N}}
func.func @unbound(%x: tensor<?xf32> {loom.dims = ["N"]}) -> tensor<?xf32> {
  return %x : tensor<?xf32>
}

// -----

// Tests that a binding contradicting a static dim is reported.
// expected-error @+1 {{argument #0 dim 1 is static 8 but 'T' is bound to 16}}
func.func @contradiction(%x: tensor<?x8xf32> {loom.dims = ["B", "T"]}) -> tensor<?x8xf32> {
  return %x : tensor<?x8xf32>
}

// -----

// Tests that a dynamic dim without a name is reported.
// expected-error @+1 {{argument #0 of type 'tensor<?x4xf32>' has dynamic dims but no loom.dims to name them}}
func.func @unnamed(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  return %x : tensor<?x4xf32>
}

// -----

// Tests that a shape error exposed by binding is reported at the op.
func.func @exposed(%x: tensor<?x8xf32> {loom.dims = ["B", ""]},
                   %w: tensor<?x3xf32> {loom.dims = ["T", ""]}) -> tensor<?x3xf32> {
  // expected-error @+1 {{contraction dims differ: lhs [2, 8] has K = 8, rhs [16, 3] has K = 16}}
  %0 = loom.matmul %x, %w : tensor<?x8xf32>, tensor<?x3xf32>
  return %0 : tensor<?x3xf32>
}
