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
    `matmul` broadcasts its batch dims. Every op infers its result type, so
    binding the dynamic dims of a function's arguments re-derives every shape
    in the function (see `loom-specialize`).
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
      BuildableType<"::mlir::RankedTensorType::get({}, $_builder.getI64Type())">;

#endif // LOOM_IR_LOOMDIALECT_TD
