//===- LoomInterfaces.td - loom op interfaces --------------*- tablegen -*-===//
//
// Interfaces that passes query instead of switching over op kinds.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_IR_LOOMINTERFACES_TD
#define LOOM_IR_LOOMINTERFACES_TD

include "mlir/IR/OpBase.td"

def Loom_CostModelOpInterface : OpInterface<"CostModelOpInterface"> {
  let cppNamespace = "::loom";
  let description = [{
    An op that can state how many floating-point operations it performs once
    its shapes are static. Used by `loom-count-flops` and by benchmarks to turn
    times into FLOP/s.
  }];
  let methods = [
    InterfaceMethod<
      /*desc=*/[{Returns the number of floating-point operations the op
                 performs, or std::nullopt when a shape is not static.}],
      /*retTy=*/"std::optional<int64_t>",
      /*methodName=*/"getFlopCount",
      /*args=*/(ins)>,
  ];
}

def Loom_VjpOpInterface : OpInterface<"VjpOpInterface"> {
  let cppNamespace = "::loom";
  let description = [{
    A differentiable op states its vector-Jacobian product: given the
    gradients of the loss with respect to its results, it builds (with loom
    ops, at the builder's insertion point) the gradients with respect to its
    operands. `loom-autodiff` walks a function backwards and asks each op
    through this interface; it never switches over op kinds.
  }];
  let methods = [
    InterfaceMethod<
      /*desc=*/[{Builds the operand gradients. `resultGrads` has one entry
                 per result, null where the result does not reach the loss
                 (a zero gradient). `wanted` has one entry per operand: only
                 operands marked true need a gradient, so work for frozen
                 parameters and integer inputs is never emitted.
                 `operandGrads` receives one entry per operand, each null or a
                 value of exactly that operand's type. Fails (after emitting
                 an error at the op) when the product cannot be built, e.g.
                 for a dynamic shape.}],
      /*retTy=*/"::mlir::LogicalResult",
      /*methodName=*/"buildVjp",
      /*args=*/(ins "::mlir::OpBuilder &":$builder,
                    "::mlir::ArrayRef<::mlir::Value>":$resultGrads,
                    "::mlir::ArrayRef<bool>":$wanted,
                    "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>,
  ];
}

#endif // LOOM_IR_LOOMINTERFACES_TD
