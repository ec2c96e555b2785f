//===- LoomDialect.td - The loom dialect -------------------*- tablegen -*-===//
//
// The `loom` dialect holds high-level tensor operations on transformer-family
// models: matmul, attention, layer_norm, softmax, embedding, cross_entropy,
// lstm, ... Shapes may carry dynamic dims (`?`) that stand for the symbolic
// dims of the source language (`B`, `T`); `loom-specialize` binds them.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_IR_LOOMDIALECT_TD
#define LOOM_IR_LOOMDIALECT_TD

include "mlir/IR/OpBase.td"

def Loom_Dialect : Dialect {
  let name = "loom";
  let cppNamespace = "::loom";
  let summary = "High-level tensor operations of transformer-family models";
  let description = [{
    Ops of the `loom` dialect work on ranked tensors (`f32`, `bf16`, `f16`,
    `f64`, `i32`, `i1`). Elementwise binary ops broadcast NumPy-style;
    `matmul` broadcasts its batch dims. Every op but `arange` and
    `get_parameter` infers its result type, so binding the dynamic dims of a
    function's arguments re-derives every shape in the function (see
    `loom-specialize`, which also sizes `arange` and `reshape` results from
    their `loom.dims` expressions). Trainable parameters are module-level
    `loom.parameter` symbols read with `loom.get_parameter`.
  }];
  let useDefaultAttributePrinterParser = 0;
  let useDefaultTypePrinterParser = 0;
  let hasConstantMaterializer = 1;
}

//===----------------------------------------------------------------------===//
// Base classes
//===----------------------------------------------------------------------===//

/// Every loom op derives from this class. Ops have no side effects unless they
/// say otherwise.
class Loom_Op<string mnemonic, list<Trait> traits = []>
    : Op<Loom_Dialect, mnemonic, !listconcat(traits, [])>;

/// A 64-bit signless integer attribute, stored and printed as `I64Attr`, whose
/// C++ getters and builders use `int64_t` rather than `uint64_t`: axes,
/// indices and sizes may be negative (-1: dynamic, Python-style slicing).
def Loom_I64Attr
    : TypedSignlessIntegerAttrBase<I64, "int64_t",
                                   "64-bit signless integer attribute"> {
  let convertFromStorage = "$_self.getValue().getSExtValue()";
}

/// A 64-bit float attribute, stored and printed as `F64Attr`, whose C++
/// getters and builders use `double` rather than `APFloat`.
def Loom_F64Attr : FloatAttrBase<F64, "64-bit float attribute"> {
  let returnType = "double";
  let convertFromStorage = "$_self.getValueAsDouble()";
}

/// Element types a loom tensor may hold.
def Loom_Float : AnyTypeOf<[F32, BF16, F16, F64]>;
def Loom_Element : AnyTypeOf<[F32, BF16, F16, F64, I32, I1]>;

def Loom_Tensor : RankedTensorOf<[F32, BF16, F16, F64, I32, I1]>;
def Loom_FloatTensor : RankedTensorOf<[F32, BF16, F16, F64]>;
def Loom_BoolTensor : RankedTensorOf<[I1]>;
def Loom_IndexTensor : RankedTensorOf<[I32]>;
/// The seed of `dropout`: a rank-0 `i64` tensor. Buildable, so formats may omit
/// its type.
def Loom_SeedTensor
    : 0DTensorOf<[I64]>,
      BuildableType<
          "::mlir::RankedTensorType::get({}, $_builder.getI64Type())">;

#endif // LOOM_IR_LOOMDIALECT_TD
