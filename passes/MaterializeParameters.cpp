//===- MaterializeParameters.cpp - Parameters as one flat buffer ----------===//
//
// Lays the module's `loom.parameter`s out in one flat f32 buffer (each at a
// 64-byte-aligned offset, recorded as `loom.offset` in bytes), gives every
// function a leading `params` argument holding that buffer, and turns each
// `loom.get_parameter` into a slice of it at a static offset. A gradient
// function's per-parameter results (marked `loom.grad_of`, see loom-autodiff)
// are packed into one buffer of the same layout.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

#include "llvm/ADT/DenseSet.h"

#define DEBUG_TYPE "loom-materialize-parameters"

namespace loom {
#define GEN_PASS_DEF_LOOMMATERIALIZEPARAMETERS
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

constexpr int64_t kAlignBytes = 64;

/// `value` flattened to rank 1.
Value flatten(OpBuilder &b, Location loc, Value value) {
  auto type = llvm::cast<RankedTensorType>(value.getType());
  if (type.getRank() == 1)
    return value;
  if (type.getRank() == 0)
    return tensor::ExpandShapeOp::create(
        b, loc, RankedTensorType::get({1}, type.getElementType()), value,
        ArrayRef<ReassociationIndices>{});
  ReassociationIndices all;
  for (int64_t i = 0; i < type.getRank(); ++i)
    all.push_back(i);
  return tensor::CollapseShapeOp::create(b, loc, value,
                                         ArrayRef<ReassociationIndices>{all});
}

/// Replaces the results of `func` marked `loom.grad_of` by one flat buffer
/// of `bufferType` holding each at its parameter's offset (zeros elsewhere).
LogicalResult packGradients(
    func::FuncOp func, RankedTensorType bufferType,
    const llvm::StringMap<std::pair<int64_t, RankedTensorType>> &layout) {
  SmallVector<std::pair<unsigned, int64_t>> packed; // result, offset
  for (unsigned i = 0, e = func.getNumResults(); i < e; ++i) {
    auto of = func.getResultAttrOfType<StringAttr>(i, "loom.grad_of");
    if (!of)
      continue;
    auto it = layout.find(of.getValue());
    if (it == layout.end())
      return func.emitError() << "gradient of unknown parameter " << of;
    packed.emplace_back(i, it->second.first);
  }
  if (packed.empty())
    return success();
  auto ret = llvm::cast<func::ReturnOp>(func.getBody().front().getTerminator());
  OpBuilder b(ret);
  Location loc = ret.getLoc();
  // One concatenation of the gradients and zeros between them (alignment
  // padding, parameters without a gradient): a chain of insert_slices into
  // a zero buffer reads the same but costs bufferization time quadratic in
  // its length.
  llvm::sort(packed, [](auto x, auto y) { return x.second < y.second; });
  SmallVector<Value> pieces;
  int64_t cursor = 0;
  auto zeros = [&](int64_t n) {
    auto type = RankedTensorType::get({n}, bufferType.getElementType());
    pieces.push_back(arith::ConstantOp::create(
        b, loc, type,
        DenseElementsAttr::get(type, b.getZeroAttr(type.getElementType()))));
  };
  for (auto [index, offset] : packed) {
    if (offset > cursor)
      zeros(offset - cursor);
    Value flat = flatten(b, loc, ret.getOperand(index));
    pieces.push_back(flat);
    cursor =
        offset + llvm::cast<RankedTensorType>(flat.getType()).getDimSize(0);
  }
  if (cursor < bufferType.getDimSize(0))
    zeros(bufferType.getDimSize(0) - cursor);
  Value buffer = pieces.size() == 1
                     ? pieces.front()
                     : tensor::ConcatOp::create(b, loc, bufferType,
                                                /*dim=*/0, pieces)
                           .getResult();
  // Keep the other results, then the packed buffer.
  SmallVector<Value> results;
  SmallVector<DictionaryAttr> attrs;
  llvm::BitVector isGrad(func.getNumResults());
  for (auto [index, offset] : packed)
    isGrad.set(index);
  for (unsigned i = 0, e = func.getNumResults(); i < e; ++i)
    if (!isGrad[i]) {
      results.push_back(ret.getOperand(i));
      attrs.push_back(func.getResultAttrDict(i) ? func.getResultAttrDict(i)
                                                : b.getDictionaryAttr({}));
    }
  results.push_back(buffer);
  attrs.push_back(b.getDictionaryAttr(
      b.getNamedAttr("loom.name", b.getStringAttr("grads"))));
  func::ReturnOp::create(b, loc, results);
  ret.erase();
  func.setFunctionType(FunctionType::get(func.getContext(),
                                         func.getArgumentTypes(),
                                         ValueRange(results).getTypes()));
  func.setAllResultAttrs(attrs);
  return success();
}

struct LoomMaterializeParameters
    : public loom::impl::LoomMaterializeParametersBase<
          LoomMaterializeParameters> {
  /// 1. Assign byte offsets to parameters in declaration order.
  /// 2. Prepend `params: tensor<N x f32>` to every function with a body.
  /// 3. Replace each get_parameter by extract_slice + expand_shape.
  void runOnOperation() override {
    ModuleOp module = getOperation();
    Builder b(module.getContext());
    llvm::StringMap<std::pair<int64_t, RankedTensorType>> layout;
    int64_t bytes = 0;
    for (auto param : module.getOps<loom::ParameterOp>()) {
      auto type = llvm::cast<RankedTensorType>(param.getType());
      if (!type.getElementType().isF32()) {
        param.emitError() << "only f32 parameters can be materialized yet, "
                             "got "
                          << type;
        return signalPassFailure();
      }
      bytes = llvm::alignTo(bytes, kAlignBytes);
      param->setAttr("loom.offset", b.getI64IntegerAttr(bytes));
      layout[param.getSymName()] = {bytes / 4, type};
      bytes += type.getNumElements() * 4;
    }
    bytes = llvm::alignTo(bytes, kAlignBytes);
    module->setAttr("loom.param_bytes", b.getI64IntegerAttr(bytes));
    auto bufferType = RankedTensorType::get({bytes / 4}, b.getF32Type());

    for (auto func : module.getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      if (failed(
              func.insertArgument(0, bufferType,
                                  b.getDictionaryAttr(b.getNamedAttr(
                                      "loom.name", b.getStringAttr("params"))),
                                  func.getLoc())))
        return signalPassFailure();
      // Parameters and inputs belong to the caller: bufferization must not
      // write into them, except those a result updates (`loom.updates`, a
      // decode step's caches; shifted past the parameter buffer).
      llvm::SmallDenseSet<int64_t> updated;
      for (unsigned i = 0, e = func.getNumResults(); i < e; ++i)
        if (auto arg =
                func.getResultAttrOfType<IntegerAttr>(i, "loom.updates")) {
          func.setResultAttr(i, "loom.updates",
                             b.getI64IntegerAttr(arg.getInt() + 1));
          updated.insert(arg.getInt() + 1);
        }
      for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
        if (!updated.contains(i))
          func.setArgAttr(i, "bufferization.writable", b.getBoolAttr(false));
      Value buffer = func.getArgument(0);
      SmallVector<loom::GetParameterOp> loads;
      func.walk([&](loom::GetParameterOp op) { loads.push_back(op); });
      for (loom::GetParameterOp load : loads) {
        auto it = layout.find(load.getName());
        if (it == layout.end()) {
          load.emitError() << "unknown parameter " << load.getNameAttr();
          return signalPassFailure();
        }
        auto [offset, type] = it->second;
        OpBuilder ob(load);
        Location loc = load.getLoc();
        int64_t n = type.getNumElements();
        auto flatType = RankedTensorType::get({n}, type.getElementType());
        Value flat = tensor::ExtractSliceOp::create(
            ob, loc, flatType, buffer,
            ArrayRef<OpFoldResult>{ob.getIndexAttr(offset)},
            ArrayRef<OpFoldResult>{ob.getIndexAttr(n)},
            ArrayRef<OpFoldResult>{ob.getIndexAttr(1)});
        Value shaped = flat;
        if (type.getRank() == 0) {
          shaped = tensor::CollapseShapeOp::create(
              ob, loc, flat, ArrayRef<ReassociationIndices>{});
        } else if (type.getRank() > 1) {
          ReassociationIndices all;
          for (int64_t i = 0; i < type.getRank(); ++i)
            all.push_back(i);
          shaped = tensor::ExpandShapeOp::create(
              ob, loc, type, flat, ArrayRef<ReassociationIndices>{all});
        }
        load.replaceAllUsesWith(shaped);
        load.erase();
      }
      if (failed(packGradients(func, bufferType, layout)))
        return signalPassFailure();
    }
    // Calls between defined functions pass the caller's buffer along.
    module.walk([&](func::CallOp call) {
      auto callee = module.lookupSymbol<func::FuncOp>(call.getCallee());
      auto caller = call->getParentOfType<func::FuncOp>();
      if (!callee || callee.isExternal() || !caller)
        return;
      SmallVector<Value> operands = {caller.getArgument(0)};
      llvm::append_range(operands, call.getOperands());
      call->setOperands(operands);
    });
  }
};

} // namespace
