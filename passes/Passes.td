//===- Passes.td - loom passes -----------------------------*- tablegen -*-===//
//
// Every loom pass, alphabetical. Each has its own file named after it.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_PASSES_PASSES_TD
#define LOOM_PASSES_PASSES_TD

include "mlir/Pass/PassBase.td"

def LoomCountFlops : Pass<"loom-count-flops", "mlir::func::FuncOp"> {
  let summary = "Annotates each function with the floating-point operations "
                "one call performs";
  let description = [{
    Sums `CostModelOpInterface::getFlopCount` over the ops of a function and
    stores the total as `loom.flops` (an `i64` attribute) on the function.
    Benchmarks divide it by the measured time to report FLOP/s. A function
    with a dynamic shape gets no attribute and a warning names the op.

    Before:
    ```mlir
    func.func @f(%a: tensor<4x8xf32>, %b: tensor<8x2xf32>) -> tensor<4x2xf32> {
      %0 = loom.matmul %a, %b : tensor<4x8xf32>, tensor<8x2xf32>
      return %0 : tensor<4x2xf32>
    }
    ```
    After: `func.func @f(...) attributes {loom.flops = 128 : i64}`.
  }];
}

def LoomSpecialize : Pass<"loom-specialize", "mlir::ModuleOp"> {
  let summary = "Binds the symbolic dims of function signatures and "
                "re-infers every shape";
  let description = [{
    Function arguments name their dynamic dims in a `loom.dims` attribute (an
    array with one string per dim: the symbolic name, or "" for a static dim).
    Given bindings such as `bind=B=2,T=16`, the pass replaces every named dim
    with its value, re-infers the result type of every op in order through
    `InferTypeOpInterface`, and rewrites the function type. A dim that is not
    bound, a binding that contradicts a static dim, or a shape error exposed
    by the new sizes is reported at its location.

    Before (with `bind=T=4`):
    ```mlir
    func.func @f(%x: tensor<?x8xf32> {loom.dims = ["T", ""]}) -> tensor<?x8xf32>
    ```
    After:
    ```mlir
    func.func @f(%x: tensor<4x8xf32>) -> tensor<4x8xf32>
        attributes {loom.bound = {T = 4 : i64}}
    ```
  }];
  let options = [
    ListOption<"bind", "bind", "std::string",
               "Dim bindings NAME=VALUE, e.g. B=2,T=16">,
  ];
}

#endif // LOOM_PASSES_PASSES_TD
