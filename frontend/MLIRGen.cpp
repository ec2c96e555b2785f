//===- MLIRGen.cpp - Emission of loom IR from Sema ------------------------===//

#include "frontend/MLIRGen.h"
#include "frontend/Sema.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"

#include "llvm/Support/SourceMgr.h"

using namespace loom::frontend;

MLIRGen::MLIRGen(mlir::MLIRContext &context, const llvm::SourceMgr &sourceMgr)
    : sourceMgr(sourceMgr), b(&context) {
  module = mlir::ModuleOp::create(b.getUnknownLoc());
  b.setInsertionPointToEnd(module->getBody());
}

mlir::Location MLIRGen::loc(llvm::SMLoc loc, llvm::StringRef display) {
  mlir::Location result = b.getUnknownLoc();
  if (unsigned buffer = sourceMgr.FindBufferContainingLoc(loc)) {
    auto [line, col] = sourceMgr.getLineAndColumn(loc, buffer);
    result = mlir::FileLineColLoc::get(
        b.getStringAttr(
            sourceMgr.getMemoryBuffer(buffer)->getBufferIdentifier()),
        line, col);
  }
  if (display.empty())
    return result;
  return mlir::NameLoc::get(b.getStringAttr(display), result);
}

mlir::Type MLIRGen::elementType(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return b.getF32Type();
  case DType::BF16:
    return b.getBF16Type();
  case DType::F16:
    return b.getF16Type();
  case DType::F64:
    return b.getF64Type();
  case DType::I32:
    return b.getI32Type();
  case DType::Bool:
    return b.getI1Type();
  }
  return b.getF32Type();
}

llvm::SmallVector<int64_t> MLIRGen::staticSizes(llvm::ArrayRef<Dim> dims) {
  llvm::SmallVector<int64_t> sizes;
  for (const Dim &d : dims)
    sizes.push_back(d.getConstant().value_or(-1));
  return sizes;
}

mlir::RankedTensorType MLIRGen::tensorType(const TensorType &type) {
  llvm::SmallVector<int64_t> sizes;
  for (const Dim &d : type.dims)
    sizes.push_back(d.getConstant().value_or(mlir::ShapedType::kDynamic));
  return mlir::RankedTensorType::get(sizes, elementType(type.dtype));
}

/// ["B", "", "T"]: one entry per dim, the symbolic expression or "".
static mlir::ArrayAttr dimNames(mlir::Builder &b, llvm::ArrayRef<Dim> dims,
                                bool &anySymbolic) {
  llvm::SmallVector<mlir::Attribute> names;
  anySymbolic = false;
  for (const Dim &d : dims) {
    if (d.getConstant()) {
      names.push_back(b.getStringAttr(""));
      continue;
    }
    anySymbolic = true;
    std::string text = d.str();
    llvm::erase_if(text, [](char c) { return c == ' '; });
    names.push_back(b.getStringAttr(text));
  }
  return b.getArrayAttr(names);
}

void MLIRGen::nameDims(mlir::Operation *op, llvm::ArrayRef<Dim> dims) {
  bool anySymbolic;
  mlir::ArrayAttr names = dimNames(b, dims, anySymbolic);
  if (anySymbolic)
    op->setAttr("loom.dims", names);
}

void MLIRGen::emitParameter(const ParamEntry &param) {
  mlir::OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(module->getBody());
  llvm::SmallVector<mlir::NamedAttribute> fields;
  fields.push_back(b.getNamedAttr("kind", b.getStringAttr(param.init.kind)));
  for (const auto &[name, value] : param.init.fields)
    fields.push_back(b.getNamedAttr(name, b.getF64FloatAttr(value)));
  loom::ParameterOp::create(
      b, loc(param.loc, param.display), b.getStringAttr(param.name),
      mlir::TypeAttr::get(tensorType(param.type)), b.getDictionaryAttr(fields));
}

llvm::SmallVector<mlir::Value>
MLIRGen::beginFunction(llvm::StringRef name, llvm::ArrayRef<TensorType> args,
                       llvm::ArrayRef<std::string> argNames,
                       mlir::Location loc) {
  b.setInsertionPointToEnd(module->getBody());
  llvm::SmallVector<mlir::Type> types;
  for (const TensorType &t : args)
    types.push_back(tensorType(t));
  auto fn =
      mlir::func::FuncOp::create(b, loc, name, b.getFunctionType(types, {}));
  for (size_t i = 0; i < args.size(); ++i) {
    bool anySymbolic;
    mlir::ArrayAttr names = dimNames(b, args[i].dims, anySymbolic);
    if (anySymbolic)
      fn.setArgAttr(i, "loom.dims", names);
    fn.setArgAttr(i, "loom.name", b.getStringAttr(argNames[i]));
  }
  mlir::Block *entry = fn.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  func = fn;
  loadedParams.clear();
  lastParamLoad = nullptr;
  seed = nullptr;
  return llvm::SmallVector<mlir::Value>(entry->getArguments());
}

void MLIRGen::finishFunction(llvm::ArrayRef<mlir::Value> results,
                             mlir::Location loc) {
  auto fn = llvm::cast<mlir::func::FuncOp>(func);
  mlir::func::ReturnOp::create(b, loc, results);
  llvm::SmallVector<mlir::Type> resultTypes;
  for (mlir::Value v : results)
    resultTypes.push_back(v.getType());
  fn.setFunctionType(
      b.getFunctionType(fn.getBody().front().getArgumentTypes(), resultTypes));
  func = nullptr;
  b.setInsertionPointToEnd(module->getBody());
}

void MLIRGen::abandonFunction() {
  if (func)
    func->erase();
  func = nullptr;
  b.setInsertionPointToEnd(module->getBody());
}

mlir::Value MLIRGen::getParameter(const ParamEntry &param, unsigned index,
                                  mlir::Location loc) {
  auto it = loadedParams.find(index);
  if (it != loadedParams.end())
    return it->second;
  // Loads go at the top of the function so every later use sees them, after
  // the earlier loads (found in O(1): a model may have 10^5 parameters).
  mlir::OpBuilder::InsertionGuard guard(b);
  if (lastParamLoad)
    b.setInsertionPointAfter(lastParamLoad);
  else
    b.setInsertionPointToStart(
        &llvm::cast<mlir::func::FuncOp>(func).getBody().front());
  auto load = loom::GetParameterOp::create(
      b, loc, tensorType(param.type),
      mlir::FlatSymbolRefAttr::get(b.getStringAttr(param.name)));
  lastParamLoad = load;
  loadedParams[index] = load;
  return load;
}

mlir::Value MLIRGen::dropoutSeed() {
  if (seed)
    return seed;
  auto fn = llvm::cast<mlir::func::FuncOp>(func);
  auto type = mlir::RankedTensorType::get({}, b.getI64Type());
  unsigned index = fn.getNumArguments();
  if (failed(fn.insertArgument(index, type, {}, fn.getLoc())))
    return nullptr;
  fn.setArgAttr(index, "loom.name", b.getStringAttr("dropout_seed"));
  seed = fn.getArgument(index);
  return seed;
}

mlir::Value MLIRGen::scalar(double value, DType dtype, mlir::Location loc) {
  auto type = mlir::RankedTensorType::get({}, elementType(dtype));
  mlir::Attribute element =
      isFloat(dtype)
          ? mlir::Attribute(b.getFloatAttr(type.getElementType(), value))
          : mlir::Attribute(
                b.getIntegerAttr(type.getElementType(), int64_t(value)));
  return loom::ConstantOp::create(b, loc, type,
                                  mlir::DenseElementsAttr::get(type, element));
}
