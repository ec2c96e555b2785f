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

// -----

// Tests that a malformed loom.dims expression is reported at the op.
func.func @malformed(%x: tensor<?x8xf32> {loom.dims = ["B", ""]}) -> tensor<?xf32> {
  // expected-error @+1 {{loom.dims entry 'B*': expected a number, a dim name or '(' at the end}}
  %0 = loom.reshape %x, shape = [-1] {loom.dims = ["B*"]} : tensor<?x8xf32>
  return %0 : tensor<?xf32>
}

// -----

// Tests that an unbalanced parenthesis is reported.
func.func @paren() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims entry '(T+1': expected ')' at offset 4}}
  %0 = loom.arange size = -1 {loom.dims = ["(T+1"]} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that trailing garbage is reported.
func.func @trailing() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims entry 'T T': unexpected 'T' at offset 2}}
  %0 = loom.arange size = -1 {loom.dims = ["T T"]} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that an unexpected character is reported.
func.func @character() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims entry 'T/2': unexpected '/' at offset 1}}
  %0 = loom.arange size = -1 {loom.dims = ["T/2"]} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that an operand position with a bad character is reported.
func.func @atom() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims entry 'T*/2': expected a number, a dim name or '(' at offset 2, got '/'}}
  %0 = loom.arange size = -1 {loom.dims = ["T*/2"]} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that an unbound name in an expression is reported.
func.func @unbound_expr() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims entry 'N*2': dim 'N' is not bound; pass bind=N=N}}
  %0 = loom.arange size = -1 {loom.dims = ["N*2"]} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that a huge literal is reported.
func.func @huge() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims entry '99999999999999999999': number '99999999999999999999' is too large}}
  %0 = loom.arange size = -1 {loom.dims = ["99999999999999999999"]} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that overflow is reported.
func.func @overflow() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims entry '4611686018427387904*T': the value overflows 64 bits}}
  %0 = loom.arange size = -1 {loom.dims = ["4611686018427387904*T"]} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that a negative size is reported.
func.func @negative() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims entry 'B-T' of result dim 0 evaluates to -14, a negative size}}
  %0 = loom.arange size = -1 {loom.dims = ["B-T"]} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that the sized reshape keeps its element count.
func.func @reshape_count(%x: tensor<?x8xf32> {loom.dims = ["B", ""]}) -> tensor<?x?xf32> {
  // expected-error @+1 {{cannot reshape 'tensor<2x8xf32>' (16 elements) to shape [16, 2] (32 elements)}}
  %0 = loom.reshape %x, shape = [-1, -1] {loom.dims = ["T", "B"]} : tensor<?x8xf32>
  return %0 : tensor<?x?xf32>
}

// -----

// Tests that loom.dims may not contradict a static result dim.
func.func @static_dim(%x: tensor<?x8xf32> {loom.dims = ["B", ""]}) -> tensor<?x8xf32> {
  // expected-error @+1 {{result dim 1 is static 8 but loom.dims entry 'T' evaluates to 16}}
  %0 = loom.reshape %x, shape = [-1, 8] {loom.dims = ["B", "T"]} : tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

// Tests that loom.dims has one entry per result dim.
func.func @entries() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims has 2 entries for a result of rank 1}}
  %0 = loom.arange size = -1 {loom.dims = ["T", ""]} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that loom.dims entries are strings.
func.func @entry_type() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims entries must be strings}}
  %0 = loom.arange size = -1 {loom.dims = [3]} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that loom.dims is an array.
func.func @not_array() -> tensor<?xi32> {
  // expected-error @+1 {{loom.dims must be an array of strings}}
  %0 = loom.arange size = -1 {loom.dims = "T"} : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that only arange and reshape take loom.dims.
func.func @other_op(%x: tensor<?x8xf32> {loom.dims = ["B", ""]}) -> tensor<?x8xf32> {
  // expected-error @+1 {{loom.dims is only supported on loom.arange, loom.fill and loom.reshape}}
  %0 = loom.exp %x {loom.dims = ["B", ""]} : tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

// Tests that a dynamic arange needs loom.dims.
func.func @arange_unsized() -> tensor<?xi32> {
  // expected-error @+1 {{result type 'tensor<?xi32>' is still dynamic after binding; size its dynamic dims with a loom.dims attribute}}
  %0 = loom.arange size = -1 : tensor<?xi32>
  return %0 : tensor<?xi32>
}

// -----

// Tests that a reshape left dynamic is reported.
func.func @reshape_unsized(%x: tensor<?x8xf32> {loom.dims = ["B", ""]}) -> tensor<?x?xf32> {
  // expected-error @+1 {{result type 'tensor<?x?xf32>' is still dynamic after binding; size its dynamic dims with a loom.dims attribute}}
  %0 = loom.reshape %x, shape = [-1, -1] : tensor<?x8xf32>
  return %0 : tensor<?x?xf32>
}
