//===- LoomOps.td - loom dialect operations ----------------*- tablegen -*-===//

#ifndef LOOM_IR_LOOMOPS_TD
#define LOOM_IR_LOOMOPS_TD

include "ir/LoomDialect.td"
include "ir/LoomInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
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
    : Loom_InferredOp<mnemonic, traits> {
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

/// `op(input)` elementwise on a floating-point tensor.
class Loom_UnaryFloatOp<string mnemonic, string what>
    : Loom_SameTypeOp<mnemonic> {
  let summary = "Elementwise " # what;
  let description = [{
    Computes }] # what # [{ of every element of a floating-point tensor.

    ```mlir
    %r = loom.}] # mnemonic # [{ %x : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Loom_NegOp : Loom_UnaryFloatOp<"neg", "negation">;
def Loom_ExpOp : Loom_UnaryFloatOp<"exp", "the natural exponential">;

//===----------------------------------------------------------------------===//
// matmul
//===----------------------------------------------------------------------===//

def Loom_MatmulOp : Loom_InferredOp<"matmul"> {
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

def Loom_TransposeOp : Loom_InferredOp<"transpose"> {
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

def Loom_SoftmaxOp : Loom_SameTypeOp<"softmax"> {
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

#endif // LOOM_IR_LOOMOPS_TD
