//===- Specialize.cpp - Bind symbolic dims and re-infer shapes ------------===//
//
// Turns a function over symbolic shapes (`tensor<?x?xf32>` with
// `loom.dims = ["B", "T"]`) into one over static shapes, so later passes can
// tile, plan memory and count FLOPs.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/CheckedArithmetic.h"

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
      return emitArgError()
             << "argument #" << index << ": loom.dims entries must be strings";
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

/// Evaluates one `loom.dims` entry of an op result: an integer expression
/// over bound dim names with `+`, `-` (binary and unary), `*`, parentheses and
/// decimal literals, e.g. "B*T" or "T-1". Names it reads go into `used`.
class DimExprEvaluator {
public:
  DimExprEvaluator(StringRef text, const llvm::StringMap<int64_t> &bindings,
                   llvm::StringMap<int64_t> &used)
      : text(text), bindings(bindings), used(used) {}

  /// The value of the expression, or failure with `error` describing why.
  FailureOr<int64_t> evaluate() {
    FailureOr<int64_t> value = parseSum();
    if (failed(value))
      return failure();
    skipSpaces();
    if (pos != text.size())
      return fail("unexpected '" + text.substr(pos, 1).str() + "' at offset " +
                  std::to_string(pos));
    return value;
  }

  std::string error;

private:
  // sum := product (('+' | '-') product)*
  FailureOr<int64_t> parseSum() {
    FailureOr<int64_t> lhs = parseProduct();
    while (succeeded(lhs)) {
      skipSpaces();
      if (!consume('+') && !consume('-'))
        break;
      bool add = text[pos - 1] == '+';
      FailureOr<int64_t> rhs = parseProduct();
      if (failed(rhs))
        return failure();
      lhs = checked(add ? llvm::checkedAdd(*lhs, *rhs)
                        : llvm::checkedSub(*lhs, *rhs));
    }
    return lhs;
  }

  // product := atom ('*' atom)*
  FailureOr<int64_t> parseProduct() {
    FailureOr<int64_t> lhs = parseAtom();
    while (succeeded(lhs)) {
      skipSpaces();
      if (!consume('*'))
        break;
      FailureOr<int64_t> rhs = parseAtom();
      if (failed(rhs))
        return failure();
      lhs = checked(llvm::checkedMul(*lhs, *rhs));
    }
    return lhs;
  }

  // atom := integer | name | '(' sum ')' | '-' atom
  FailureOr<int64_t> parseAtom() {
    skipSpaces();
    if (pos == text.size())
      return fail("expected a number, a dim name or '(' at the end");
    if (consume('(')) {
      FailureOr<int64_t> value = parseSum();
      if (failed(value))
        return failure();
      skipSpaces();
      if (!consume(')'))
        return fail("expected ')' at offset " + std::to_string(pos));
      return value;
    }
    if (consume('-')) {
      FailureOr<int64_t> value = parseAtom();
      if (failed(value))
        return failure();
      return checked(llvm::checkedSub(int64_t(0), *value));
    }
    size_t start = pos;
    if (llvm::isDigit(text[pos])) {
      while (pos < text.size() && llvm::isDigit(text[pos]))
        ++pos;
      int64_t value;
      if (text.slice(start, pos).getAsInteger(10, value))
        return fail("number '" + text.slice(start, pos).str() +
                    "' is too large");
      return value;
    }
    if (llvm::isAlpha(text[pos]) || text[pos] == '_') {
      while (pos < text.size() &&
             (llvm::isAlnum(text[pos]) || text[pos] == '_'))
        ++pos;
      StringRef name = text.slice(start, pos);
      auto it = bindings.find(name);
      if (it == bindings.end())
        return fail("dim '" + name.str() +
                    "' is not bound; pass bind=" + name.str() + "=N");
      used[name] = it->second;
      return it->second;
    }
    return fail("expected a number, a dim name or '(' at offset " +
                std::to_string(pos) + ", got '" + text.substr(pos, 1).str() +
                "'");
  }

  void skipSpaces() {
    while (pos < text.size() && llvm::isSpace(text[pos]))
      ++pos;
  }
  bool consume(char c) {
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  FailureOr<int64_t> checked(std::optional<int64_t> value) {
    if (!value)
      return fail("the value overflows 64 bits");
    return *value;
  }
  FailureOr<int64_t> fail(const std::string &message) {
    if (error.empty())
      error = message;
    return failure();
  }

  StringRef text;
  size_t pos = 0;
  const llvm::StringMap<int64_t> &bindings;
  llvm::StringMap<int64_t> &used;
};

/// `type` with the dims that `names` (the `loom.dims` attribute of `op`, one
/// entry per dim: "" or an expression) sizes replaced by their values.
static FailureOr<RankedTensorType>
bindResultDims(Operation *op, RankedTensorType type, ArrayAttr names,
               const llvm::StringMap<int64_t> &bindings,
               llvm::StringMap<int64_t> &used) {
  if (static_cast<int64_t>(names.size()) != type.getRank())
    return op->emitError() << "loom.dims has " << names.size()
                           << " entries for a result of rank "
                           << type.getRank();
  SmallVector<int64_t> shape(type.getShape());
  for (auto [dim, entry] : llvm::enumerate(names)) {
    auto text = llvm::dyn_cast<StringAttr>(entry);
    if (!text)
      return op->emitError() << "loom.dims entries must be strings";
    if (text.getValue().empty())
      continue;
    DimExprEvaluator evaluator(text.getValue(), bindings, used);
    FailureOr<int64_t> value = evaluator.evaluate();
    if (failed(value))
      return op->emitError() << "loom.dims entry '" << text.getValue()
                             << "': " << evaluator.error;
    if (*value < 0)
      return op->emitError()
             << "loom.dims entry '" << text.getValue() << "' of result dim "
             << dim << " evaluates to " << *value << ", a negative size";
    if (!ShapedType::isDynamic(shape[dim]) && shape[dim] != *value)
      return op->emitError() << "result dim " << dim << " is static "
                             << shape[dim] << " but loom.dims entry '"
                             << text.getValue() << "' evaluates to " << *value;
    shape[dim] = *value;
  }
  return type.clone(shape);
}

/// Sizes an `arange` from its `loom.dims` (rewriting `size` and the result
/// type) and a `reshape` from its `loom.dims` (rewriting `shape` and
/// re-inferring, which checks the element count), then drops the attribute.
/// Other ops may not carry `loom.dims`.
static LogicalResult applyResultDims(Operation *op,
                                     const llvm::StringMap<int64_t> &bindings,
                                     llvm::StringMap<int64_t> &used) {
  Attribute attr = op->getAttr("loom.dims");
  if (!attr)
    return success();
  auto names = llvm::dyn_cast<ArrayAttr>(attr);
  if (!names)
    return op->emitError() << "loom.dims must be an array of strings";
  if (!llvm::isa<loom::ArangeOp, loom::FillOp, loom::ReshapeOp>(op))
    return op->emitError() << "loom.dims is only supported on loom.arange, "
                              "loom.fill and loom.reshape";
  auto type = llvm::cast<RankedTensorType>(op->getResult(0).getType());
  FailureOr<RankedTensorType> bound =
      bindResultDims(op, type, names, bindings, used);
  if (failed(bound))
    return failure();
  Builder b(op->getContext());
  SmallVector<int64_t> sizes;
  for (int64_t d : bound->getShape())
    sizes.push_back(ShapedType::isDynamic(d) ? -1 : d);
  if (auto arange = llvm::dyn_cast<loom::ArangeOp>(op)) {
    arange.setSizeAttr(b.getI64IntegerAttr(sizes.front()));
    arange.getResult().setType(*bound);
  } else if (auto fill = llvm::dyn_cast<loom::FillOp>(op)) {
    fill.getResult().setType(*bound);
  } else {
    auto reshape = llvm::cast<loom::ReshapeOp>(op);
    reshape.setShape(sizes);
    SmallVector<Type> types;
    if (failed(reshape.inferReturnTypes(
            op->getContext(), op->getLoc(), op->getOperands(),
            op->getRawDictionaryAttrs(), op->getPropertiesStorage(),
            op->getRegions(), types)))
      return failure();
    op->getResult(0).setType(types.front());
  }
  op->removeAttr("loom.dims");
  return success();
}

/// Re-derives the result types of every op in `func`, in order, and sizes the
/// results of ops that carry `loom.dims`.
static LogicalResult reinferBody(func::FuncOp func,
                                 const llvm::StringMap<int64_t> &bindings,
                                 llvm::StringMap<int64_t> &used) {
  WalkResult result = func.walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (op == func.getOperation())
      return WalkResult::advance();
    if (llvm::isa<InferTypeOpInterface>(op)) {
      if (failed(loom::reinferResultTypes(op)))
        return WalkResult::interrupt();
    } else if (!llvm::isa<loom::ArangeOp, loom::FillOp>(op)) {
      for (Type type : op->getResultTypes()) {
        auto shaped = llvm::dyn_cast<ShapedType>(type);
        if (shaped && !shaped.hasStaticShape()) {
          op->emitError() << "cannot re-infer result type " << type
                          << " of an op without InferTypeOpInterface";
          return WalkResult::interrupt();
        }
      }
    }
    if (failed(applyResultDims(op, bindings, used)))
      return WalkResult::interrupt();
    // Ops that create shapes from nothing must end up static.
    if (llvm::isa<loom::ArangeOp, loom::FillOp, loom::ReshapeOp>(op)) {
      auto type = llvm::cast<ShapedType>(op->getResult(0).getType());
      if (!type.hasStaticShape()) {
        op->emitError() << "result type " << type
                        << " is still dynamic after binding; size its "
                           "dynamic dims with a loom.dims attribute";
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

struct LoomSpecialize : public loom::impl::LoomSpecializeBase<LoomSpecialize> {
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
    if (failed(reinferBody(func, bindings, used)))
      return failure();

    auto ret = llvm::cast<func::ReturnOp>(func.getBody().back().back());
    func.setFunctionType(
        FunctionType::get(func.getContext(), inputs, ret.getOperandTypes()));
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
