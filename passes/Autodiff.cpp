//===- Autodiff.cpp - Reverse-mode differentiation of loom functions ------===//
//
// Builds `<fn>_grad` from a scalar loss function: the forward ops once, then
// a backward sweep in reverse op order that asks every op for its
// vector-Jacobian product through VjpOpInterface. Activity analysis limits
// the sweep to values that depend on a trainable parameter and that the loss
// depends on.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringSet.h"

#define DEBUG_TYPE "loom-autodiff"

namespace loom {
#define GEN_PASS_DEF_LOOMAUTODIFF
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

bool isFloatTensor(Type type) {
  auto tensor = llvm::dyn_cast<RankedTensorType>(type);
  return tensor && llvm::isa<FloatType>(tensor.getElementType());
}

/// Whether parameter `name` is selected by `patterns` (exact names or
/// prefixes ending at a `.` boundary); an empty list selects all.
bool selected(StringRef name, ArrayRef<std::string> patterns) {
  if (patterns.empty())
    return true;
  for (StringRef pattern : patterns) {
    if (name == pattern)
      return true;
    if (name.starts_with(pattern) && name.size() > pattern.size() &&
        (name[pattern.size()] == '.' || pattern.ends_with(".")))
      return true;
  }
  return false;
}

struct LoomAutodiff : public loom::impl::LoomAutodiffBase<LoomAutodiff> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>(function);
    if (!forward || forward.isExternal()) {
      module.emitError() << "loom-autodiff: no function '" << function
                         << "' to differentiate";
      return signalPassFailure();
    }
    if (failed(checkDifferentiable(forward)))
      return signalPassFailure();

    // Trainable parameters, in declaration order.
    SmallVector<loom::ParameterOp> trainables;
    llvm::StringSet<> matched;
    for (auto param : module.getOps<loom::ParameterOp>()) {
      param->removeAttr("loom.trainable");
      if (!selected(param.getSymName(), trainable))
        continue;
      trainables.push_back(param);
      param->setAttr("loom.trainable", UnitAttr::get(&getContext()));
    }
    for (const std::string &pattern : trainable) {
      bool any = llvm::any_of(trainables, [&](loom::ParameterOp p) {
        return selected(p.getSymName(), {pattern});
      });
      if (!any) {
        module.emitError() << "loom-autodiff: trainable '" << pattern
                           << "' names no parameter";
        return signalPassFailure();
      }
    }

    func::FuncOp grad = forward.clone();
    grad.setSymName(function + "_grad");
    OpBuilder(forward).insert(grad);
    if (failed(differentiate(grad, trainables)))
      return signalPassFailure();
    if (!keepForward)
      forward.erase();
  }

  LogicalResult checkDifferentiable(func::FuncOp func) {
    FunctionType type = func.getFunctionType();
    if (type.getNumResults() != 1 || !isFloatTensor(type.getResult(0)) ||
        llvm::cast<RankedTensorType>(type.getResult(0)).getRank() != 0)
      return func.emitError()
             << "loom-autodiff: '" << func.getSymName()
             << "' must return one rank-0 float tensor (a loss), got "
             << type.getResults();
    if (!func.getBody().hasOneBlock())
      return func.emitError() << "loom-autodiff: expected a single block";
    for (Operation &op : func.getBody().front()) {
      if (op.getNumRegions() != 0)
        return op.emitOpError("has regions; loom-autodiff differentiates "
                              "straight-line loom code only");
      if (llvm::isa<func::CallOp>(op))
        return op.emitOpError("is a call; inline it before loom-autodiff");
    }
    return success();
  }

  /// Rewrites `func` (a copy of the forward function) into the gradient
  /// function.
  LogicalResult differentiate(func::FuncOp func,
                              ArrayRef<loom::ParameterOp> trainables) {
    Block &body = func.getBody().front();
    auto ret = llvm::cast<func::ReturnOp>(body.getTerminator());
    Value loss = ret.getOperand(0);

    llvm::StringSet<> trainableNames;
    for (loom::ParameterOp p : trainables)
      trainableNames.insert(p.getSymName());

    // Forward activity: depends on a trainable parameter.
    llvm::DenseSet<Value> active;
    for (Operation &op : body.without_terminator()) {
      bool isActive = false;
      if (auto load = llvm::dyn_cast<loom::GetParameterOp>(op))
        isActive = trainableNames.contains(load.getName());
      else
        isActive = llvm::any_of(op.getOperands(),
                                [&](Value v) { return active.contains(v); });
      if (!isActive)
        continue;
      for (Value result : op.getResults())
        if (isFloatTensor(result.getType()))
          active.insert(result);
    }

    // Backward sweep.
    OpBuilder b(ret);
    DenseMap<Value, Value> grads;
    auto lossType = llvm::cast<RankedTensorType>(loss.getType());
    if (active.contains(loss))
      grads[loss] = loom::FillOp::create(b, ret.getLoc(), lossType,
                                         b.getF64FloatAttr(1.0));
    SmallVector<Operation *> ops;
    for (Operation &op : body.without_terminator())
      ops.push_back(&op);
    for (Operation *op : llvm::reverse(ops)) {
      SmallVector<Value> resultGrads;
      bool anyGrad = false;
      for (Value result : op->getResults()) {
        resultGrads.push_back(grads.lookup(result));
        anyGrad |= bool(resultGrads.back());
      }
      if (!anyGrad || llvm::isa<loom::GetParameterOp>(op))
        continue;
      SmallVector<bool> wanted;
      bool anyWanted = false;
      for (Value operand : op->getOperands()) {
        wanted.push_back(active.contains(operand));
        anyWanted |= wanted.back();
      }
      if (!anyWanted)
        continue;
      auto vjp = llvm::dyn_cast<loom::VjpOpInterface>(op);
      if (!vjp)
        return op->emitOpError("has no vector-Jacobian product "
                               "(VjpOpInterface); cannot differentiate "
                               "through it");
      SmallVector<Value> operandGrads;
      b.setInsertionPoint(ret);
      if (failed(vjp.buildVjp(b, resultGrads, wanted, operandGrads)))
        return failure();
      if (operandGrads.size() != op->getNumOperands())
        return op->emitOpError("VJP returned ")
               << operandGrads.size() << " gradients for "
               << op->getNumOperands() << " operands";
      for (auto [operand, g, want] :
           llvm::zip_equal(op->getOperands(), operandGrads, wanted)) {
        if (!want || !g)
          continue;
        if (g.getType() != operand.getType())
          return op->emitOpError("VJP gradient type ")
                 << g.getType() << " differs from operand type "
                 << operand.getType();
        Value &sum = grads[operand];
        sum = sum ? Value(loom::AddOp::create(b, op->getLoc(), sum, g)) : g;
      }
    }

    // Gradients of each trainable parameter: the sum over its loads.
    SmallVector<Value> results = {loss};
    SmallVector<Type> resultTypes = {loss.getType()};
    for (loom::ParameterOp param : trainables) {
      Value sum;
      for (Operation &op : body.without_terminator()) {
        auto load = llvm::dyn_cast<loom::GetParameterOp>(op);
        if (!load || load.getName() != param.getSymName())
          continue;
        if (Value g = grads.lookup(load.getResult()))
          sum = sum ? Value(loom::AddOp::create(b, load.getLoc(), sum, g)) : g;
      }
      auto type = llvm::cast<RankedTensorType>(param.getType());
      if (!sum) {
        param.emitWarning()
            << "loom-autodiff: the loss does not depend differentiably on "
               "parameter '"
            << param.getSymName() << "' (unused, or only through integer or "
            << "boolean values such as a compare); its gradient is zero";
        sum = loom::FillOp::create(b, param.getLoc(), type,
                                   b.getF64FloatAttr(0.0));
      }
      results.push_back(sum);
      resultTypes.push_back(type);
    }
    func::ReturnOp::create(b, ret.getLoc(), results);
    ret.erase();
    func.setFunctionType(
        FunctionType::get(&getContext(), func.getArgumentTypes(), resultTypes));
    Builder attrs(&getContext());
    SmallVector<DictionaryAttr> resultAttrs = {attrs.getDictionaryAttr({})};
    for (loom::ParameterOp param : trainables)
      resultAttrs.push_back(attrs.getDictionaryAttr(attrs.getNamedAttr(
          "loom.grad_of", attrs.getStringAttr(param.getSymName()))));
    func.setAllResultAttrs(resultAttrs);
    return success();
  }
};

} // namespace
