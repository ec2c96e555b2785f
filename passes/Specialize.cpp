//===- Specialize.cpp - Bind symbolic dims and re-infer shapes ------------===//
//
// Turns a function over symbolic shapes (`tensor<?x?xf32>` with
// `loom.dims = ["B", "T"]`) into one over static shapes, so later passes can
// tile, plan memory and count FLOPs.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"

#include "llvm/ADT/StringMap.h"

#define DEBUG_TYPE "loom-specialize"

namespace loom {
#define GEN_PASS_DEF_LOOMSPECIALIZE
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

/// Parses `NAME=VALUE` entries into a map; reports malformed entries.
static FailureOr<llvm::StringMap<int64_t>>
parseBindings(ArrayRef<std::string> entries, Location loc) {
  llvm::StringMap<int64_t> bindings;
  for (StringRef entry : entries) {
    auto [name, value] = entry.split('=');
    name = name.trim();
    int64_t size = 0;
    if (name.empty() || value.trim().getAsInteger(10, size) || size <= 0)
      return emitError(loc) << "malformed binding '" << entry
                            << "': expected NAME=VALUE with VALUE > 0";
    if (!bindings.try_emplace(name, size).second)
      return emitError(loc) << "dim '" << name << "' is bound twice";
  }
  return bindings;
}

/// The type of argument `index` of `func` with its named dims bound.
static FailureOr<Type> bindArgument(func::FuncOp func, unsigned index,
                                    const llvm::StringMap<int64_t> &bindings,
                                    llvm::StringMap<int64_t> &used) {
  BlockArgument arg = func.getArgument(index);
  Type type = arg.getType();
  auto emitArgError = [&] { return emitError(arg.getLoc()); };
  auto tensor = llvm::dyn_cast<RankedTensorType>(type);
  auto names = func.getArgAttrOfType<ArrayAttr>(index, "loom.dims");
  if (!tensor) {
    if (names)
      return emitArgError() << "argument #" << index
                              << " has loom.dims but is not a ranked tensor";
    return type;
  }
  if (!names) {
    if (!tensor.hasStaticShape())
      return emitArgError()
             << "argument #" << index << " of type " << tensor
             << " has dynamic dims but no loom.dims to name them";
    return type;
  }
  if (static_cast<int64_t>(names.size()) != tensor.getRank())
    return emitArgError() << "argument #" << index << ": loom.dims has "
                            << names.size() << " entries for rank "
                            << tensor.getRank();
  SmallVector<int64_t> shape(tensor.getShape());
  for (auto [dim, nameAttr] : llvm::enumerate(names)) {
    auto name = llvm::dyn_cast<StringAttr>(nameAttr);
    if (!name)
      return emitArgError() << "argument #" << index
                              << ": loom.dims entries must be strings";
    if (name.getValue().empty()) {
      if (ShapedType::isDynamic(shape[dim]))
        return emitArgError() << "argument #" << index << " dim " << dim
                                << " is dynamic but has no name";
      continue;
    }
    auto it = bindings.find(name.getValue());
    if (it == bindings.end())
      return emitArgError()
             << "dim '" << name.getValue() << "' of argument #" << index
             << " is not bound; pass bind=" << name.getValue() << "=N";
    if (!ShapedType::isDynamic(shape[dim]) && shape[dim] != it->second)
      return emitArgError()
             << "argument #" << index << " dim " << dim << " is static "
             << shape[dim] << " but '" << name.getValue() << "' is bound to "
             << it->second;
    shape[dim] = it->second;
    used[name.getValue()] = it->second;
  }
  return Type(RankedTensorType::get(shape, tensor.getElementType(),
                                    tensor.getEncoding()));
}

/// Re-derives the result types of every op in `func`, in order.
static LogicalResult reinferBody(func::FuncOp func) {
  WalkResult result = func.walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (op == func.getOperation())
      return WalkResult::advance();
    auto infer = llvm::dyn_cast<InferTypeOpInterface>(op);
    if (!infer) {
      for (Type type : op->getResultTypes()) {
        auto shaped = llvm::dyn_cast<ShapedType>(type);
        if (shaped && !shaped.hasStaticShape()) {
          op->emitError() << "cannot re-infer result type " << type
                          << " of an op without InferTypeOpInterface";
          return WalkResult::interrupt();
        }
      }
      return WalkResult::advance();
    }
    SmallVector<Type> types;
    if (failed(infer.inferReturnTypes(
            op->getContext(), op->getLoc(), op->getOperands(),
            op->getRawDictionaryAttrs(), op->getPropertiesStorage(),
            op->getRegions(), types)))
      return WalkResult::interrupt();
    for (auto [value, type] : llvm::zip_equal(op->getResults(), types))
      value.setType(type);
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

struct LoomSpecialize
    : public loom::impl::LoomSpecializeBase<LoomSpecialize> {
  using LoomSpecializeBase::LoomSpecializeBase;

  /// 1. Parse the bindings.
  /// 2. For each function with a body: bind its argument types, re-infer the
  ///    result type of every op in order, and rewrite the function type from
  ///    the returned values.
  /// 3. Record the bindings a function used in `loom.bound`.
  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<llvm::StringMap<int64_t>> bindings =
        parseBindings(bind, module.getLoc());
    if (failed(bindings))
      return signalPassFailure();

    for (auto func : module.getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      if (failed(specialize(func, *bindings)))
        return signalPassFailure();
    }
  }

  LogicalResult specialize(func::FuncOp func,
                           const llvm::StringMap<int64_t> &bindings) {
    llvm::StringMap<int64_t> used;
    SmallVector<Type> inputs;
    for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i) {
      FailureOr<Type> type = bindArgument(func, i, bindings, used);
      if (failed(type))
        return failure();
      inputs.push_back(*type);
    }
    for (auto [arg, type] : llvm::zip_equal(func.getArguments(), inputs))
      arg.setType(type);
    if (failed(reinferBody(func)))
      return failure();

    auto ret = llvm::cast<func::ReturnOp>(func.getBody().back().back());
    func.setFunctionType(FunctionType::get(func.getContext(), inputs,
                                           ret.getOperandTypes()));
    for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
      func.removeArgAttr(i, "loom.dims");
    if (!used.empty()) {
      Builder b(func.getContext());
      SmallVector<NamedAttribute> entries;
      for (auto &entry : used)
        entries.push_back(
            b.getNamedAttr(entry.getKey(), b.getI64IntegerAttr(entry.second)));
      func->setAttr("loom.bound", b.getDictionaryAttr(entries));
    }
    return success();
  }
};

} // namespace
