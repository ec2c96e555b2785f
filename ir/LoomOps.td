//===- LoomOps.td - loom dialect operations ----------------*- tablegen -*-===//

#ifndef LOOM_IR_LOOMOPS_TD
#define LOOM_IR_LOOMOPS_TD

include "ir/LoomDialect.td"
include "ir/LoomInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

/// A pure op with a cost model.
class Loom_PureOp<string mnemonic, list<Trait> traits = []>
    : Loom_Op<mnemonic, !listconcat(traits, [
        Pure, DeclareOpInterfaceMethods<Loom_CostModelOpInterface>])>;

/// A pure op whose result types C++ code infers from operands and attributes.
class Loom_InferredOp<string mnemonic, list<Trait> traits = []>
    : Loom_PureOp<mnemonic, !listconcat(traits, [InferTypeOpAdaptor])>;

/// A pure op whose result has the type of its operands (ODS generates the
/// inference).
class Loom_SameTypeOp<string mnemonic, list<Trait> traits = []>
    : Loom_PureOp<mnemonic, !listconcat(traits, [
        SameOperandsAndResultType, InferTypeOpInterface])>;

//===----------------------------------------------------------------------===//
// constant
//===----------------------------------------------------------------------===//

def Loom_ConstantOp : Loom_Op<"constant", [
    ConstantLike, Pure, AllTypesMatch<["value", "result"]>]> {
  let summary = "A tensor constant";
  let description = [{
    Materializes a dense tensor constant.

    ```mlir
    %0 = loom.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
    ```
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Loom_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

/// `lhs op rhs` elementwise, with NumPy broadcasting: shapes are aligned at
/// their trailing dims and a dim of 1 stretches to the other operand's dim.
class Loom_BinaryOp<string mnemonic, string what, list<Trait> traits = []>
    : Loom_InferredOp<mnemonic, !listconcat(traits, [
        DeclareOpInterfaceMethods<Loom_VjpOpInterface>])> {
  let summary = "Elementwise " # what # " with broadcasting";
  let description = [{
    Computes `lhs }] # what # [{ rhs` elementwise. Both operands have the same
    element type; their shapes broadcast NumPy-style (trailing dims aligned, a
    dim of 1 stretches). A dynamic dim (`?`) matches any dim.

    ```mlir
    %r = loom.}] # mnemonic # [{ %a, %b : tensor<2x3xf32>, tensor<3xf32>
    // %r : tensor<2x3xf32>
    ```
  }];
  let arguments = (ins Loom_Tensor:$lhs, Loom_Tensor:$rhs);
  let results = (outs Loom_Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs)";
}

def Loom_AddOp : Loom_BinaryOp<"add", "+", [Commutative]>;
def Loom_SubOp : Loom_BinaryOp<"sub", "-">;
def Loom_MulOp : Loom_BinaryOp<"mul", "*", [Commutative]>;
def Loom_DivOp : Loom_BinaryOp<"div", "/">;

/// `op(input)` elementwise on a floating-point tensor. `flops` is the FLOP
/// count per element that `getFlopCount` reports (`kFlopsPerElement`).
class Loom_UnaryFloatOp<string mnemonic, string what, int flops = 1>
    : Loom_SameTypeOp<mnemonic, [DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Elementwise " # what;
  let description = [{
    Computes }] # what # [{ of every element of a floating-point tensor.
    Counts }] # !cast<string>(flops) # [{ FLOP(s) per element.

    ```mlir
    %r = loom.}] # mnemonic # [{ %x : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let extraClassDeclaration = [{
    static constexpr int64_t kFlopsPerElement = }] # !cast<string>(flops) # [{;
  }];
}

// FLOPs per element: 1 for arithmetic (neg, relu), 4 for transcendental
// functions (log, tanh, sigmoid, sqrt, rsqrt). `exp` has always counted 1.
def Loom_NegOp : Loom_UnaryFloatOp<"neg", "negation">;
def Loom_ExpOp : Loom_UnaryFloatOp<"exp", "the natural exponential">;
def Loom_LogOp : Loom_UnaryFloatOp<"log", "the natural logarithm", 4>;
def Loom_TanhOp : Loom_UnaryFloatOp<"tanh", "the hyperbolic tangent", 4>;
def Loom_SigmoidOp
    : Loom_UnaryFloatOp<"sigmoid", "the logistic sigmoid `1 / (1 + exp(-x))`",
                        4>;
def Loom_ReluOp : Loom_UnaryFloatOp<"relu", "the rectifier `max(x, 0)`">;
def Loom_SqrtOp : Loom_UnaryFloatOp<"sqrt", "the square root", 4>;
def Loom_RsqrtOp
    : Loom_UnaryFloatOp<"rsqrt", "the reciprocal square root `1 / sqrt(x)`", 4>;

def Loom_GeluOp : Loom_SameTypeOp<"gelu", [DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Elementwise Gaussian error linear unit";
  let description = [{
    Computes `x * Phi(x)` elementwise, `Phi` being the standard normal CDF.
    With `approximate = false` it is the exact erf form
    `0.5 * x * (1 + erf(x / sqrt(2)))`; with `approximate = true` the tanh form
    `0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`. Counts 8 FLOPs
    per element.

    ```mlir
    %r = loom.gelu %x, approximate = true : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, BoolAttr:$approximate);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` `approximate` `=` $approximate attr-dict `:` type($input)";
}

def Loom_PowOp : Loom_SameTypeOp<"pow", [DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Elementwise power with a constant exponent";
  let description = [{
    Computes `x ** exponent` elementwise (as C's `pow`: a negative base with a
    non-integer exponent gives NaN). Counts 4 FLOPs per element.

    ```mlir
    %r = loom.pow %x, exponent = 2.000000e+00 : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Loom_F64Attr:$exponent);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` `exponent` `=` $exponent attr-dict `:` type($input)";
}

def Loom_CompareOp : Loom_InferredOp<"compare"> {
  let summary = "Elementwise comparison with broadcasting";
  let description = [{
    Compares `lhs` and `rhs` elementwise with `predicate`, one of `"eq"`,
    `"ne"`, `"lt"`, `"le"`, `"gt"`, `"ge"`, giving an `i1` tensor. Operands
    have the same element type and broadcast NumPy-style, as in `add`. Counts
    one FLOP per result element.

    ```mlir
    %m = loom.compare %a, %b, predicate = "ne" : tensor<2x3xi32>, tensor<i32>
    // %m : tensor<2x3xi1>
    ```
  }];
  let arguments = (ins Loom_Tensor:$lhs, Loom_Tensor:$rhs, StrAttr:$predicate);
  let results = (outs Loom_BoolTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` `predicate` `=` $predicate attr-dict `:` type($lhs) `,`
    type($rhs)
  }];
  let hasVerifier = 1;
}

def Loom_WhereOp : Loom_InferredOp<"where", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Elementwise selection with broadcasting";
  let description = [{
    `cond ? lhs : rhs` elementwise. `cond` is an `i1` tensor; `lhs` and `rhs`
    share an element type, which the result has. The three shapes broadcast
    NumPy-style. Counts one FLOP per result element.

    ```mlir
    %r = loom.where %c, %a, %b : tensor<4x1xi1>, tensor<4x8xf32>, tensor<f32>
    // %r : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Loom_BoolTensor:$cond, Loom_Tensor:$lhs,
                       Loom_Tensor:$rhs);
  let results = (outs Loom_Tensor:$result);
  let assemblyFormat = [{
    $cond `,` $lhs `,` $rhs attr-dict `:` type($cond) `,` type($lhs) `,`
    type($rhs)
  }];
}

def Loom_CastOp : Loom_InferredOp<"cast", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Elementwise element-type conversion";
  let description = [{
    Converts every element to the element type `to` (`f32`, `bf16`, `f16`,
    `f64`, `i32` or `i1`); the shape is kept. Float to integer rounds toward
    zero; anything to `i1` is `x != 0`. Counts one FLOP per element.

    ```mlir
    %r = loom.cast %x, to = bf16 : tensor<2x3xf32>
    // %r : tensor<2x3xbf16>
    ```
  }];
  let arguments = (ins Loom_Tensor:$input, TypeAttrOf<Loom_Element>:$to);
  let results = (outs Loom_Tensor:$result);
  let assemblyFormat = "$input `,` `to` `=` $to attr-dict `:` type($input)";
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

/// Reduces `input` over `axes` (unique, sorted, in `[0, rank)`, non-empty);
/// `keepdim` keeps the reduced dims as 1s.
class Loom_ReduceOp<string mnemonic, string what, Type tensor = Loom_Tensor>
    : Loom_InferredOp<mnemonic, [DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Reduces a tensor by " # what # " over some axes";
  let description = [{
    Takes the }] # what # [{ of `input` over `axes`, which are unique, sorted,
    non-empty and in `[0, rank)`. With `keepdim = true` the reduced dims stay
    as 1s; otherwise they are dropped. Counts one FLOP per input element (plus
    one per result element for a mean).

    ```mlir
    %r = loom.}] # mnemonic # [{ %x, axes = [1], keepdim = false
        : tensor<2x3xf32>
    // %r : tensor<2xf32>
    ```
  }];
  let arguments = (ins tensor:$input, DenseI64ArrayAttr:$axes,
                       BoolAttr:$keepdim);
  let results = (outs tensor:$result);
  let assemblyFormat = [{
    $input `,` `axes` `=` $axes `,` `keepdim` `=` $keepdim attr-dict `:`
    type($input)
  }];
}

def Loom_ReduceSumOp : Loom_ReduceOp<"reduce_sum", "the sum">;
def Loom_ReduceMeanOp
    : Loom_ReduceOp<"reduce_mean", "the mean", Loom_FloatTensor>;
def Loom_ReduceMaxOp : Loom_ReduceOp<"reduce_max", "the maximum">;

//===----------------------------------------------------------------------===//
// matmul
//===----------------------------------------------------------------------===//

def Loom_MatmulOp : Loom_InferredOp<"matmul", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Batched matrix product";
  let description = [{
    `lhs: [..., M, K] @ rhs: [..., K, N] -> [..., M, N]`. Both operands have
    rank >= 2 and the same floating-point element type; their batch dims (all
    but the last two) broadcast NumPy-style, so a rank-2 weight multiplies
    every matrix of a batch.

    ```mlir
    %y = loom.matmul %x, %w : tensor<8x16x64xf32>, tensor<64x32xf32>
    // %y : tensor<8x16x32xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$lhs, Loom_FloatTensor:$rhs);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs)";
}

//===----------------------------------------------------------------------===//
// transpose
//===----------------------------------------------------------------------===//

def Loom_TransposeOp : Loom_InferredOp<"transpose", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Permutes the dims of a tensor";
  let description = [{
    Result dim `i` is input dim `perm[i]`; `perm` is a permutation of
    `[0, rank)`.

    ```mlir
    %t = loom.transpose %x, perm = [0, 2, 1] : tensor<2x3x4xf32>
    // %t : tensor<2x4x3xf32>
    ```
  }];
  let arguments = (ins Loom_Tensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs Loom_Tensor:$result);
  let assemblyFormat =
      "$input `,` `perm` `=` $perm attr-dict `:` type($input)";
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

//===----------------------------------------------------------------------===//
// softmax
//===----------------------------------------------------------------------===//

def Loom_SoftmaxOp : Loom_SameTypeOp<"softmax", [DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Softmax along one axis";
  let description = [{
    `exp(x - max(x)) / sum(exp(x - max(x)))` along `axis`, which lies in
    `[0, rank)`.

    ```mlir
    %p = loom.softmax %s, axis = 1 : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` `axis` `=` $axis attr-dict `:` type($input)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

def Loom_ReshapeOp : Loom_InferredOp<"reshape", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Gives a tensor a new shape with the same elements";
  let description = [{
    Reinterprets the row-major elements of `input` with the shape `shape`. An
    entry >= 0 is a static size; -1 is a dynamic dim. When the input is static
    and `shape` has exactly one -1, that dim is computed from the element count
    (which must divide evenly); when input and result are both static their
    element counts must agree. The element type is kept. Counts no FLOPs.

    A `loom.dims` attribute (one string per result dim: "" or an expression
    over symbolic dims such as "B*T") lets `loom-specialize` size the dynamic
    dims.

    ```mlir
    %r = loom.reshape %x, shape = [-1, 4] : tensor<2x3x4xf32>
    // %r : tensor<6x4xf32>
    ```
  }];
  let arguments = (ins Loom_Tensor:$input, DenseI64ArrayAttr:$shape);
  let results = (outs Loom_Tensor:$result);
  let assemblyFormat =
      "$input `,` `shape` `=` $shape attr-dict `:` type($input)";
}

def Loom_SplitHeadsOp : Loom_InferredOp<"split_heads", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Splits the feature dim into attention heads";
  let description = [{
    `[B, T, H*Dh] -> [B, H, T, Dh]` with `H = heads`: reshapes the last dim to
    `[H, Dh]` and moves the head dim before the time dim. A static last dim
    must be divisible by `heads`; a dynamic one gives a dynamic `Dh`. Counts no
    FLOPs.

    ```mlir
    %h = loom.split_heads %x, heads = 4 : tensor<2x16x64xf32>
    // %h : tensor<2x4x16x16xf32>
    ```
  }];
  let arguments = (ins Loom_Tensor:$input, Loom_I64Attr:$heads);
  let results = (outs Loom_Tensor:$result);
  let assemblyFormat =
      "$input `,` `heads` `=` $heads attr-dict `:` type($input)";
}

def Loom_MergeHeadsOp : Loom_InferredOp<"merge_heads", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Merges attention heads back into the feature dim";
  let description = [{
    `[B, H, T, Dh] -> [B, T, H*Dh]`, the inverse of `split_heads`. The merged
    dim is dynamic when `H` or `Dh` is. Counts no FLOPs.

    ```mlir
    %x = loom.merge_heads %h : tensor<2x4x16x16xf32>
    // %x : tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Loom_Tensor:$input);
  let results = (outs Loom_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Loom_ConcatOp : Loom_InferredOp<"concat", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Concatenates tensors along one axis";
  let description = [{
    Joins one or more tensors of the same rank and element type along `axis`
    (in `[0, rank)`). The other dims must agree where static; the result's
    `axis` dim is the sum of the inputs', dynamic if any of them is. Counts no
    FLOPs.

    ```mlir
    %r = loom.concat %a, %b, axis = 1 : tensor<2x3xf32>, tensor<2x5xf32>
    // %r : tensor<2x8xf32>
    ```
  }];
  let arguments = (ins Variadic<Loom_Tensor>:$inputs, Loom_I64Attr:$axis);
  let results = (outs Loom_Tensor:$result);
  // `custom<ConcatInputs>` parses `%a, %b,`: a plain `$inputs `,`` would try
  // to read `axis` as another operand after the comma.
  let assemblyFormat =
      "custom<ConcatInputs>($inputs) `axis` `=` $axis attr-dict `:` "
      "type($inputs)";
}

def Loom_SliceOp : Loom_InferredOp<"slice", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Takes a contiguous range of one axis";
  let description = [{
    Keeps indices `[start, end)` of dim `axis`, with Python semantics: a
    negative `start` or `end` counts from the end (`dim + v`). After that,
    `0 <= start <= end <= dim` must hold for a static dim. For a dynamic dim
    the result dim is static `end - start` when both are non-negative, else
    dynamic. Counts no FLOPs.

    ```mlir
    %r = loom.slice %x, axis = 1, start = 1, end = -1 : tensor<2x8xf32>
    // %r : tensor<2x6xf32>
    ```
  }];
  let arguments = (ins Loom_Tensor:$input, Loom_I64Attr:$axis,
                       Loom_I64Attr:$start, Loom_I64Attr:$end);
  let results = (outs Loom_Tensor:$result);
  let assemblyFormat = [{
    $input `,` `axis` `=` $axis `,` `start` `=` $start `,` `end` `=` $end
    attr-dict `:` type($input)
  }];
}

//===----------------------------------------------------------------------===//
// Model ops
//===----------------------------------------------------------------------===//

def Loom_EmbeddingOp : Loom_InferredOp<"embedding", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Looks up rows of an embedding table";
  let description = [{
    `table: [V, D]`, `ids: [...]` (`i32`) -> `[..., D]`: row `ids[...]` of
    `table`, with the table's element type. Ids outside `[0, V)` are undefined
    behavior. Counts no FLOPs.

    ```mlir
    %e = loom.embedding %table, %ids : tensor<256x64xf32>, tensor<2x16xi32>
    // %e : tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$table, Loom_IndexTensor:$ids);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat =
      "$table `,` $ids attr-dict `:` type($table) `,` type($ids)";
}

def Loom_SinusoidalOp : Loom_InferredOp<"sinusoidal"> {
  let summary = "Sinusoidal positional encoding";
  let description = [{
    `positions: [...]` (`i32`) -> `[..., dim]` (`f32`), the encoding of
    "Attention Is All You Need": for `i` in `[0, dim / 2)`,
    `out[..., 2i] = sin(p / 10000^(2i / dim))` and
    `out[..., 2i + 1] = cos(p / 10000^(2i / dim))`. `dim` is even and
    positive. Counts 4 FLOPs per result element.

    ```mlir
    %pe = loom.sinusoidal %pos, dim = 64 : tensor<16xi32>
    // %pe : tensor<16x64xf32>
    ```
  }];
  let arguments = (ins Loom_IndexTensor:$positions, Loom_I64Attr:$dim);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat =
      "$positions `,` `dim` `=` $dim attr-dict `:` type($positions)";
}

def Loom_ArangeOp : Loom_PureOp<"arange"> {
  let summary = "The integers 0, 1, ..., size - 1";
  let description = [{
    A rank-1 `i32` tensor holding `0 .. size - 1`. `size` is >= 0, or -1 for a
    dynamic size; since no operand carries the size, the result type is
    written out and must match `size`. A `loom.dims` attribute (`["T"]`, or an
    expression such as `["T-1"]`) lets `loom-specialize` set a dynamic size.
    Counts no FLOPs.

    ```mlir
    %r = loom.arange size = 16 : tensor<16xi32>
    %d = loom.arange size = -1 {loom.dims = ["T"]} : tensor<?xi32>
    ```
  }];
  let arguments = (ins Loom_I64Attr:$size);
  let results = (outs Loom_IndexTensor:$result);
  let assemblyFormat = "`size` `=` $size attr-dict `:` type($result)";
  let builders = [
    // The result type follows from `size` (-1: dynamic).
    OpBuilder<(ins "int64_t":$size)>,
  ];
  let hasVerifier = 1;
}

def Loom_FillOp : Loom_PureOp<"fill"> {
  let summary = "A tensor with every element equal to a constant";
  let description = [{
    A tensor of the written result type (any loom element type) holding
    `value` everywhere (converted to the element type: truncated toward zero
    for `i32`, `value != 0` for `i1`). Unlike `loom.constant` its shape may
    have dynamic dims, sized by a `loom.dims` attribute that
    `loom-specialize` evaluates (as for `arange`). Counts no FLOPs.

    ```mlir
    %z = loom.fill value = 0.0 : tensor<2x128xf32>
    %d = loom.fill value = 0.0 {loom.dims = ["B", ""]} : tensor<?x128xf32>
    ```
  }];
  let arguments = (ins Loom_F64Attr:$value);
  let results = (outs Loom_Tensor:$result);
  let assemblyFormat = "`value` `=` $value attr-dict `:` type($result)";
}

def Loom_LayerNormOp : Loom_InferredOp<"layer_norm", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Layer normalization over the last dim";
  let description = [{
    `(x - mean) / sqrt(var + eps) * gamma + beta`, with the (biased) mean and
    variance taken over the last dim of `input` (rank >= 1). `gamma` and `beta`
    are rank-1 `[D]`, `D` being the last dim; all three share a floating-point
    element type. The result has the input's type. `eps` is >= 0. Counts 8
    FLOPs per element.

    ```mlir
    %y = loom.layer_norm %x, %g, %b, eps = 1.000000e-05
        : tensor<2x8xf32>, tensor<8xf32>, tensor<8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Loom_FloatTensor:$gamma,
                       Loom_FloatTensor:$beta, Loom_F64Attr:$eps);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $gamma `,` $beta `,` `eps` `=` $eps attr-dict `:` type($input)
    `,` type($gamma) `,` type($beta)
  }];
  let hasVerifier = 1;
}

def Loom_AttentionOp : Loom_InferredOp<"attention", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Scaled dot-product attention";
  let description = [{
    `softmax(q @ k^T * scale + masks) @ v` over the key axis, with
    `q: [..., Tq, D]`, `k: [..., Tk, D]`, `v: [..., Tk, Dv]` -> `[..., Tq, Dv]`.
    All three have the same rank (>= 3), the same floating-point element type
    and identical batch dims (`...`, no broadcasting; a dynamic dim matches
    any size).

    - `causal = true`: query `i` attends key `j` only when
      `j <= i + (Tk - Tq)` (the usual lower triangle when `Tq == Tk`).
    - `key_mask` (optional, `i1`, `[B, Tk]` with `B` = dim 0 of `q`): `true`
      means the key is attended, `false` that it is padding; it applies to
      every head and query of batch entry `b`.

    A query that may attend no key gets zeros. Counts, per batch entry,
    `2*Tq*Tk*D + 2*Tq*Tk*Dv` for the two products plus `6*Tq*Tk` for scaling
    and softmax (causal masking is not discounted).

    ```mlir
    %o = loom.attention %q, %k, %v, mask %m, causal = true, scale = 1.250000e-01
        : tensor<2x4x16x64xf32>, tensor<2x4x16x64xf32>, tensor<2x4x16x64xf32>,
          tensor<2x16xi1>
    // %o : tensor<2x4x16x64xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$q, Loom_FloatTensor:$k,
                       Loom_FloatTensor:$v, Optional<Loom_BoolTensor>:$key_mask,
                       BoolAttr:$causal, Loom_F64Attr:$scale);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` (`mask` $key_mask^ `,`)? `causal` `=` $causal `,`
    `scale` `=` $scale attr-dict `:` type($q) `,` type($k) `,` type($v)
    (`,` type($key_mask)^)?
  }];
}

def Loom_CachedAttentionOp : Loom_InferredOp<"cached_attention"> {
  let summary = "Causal attention of new tokens over a key/value cache";
  let description = [{
    One step of incremental decoding (made by `loom-derive-decode` from a
    causal `loom.attention`). `q`, `k`, `v: [B, H, T, D]` (`Dv` for `v`) are
    the queries, keys and values of `T` new tokens per sequence;
    `k_cache: [B, H, C, D]`, `v_cache: [B, H, C, Dv]` hold `C` positions;
    `start: [B]` (`i32`) is the position of each sequence's first new token.

    Results: the caches with the new keys and values written at positions
    `start[b] .. start[b] + T - 1` (every other entry unchanged), and the
    attention `[B, H, T, Dv]` of each new token over the updated cache: token
    `t` of sequence `b` attends the keys at positions `j <= start[b] + t`,
    so positions past `start[b] + T` (unfilled, or another sequence's
    padding) are never read. `start[b] + T > C` is undefined behavior (the
    runtime checks it before a call). Counts the FLOPs of an attention over
    all `C` keys (an upper bound).

    ```mlir
    %o, %kc2, %vc2 = loom.cached_attention %q, %k, %v, %kc, %vc, %start,
        scale = 1.250000e-01
        : tensor<1x4x1x64xf32>, tensor<1x4x1x64xf32>, tensor<1x4x1x64xf32>,
          tensor<1x4x256x64xf32>, tensor<1x4x256x64xf32>, tensor<1xi32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$q, Loom_FloatTensor:$k,
                       Loom_FloatTensor:$v, Loom_FloatTensor:$k_cache,
                       Loom_FloatTensor:$v_cache, Loom_IndexTensor:$start,
                       Loom_F64Attr:$scale);
  let results = (outs Loom_FloatTensor:$result, Loom_FloatTensor:$k_cache_out,
                      Loom_FloatTensor:$v_cache_out);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $k_cache `,` $v_cache `,` $start `,` `scale` `=`
    $scale attr-dict `:` type($q) `,` type($k) `,` type($v) `,`
    type($k_cache) `,` type($v_cache) `,` type($start)
  }];
}

def Loom_DecodePositionsOp : Loom_InferredOp<"decode_positions"> {
  let summary = "Absolute positions of new tokens: start[b] + t";
  let description = [{
    `start: [B]` and `tokens: [B, T]` (both `i32`) -> `[B, T]` (`i32`) with
    `start[b] + t`: the positions of `T` new tokens per sequence, which
    `loom-derive-decode` puts where a full forward used `arange(T)`. Only the
    shape of `tokens` is read. Counts no FLOPs.

    ```mlir
    %p = loom.decode_positions %start, %tokens : tensor<2xi32>, tensor<2x1xi32>
    // %p : tensor<2x1xi32>
    ```
  }];
  let arguments = (ins Loom_IndexTensor:$start, Loom_IndexTensor:$tokens);
  let results = (outs Loom_IndexTensor:$result);
  let assemblyFormat =
      "$start `,` $tokens attr-dict `:` type($start) `,` type($tokens)";
}

def Loom_CrossEntropyOp : Loom_InferredOp<"cross_entropy", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Mean softmax cross-entropy of logits against class ids";
  let description = [{
    `logits: [..., V]` (floating point), `targets: [...]` (`i32`, the shape of
    `logits` without its last dim) -> a rank-0 tensor of the logits' element
    type: the mean of `logsumexp(logits[p]) - logits[p, targets[p]]` over the
    positions `p` whose target is not `ignore_index` (0/0 = NaN when every
    position is ignored, as in PyTorch). Other targets outside `[0, V)` are
    undefined behavior. Counts 5 FLOPs per logit.

    `lse`, when given (`loom-fuse-cross-entropy` adds it where the gradient
    is taken too), is `loom.logsumexp(logits)`, computed once for both.

    ```mlir
    %l = loom.cross_entropy %logits, %t, ignore_index = -100
        : tensor<2x16x256xf32>, tensor<2x16xi32>
    // %l : tensor<f32>
    %lse = loom.logsumexp %logits : tensor<2x16x256xf32> -> tensor<2x16xf32>
    %l2 = loom.cross_entropy %logits, %t, lse %lse, ignore_index = -100
        : tensor<2x16x256xf32>, tensor<2x16xi32>, tensor<2x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$logits, Loom_IndexTensor:$targets,
                       Optional<Loom_FloatTensor>:$lse,
                       Loom_I64Attr:$ignore_index);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $targets `,` (`lse` $lse^ `,`)? `ignore_index` `=`
    $ignore_index attr-dict `:` type($logits) `,` type($targets)
    (`,` type($lse)^)?
  }];
  let hasVerifier = 1;
}

def Loom_DropoutOp : Loom_InferredOp<"dropout", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "Inverted dropout with a deterministic mask";
  let description = [{
    Zeroes each element of `input` with probability `rate` (`0 <= rate < 1`)
    and scales the others by `1 / (1 - rate)`. The mask is a pure function of
    `seed` (a `tensor<i64>`), `site` and the element's index, so the op has no
    side effects; `site` (>= 0) numbers the dropout sites of a function so
    each draws its own mask from the same seed. Code for inference simply does
    not emit the op. The result has the input's type. Counts 2 FLOPs per
    element.

    The mask, which compiled code and the reference evaluator reproduce bit
    for bit: for the element at row-major linear index `i` (as `uint64`), with
    `seed` reinterpreted as `uint64` and all arithmetic wrapping modulo 2^64,

    ```
    x = seed + site * 0x9E3779B97F4A7C15 + i * 0xD1B54A32D192ED03
    x ^= x >> 30;  x *= 0xBF58476D1CE4E5B9
    x ^= x >> 27;  x *= 0x94D049BB133111EB
    x ^= x >> 31
    u = double(x >> 40) * 2^-24          // in [0, 1), exact
    ```

    the element is kept when `u >= rate`, compared in `f64` with the `f64`
    attribute (equivalently `(x >> 40) >= ceil(rate * 2^24)`; rounding `rate`
    to `f32` first may flip elements). Kept elements are scaled by
    `1 / (1 - rate)`; dropped ones are 0.

    ```mlir
    %y = loom.dropout %x, %seed, rate = 1.000000e-01, site = 0 : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Loom_SeedTensor:$seed,
                       Loom_F64Attr:$rate, Loom_I64Attr:$site);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $seed `,` `rate` `=` $rate `,` `site` `=` $site attr-dict `:`
    type($input)
  }];
  let hasVerifier = 1;
}

def Loom_LstmOp : Loom_InferredOp<"lstm", [
    DeclareOpInterfaceMethods<Loom_VjpOpInterface>]> {
  let summary = "A single-layer, batch-first LSTM over a whole sequence";
  let description = [{
    `input: [B, T, I]`, initial state `h0, c0: [B, H]`, weights
    `w_ih: [I, 4H]`, `w_hh: [H, 4H]`, `bias: [4H]`, all of one floating-point
    element type. For `t` in `0 .. T-1`, with gates in the order i, f, g, o:

    ```
    z = input[:, t] @ w_ih + h @ w_hh + bias          // [B, 4H]
    i, f, g, o = sigmoid(z[0:H]), sigmoid(z[H:2H]), tanh(z[2H:3H]),
                 sigmoid(z[3H:4H])
    c = f * c + i * g;  h = o * tanh(c);  outputs[:, t] = h
    ```

    Results: `outputs: [B, T, H]`, the final `h_n: [B, H]` and `c_n: [B, H]`.
    Counts `B*T*(8*H*(I + H) + 30*H)`.

    ```mlir
    %out, %h, %c = loom.lstm %x, %h0, %c0, %wih, %whh, %b
        : tensor<2x16x8xf32>, tensor<2x32xf32>, tensor<2x32xf32>,
          tensor<8x128xf32>, tensor<32x128xf32>, tensor<128xf32>
    // %out : tensor<2x16x32xf32>, %h, %c : tensor<2x32xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Loom_FloatTensor:$h0,
                       Loom_FloatTensor:$c0, Loom_FloatTensor:$w_ih,
                       Loom_FloatTensor:$w_hh, Loom_FloatTensor:$bias);
  let results = (outs Loom_FloatTensor:$outputs, Loom_FloatTensor:$h_n,
                      Loom_FloatTensor:$c_n);
  let assemblyFormat = [{
    $input `,` $h0 `,` $c0 `,` $w_ih `,` $w_hh `,` $bias attr-dict `:`
    type($input) `,` type($h0) `,` type($c0) `,` type($w_ih) `,` type($w_hh)
    `,` type($bias)
  }];
}

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def Loom_ParameterOp : Loom_Op<"parameter", [
    Symbol, HasParent<"::mlir::ModuleOp">,
    DeclareOpInterfaceMethods<Loom_CostModelOpInterface>]> {
  let summary = "A trainable parameter of the module";
  let description = [{
    Declares a named parameter tensor at module level: its `type` (a
    statically shaped tensor of `f32`, `bf16`, `f16` or `f64`) and how to
    initialize it. `init` holds a string `kind` and `f64` fields:

    | kind | fields |
    |------|--------|
    | `zeros`, `ones` | none |
    | `constant` | `value` |
    | `normal` | `std` (>= 0), optional `mean` (default 0) |
    | `uniform` | `low`, `high` (`low <= high`) |
    | `xavier_uniform`, `xavier_normal` | optional `gain` (default 1) |
    | `kaiming_uniform`, `kaiming_normal` | optional `gain` (default sqrt(2)) |

    The xavier and kaiming kinds need rank >= 2 and read weights as
    `[fan_in..., fan_out]` (the layout `x @ w` uses): `fan_out` is the last dim,
    `fan_in` the product of the others. `xavier_normal` draws with
    `std = gain * sqrt(2 / (fan_in + fan_out))`, `xavier_uniform` from
    `[-a, a]` with `a = gain * sqrt(6 / (fan_in + fan_out))`; `kaiming_normal`
    with `std = gain / sqrt(fan_in)`, `kaiming_uniform` with
    `a = gain * sqrt(3 / fan_in)`. Functions read a parameter with
    `loom.get_parameter`. Counts no FLOPs.

    ```mlir
    loom.parameter @"blocks.0.attn.wq.weight" : tensor<64x64xf32>
        init = {kind = "normal", std = 2.000000e-02 : f64}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttr:$type,
                       DictionaryAttr:$init);
  let assemblyFormat = "$sym_name `:` $type `init` `=` $init attr-dict";
  let hasVerifier = 1;
}

def Loom_GetParameterOp : Loom_PureOp<"get_parameter", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Reads a module parameter";
  let description = [{
    The current value of the `loom.parameter` named `name`; the result type is
    the parameter's type. Counts no FLOPs.

    ```mlir
    %w = loom.get_parameter @"wte.weight" : tensor<256x64xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let builders = [
    // Reads `parameter`, with its type.
    OpBuilder<(ins "ParameterOp":$parameter)>,
  ];
}

include "ir/LoomGradOps.td"

#endif // LOOM_IR_LOOMOPS_TD
