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

#endif // LOOM_IR_LOOMINTERFACES_TD
