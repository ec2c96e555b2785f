//===- Optimizer.cpp - A fused training step over flat buffers ------------===//
//
// Turns `<fn>_grad(params, inputs...) -> (loss, grads)` into
// `train_step(params, state..., hyper, inputs...) -> (loss, params',
// state'..., grad_norm, first_non_finite)` that updates the parameters and
// the optimizer state in place: the gradient computation, the global
// gradient norm (and clipping), a read-only pass that finds the first
// parameter whose update would not be finite, then one fused elementwise
// loop per run of adjacent trainable parameters with the same learning rate
// (usually one loop over the whole buffer) that writes the update into the
// parameters and their state, or writes back what was there when the step
// is rejected (a loss, a norm or an update that is not finite).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include <array>
#include <limits>

#define DEBUG_TYPE "loom-optimizer"

namespace loom {
#define GEN_PASS_DEF_LOOMOPTIMIZER
#include "passes/Passes.h.inc"
} // namespace loom

using namespace mlir;

namespace {

/// Hyperparameters fixed at compile time.
struct Rule {
  enum Kind { Sgd, Adam, AdamW } kind;
  double momentum, beta1, beta2, eps, weightDecay;
  bool nesterov;

  unsigned numStates() const {
    if (kind == Sgd)
      return momentum > 0 ? 1 : 0;
    return 2;
  }
};

/// Scalar f32 helpers inside a region.
struct Scalars {
  OpBuilder &b;
  Location loc;
  Value c(double v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(float(v)));
  }
  Value add(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return arith::DivFOp::create(b, loc, x, y); }
};

struct LoomOptimizer : public loom::impl::LoomOptimizerBase<LoomOptimizer> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    Rule rule;
    if (kind == "sgd")
      rule.kind = Rule::Sgd;
    else if (kind == "adam")
      rule.kind = Rule::Adam;
    else if (kind == "adamw")
      rule.kind = Rule::AdamW;
    else {
      module.emitError() << "loom-optimizer: unknown kind '" << kind
                         << "'; expected sgd, adam or adamw";
      return signalPassFailure();
    }
    rule.momentum = momentum;
    rule.beta1 = beta1;
    rule.beta2 = beta2;
    rule.eps = eps;
    rule.weightDecay = weightDecay;
    rule.nesterov = nesterov;
    if (momentum < 0 || beta1 < 0 || beta1 >= 1 || beta2 < 0 || beta2 >= 1 ||
        eps < 0 || weightDecay < 0 || (nesterov && momentum <= 0)) {
      module.emitError() << "loom-optimizer: invalid hyperparameters "
                            "(need momentum >= 0, 0 <= beta < 1, eps >= 0, "
                            "weight-decay >= 0, nesterov only with momentum)";
      return signalPassFailure();
    }

    auto grad = module.lookupSymbol<func::FuncOp>(function);
    if (!grad || grad.isExternal()) {
      module.emitError() << "loom-optimizer: no gradient function '" << function
                         << "'";
      return signalPassFailure();
    }
    FunctionType gradType = grad.getFunctionType();
    auto buffer = gradType.getNumInputs() > 0
                      ? llvm::dyn_cast<RankedTensorType>(gradType.getInput(0))
                      : RankedTensorType();
    if (!buffer || buffer.getRank() != 1 || gradType.getNumResults() != 2 ||
        gradType.getResult(1) != buffer) {
      grad.emitError() << "loom-optimizer: expected (params, inputs...) -> "
                          "(loss, grads) with grads in the parameter layout; "
                          "run loom-autodiff and "
                          "loom-materialize-parameters first";
      return signalPassFailure();
    }
    if (failed(buildTrainStep(module, grad, buffer, rule)))
      return signalPassFailure();
    grad.erase();
  }

  LogicalResult buildTrainStep(ModuleOp module, func::FuncOp grad,
                               RankedTensorType buffer, const Rule &rule) {
    MLIRContext *ctx = &getContext();
    OpBuilder b(grad);
    Location loc = grad.getLoc();
    Type f32 = b.getF32Type();
    auto scalarType = RankedTensorType::get({}, f32);
    auto hyperType = RankedTensorType::get({4}, f32);
    unsigned numStates = rule.numStates();

    // Signature.
    SmallVector<Type> inputs = {buffer};
    SmallVector<DictionaryAttr> argAttrs;
    // The parameters and the state are updated in place (writable); the
    // hyperparameters and the inputs belong to the caller.
    auto named = [&](StringRef name, bool writable) {
      return b.getDictionaryAttr(
          {b.getNamedAttr("loom.name", b.getStringAttr(name)),
           b.getNamedAttr("bufferization.writable", b.getBoolAttr(writable))});
    };
    argAttrs.push_back(named("params", true));
    static const char *stateNames[] = {"m", "v"};
    for (unsigned i = 0; i < numStates; ++i) {
      inputs.push_back(buffer);
      argAttrs.push_back(named(stateNames[i], true));
    }
    inputs.push_back(hyperType);
    argAttrs.push_back(named("hyper", false));
    for (unsigned i = 1; i < grad.getNumArguments(); ++i) {
      inputs.push_back(grad.getArgument(i).getType());
      argAttrs.push_back(grad.getArgAttrDict(i) ? grad.getArgAttrDict(i)
                                                : b.getDictionaryAttr({}));
    }
    Type lossType = grad.getFunctionType().getResult(0);
    if (lossType != scalarType) {
      grad.emitError() << "loom-optimizer: expected a scalar f32 loss, got "
                       << lossType;
      return failure();
    }
    Type i64 = b.getI64Type();
    auto indexType = RankedTensorType::get({}, i64);
    SmallVector<Type> results = {lossType, buffer};
    for (unsigned i = 0; i < numStates; ++i)
      results.push_back(buffer);
    results.push_back(scalarType); // grad_norm
    results.push_back(indexType);  // first_non_finite

    auto step = func::FuncOp::create(b, loc, "train_step",
                                     FunctionType::get(ctx, inputs, results));
    step.setAllArgAttrs(argAttrs);
    Block *entry = step.addEntryBlock();
    b.setInsertionPointToStart(entry);

    // The gradient computation, inlined.
    IRMapping map;
    map.map(grad.getArgument(0), entry->getArgument(0));
    for (unsigned i = 1; i < grad.getNumArguments(); ++i)
      map.map(grad.getArgument(i), entry->getArgument(numStates + 1 + i));
    Block &gradBody = grad.getBody().front();
    for (Operation &op : gradBody.without_terminator())
      b.clone(op, map);
    auto gradRet = llvm::cast<func::ReturnOp>(gradBody.getTerminator());
    Value loss = map.lookup(gradRet.getOperand(0));
    Value grads = map.lookup(gradRet.getOperand(1));
    Value params = entry->getArgument(0);
    SmallVector<Value> states;
    for (unsigned i = 0; i < numStates; ++i)
      states.push_back(entry->getArgument(1 + i));
    Value hyper = entry->getArgument(1 + numStates);

    Scalars s{b, loc};
    auto hyperAt = [&](int64_t i) {
      Value index = arith::ConstantIndexOp::create(b, loc, i);
      return tensor::ExtractOp::create(b, loc, hyper, ValueRange{index})
          .getResult();
    };
    Value lr = hyperAt(0), bc1 = hyperAt(1), bc2 = hyperAt(2);

    MLIRContext *c = ctx;
    auto parallel = utils::IteratorType::parallel;
    auto reduction = utils::IteratorType::reduction;
    auto filled = [&](ArrayRef<int64_t> shape, TypedAttr value) {
      Value init = arith::ConstantOp::create(b, loc, value);
      Value empty =
          tensor::EmptyOp::create(b, loc, shape, value.getType()).getResult();
      return linalg::FillOp::create(b, loc, init, empty).getResult(0);
    };
    auto zeros = [&](ArrayRef<int64_t> shape) {
      return filled(shape, b.getF32FloatAttr(0.0f));
    };
    AffineMap id1 = AffineMap::getMultiDimIdentityMap(1, c);
    AffineMap toScalar = AffineMap::get(1, 0, {}, c);

    // The passes over a run of floats (the gradient norm, the check of the
    // update) see it as a grid: chunks, which the threads split, each
    // reduced to partial results per vector lane ([chunks, length / width,
    // width] reduced over the middle dim: whole vectors combine, with no
    // horizontal step per vector), combined at the end. The chunks are
    // fixed, so the results are the same whatever the thread count. Of the
    // chunkings into 2-64 chunks of at least 4096 floats, the first whose
    // chunks are a multiple of 64 floats, else of 16, with at least 8
    // chunks if it can, else any.
    struct Grid {
      int64_t chunks = 1, length = 0, width = 1;
      SmallVector<int64_t> shape, partialShape;
      AffineMap all, partial;
      SmallVector<utils::IteratorType> iterators;
    };
    auto gridOf = [&](int64_t n) {
      Grid g;
      g.length = n;
      auto pick = [&](int64_t multiple, int64_t atLeast) {
        for (int64_t candidate : {64, 32, 16, 8, 4, 2})
          if (candidate >= atLeast && n % candidate == 0 &&
              n / candidate >= 4096 && (n / candidate) % multiple == 0) {
            g.chunks = candidate;
            g.length = n / candidate;
            return true;
          }
        return false;
      };
      pick(64, 8) || pick(16, 8) || pick(64, 2) || pick(16, 2) || pick(1, 2);
      g.width = g.length % 64 == 0 ? 64 : g.length % 16 == 0 ? 16 : 1;
      AffineExpr d0 = getAffineDimExpr(0, c);
      if (g.width > 1) {
        g.shape = {g.chunks, g.length / g.width, g.width};
        g.partialShape = {g.chunks, g.width};
        g.partial = AffineMap::get(3, 0, {d0, getAffineDimExpr(2, c)}, c);
        g.iterators = {parallel, reduction, parallel};
      } else {
        g.shape = {g.chunks, g.length};
        g.partialShape = {g.chunks};
        g.partial = AffineMap::get(2, 0, {d0}, c);
        g.iterators = {parallel, reduction};
      }
      g.all = AffineMap::getMultiDimIdentityMap(g.shape.size(), c);
      return g;
    };
    auto gridView = [&](Value flat, const Grid &g) -> Value {
      ReassociationIndices dims;
      for (size_t i = 0; i < g.shape.size(); ++i)
        dims.push_back(int64_t(i));
      return tensor::ExpandShapeOp::create(
          b, loc, RankedTensorType::get(g.shape, f32), flat,
          ArrayRef<ReassociationIndices>{dims});
    };
    // A grid element's offset in its chunk, in the generic being built.
    auto offsetInChunk = [](OpBuilder &nb, Location nl, const Grid &g) {
      Value offset = linalg::IndexOp::create(nb, nl, 1);
      if (g.width > 1)
        offset = arith::AddIOp::create(
            nb, nl,
            arith::MulIOp::create(
                nb, nl, offset,
                arith::ConstantIndexOp::create(nb, nl, g.width)),
            linalg::IndexOp::create(nb, nl, 2));
      return offset;
    };

    // Global gradient norm and the clipping factor. (One running sum over
    // 124 M gradients was 2.6% of a GPT-2-small step on one thread while
    // the other waited; partial sums reduced horizontally per vector were
    // 18 ms more.)
    Grid whole = gridOf(buffer.getNumElements());
    Value squares =
        linalg::GenericOp::create(
            b, loc, TypeRange{RankedTensorType::get(whole.partialShape, f32)},
            ValueRange{gridView(grads, whole)},
            ValueRange{zeros(whole.partialShape)},
            ArrayRef<AffineMap>{whole.all, whole.partial}, whole.iterators,
            [](OpBuilder &nb, Location nl, ValueRange args) {
              Value square = arith::MulFOp::create(nb, nl, args[0], args[0]);
              linalg::YieldOp::create(
                  nb, nl, {arith::AddFOp::create(nb, nl, args[1], square)});
            })
            .getResult(0);
    if (whole.partialShape.size() == 2)
      squares = tensor::CollapseShapeOp::create(
          b, loc, squares, ArrayRef<ReassociationIndices>{{0, 1}});
    Value sumSq =
        linalg::GenericOp::create(
            b, loc, TypeRange{scalarType}, ValueRange{squares},
            ValueRange{zeros({})}, ArrayRef<AffineMap>{id1, toScalar},
            ArrayRef<utils::IteratorType>{reduction},
            [](OpBuilder &nb, Location nl, ValueRange args) {
              linalg::YieldOp::create(
                  nb, nl, {arith::AddFOp::create(nb, nl, args[1], args[0])});
            })
            .getResult(0);
    Value norm = math::SqrtOp::create(
        b, loc, tensor::ExtractOp::create(b, loc, sumSq, ValueRange{}));
    Value clip = s.c(1.0);
    if (maxGradNorm > 0) {
      Value ratio = s.div(s.c(maxGradNorm), s.add(norm, s.c(1e-6)));
      clip = arith::MinimumFOp::create(b, loc, ratio, s.c(1.0));
    }
    Value gradNorm =
        tensor::FromElementsOp::create(b, loc, scalarType, ValueRange{norm});

    // Trainable parameters with the same learning-rate multiplier that sit
    // next to each other in the buffer update as one range (the alignment
    // padding between them holds zeros, which every rule keeps at zero):
    // one fused loop over the whole buffer when everything trains alike.
    struct Range {
      int64_t begin, end;
      double mult;
    };
    SmallVector<Range> ranges;
    int64_t updateFlops = 0;
    bool lastTrainable = false;
    for (auto param : module.getOps<loom::ParameterOp>()) {
      bool trainable = param->hasAttr("loom.trainable");
      auto offsetAttr = param->getAttrOfType<IntegerAttr>("loom.offset");
      if (trainable && !offsetAttr)
        return param.emitError("loom-optimizer: parameter has no offset; run "
                               "loom-materialize-parameters first");
      if (!trainable) {
        lastTrainable = false;
        continue;
      }
      int64_t offset = offsetAttr.getInt() / 4;
      int64_t n =
          llvm::cast<RankedTensorType>(param.getType()).getNumElements();
      double mult = 1.0;
      if (auto m = param->getAttrOfType<FloatAttr>("loom.lr_mult"))
        mult = m.getValueAsDouble();
      if (mult < 0)
        return param.emitError("loom-optimizer: negative loom.lr_mult");
      updateFlops += n * (rule.kind == Rule::Sgd ? 6 : 14);
      if (lastTrainable && ranges.back().mult == mult) {
        ranges.back().end = offset + n;
        continue;
      }
      ranges.push_back({offset, offset + n, mult});
      lastTrainable = true;
    }
    // A range that ends with the last parameter covers the buffer's padded
    // end.
    if (lastTrainable)
      ranges.back().end = buffer.getNumElements();

    int64_t total = buffer.getNumElements();
    // [range.begin, range.end) of a buffer: its offsets, sizes and strides.
    auto place = [&](const Range &range) {
      return std::array<SmallVector<OpFoldResult>, 3>{
          {{b.getIndexAttr(range.begin)},
           {b.getIndexAttr(range.end - range.begin)},
           {b.getIndexAttr(1)}}};
    };
    auto sliceOf = [&](Value from, const Range &range) -> Value {
      int64_t n = range.end - range.begin;
      if (n == total)
        return from;
      auto [offsets, sizes, strides] = place(range);
      return tensor::ExtractSliceOp::create(b, loc,
                                            RankedTensorType::get({n}, f32),
                                            from, offsets, sizes, strides)
          .getResult();
    };

    // The check, a read-only pass: the first index of the buffer whose
    // update (the parameter or a moment) would be infinite or NaN (an
    // overflowing update can follow a finite gradient), `total` where none
    // is. Per run, chunk and lane: the smallest such offset in the chunk
    // (i32), the chunk's length where none is; then the smallest index over
    // the partials (i64).
    Type i32 = b.getI32Type();
    // Each run's learning rate, for the check and the update.
    SmallVector<Value> rates;
    for (const Range &range : ranges)
      rates.push_back(s.mul(lr, s.c(range.mult)));
    Value first = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(total));
    for (auto [range, lrEff] : llvm::zip(ranges, rates)) {
      Grid g = gridOf(range.end - range.begin);
      if (g.length > std::numeric_limits<int32_t>::max())
        return grad.emitError()
               << "loom-optimizer: a run of " << range.end - range.begin
               << " trainable floats has chunks of more than 2^31 - 1";
      SmallVector<Value> ins = {gridView(sliceOf(params, range), g),
                                gridView(sliceOf(grads, range), g)};
      for (Value state : states)
        ins.push_back(gridView(sliceOf(state, range), g));
      SmallVector<AffineMap> maps(ins.size(), g.all);
      maps.push_back(g.partial);
      Value none = filled(g.partialShape, b.getI32IntegerAttr(g.length));
      Value offsets =
          linalg::GenericOp::create(
              b, loc, TypeRange{none.getType()}, ins, ValueRange{none}, maps,
              g.iterators,
              [&](OpBuilder &nb, Location nl, ValueRange args) {
                Value finite;
                for (Value x : updateBody(nb, nl, rule, args.drop_back(), lrEff,
                                          clip, bc1, bc2)) {
                  Value ok = isFinite(nb, nl, x);
                  finite =
                      finite ? arith::AndIOp::create(nb, nl, finite, ok) : ok;
                }
                Value offset = arith::IndexCastOp::create(
                    nb, nl, i32, offsetInChunk(nb, nl, g));
                Value candidate = arith::SelectOp::create(
                    nb, nl, finite,
                    arith::ConstantOp::create(nb, nl,
                                              nb.getI32IntegerAttr(g.length)),
                    offset);
                linalg::YieldOp::create(
                    nb, nl,
                    {arith::MinUIOp::create(nb, nl, args.back(), candidate)});
              })
              .getResult(0);
      // The smallest buffer index among the partials.
      size_t rank = g.partialShape.size();
      Value firstOfRun =
          linalg::GenericOp::create(
              b, loc, TypeRange{indexType}, ValueRange{offsets},
              ValueRange{filled({}, b.getI64IntegerAttr(total))},
              ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(rank, c),
                                  AffineMap::get(rank, 0, {}, c)},
              SmallVector<utils::IteratorType>(rank, reduction),
              [&](OpBuilder &nb, Location nl, ValueRange args) {
                auto i64c = [&](int64_t v) {
                  return arith::ConstantOp::create(nb, nl,
                                                   nb.getI64IntegerAttr(v));
                };
                Value chunk = arith::IndexCastOp::create(
                    nb, nl, nb.getI64Type(),
                    linalg::IndexOp::create(nb, nl, 0));
                Value at = arith::AddIOp::create(
                    nb, nl,
                    arith::AddIOp::create(
                        nb, nl, i64c(range.begin),
                        arith::MulIOp::create(nb, nl, chunk, i64c(g.length))),
                    arith::ExtUIOp::create(nb, nl, nb.getI64Type(), args[0]));
                Value found = arith::CmpIOp::create(
                    nb, nl, arith::CmpIPredicate::ult, args[0],
                    arith::ConstantOp::create(nb, nl,
                                              nb.getI32IntegerAttr(g.length)));
                Value candidate =
                    arith::SelectOp::create(nb, nl, found, at, i64c(total));
                linalg::YieldOp::create(
                    nb, nl,
                    {arith::MinSIOp::create(nb, nl, args[1], candidate)});
              })
              .getResult(0);
      first = arith::MinSIOp::create(
          b, loc, first,
          tensor::ExtractOp::create(b, loc, firstOfRun, ValueRange{}));
    }

    // The step commits when the loss, the norm and every update are
    // finite, the condition the host reads back from the results.
    Value lossValue = tensor::ExtractOp::create(b, loc, loss, ValueRange{});
    Value commit = arith::AndIOp::create(
        b, loc,
        arith::CmpIOp::create(
            b, loc, arith::CmpIPredicate::eq, first,
            arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(total))),
        arith::AndIOp::create(b, loc, isFinite(b, loc, lossValue),
                              isFinite(b, loc, norm)));

    // The update, in place: each run's parameters and state are the loop's
    // outputs (it reads them through its output arguments), written with
    // the new values or, in a rejected step, with the old ones.
    Value newParams = params;
    SmallVector<Value> newStates(states);
    for (auto [range, lrEff] : llvm::zip(ranges, rates)) {
      int64_t n = range.end - range.begin;
      auto sliceType = RankedTensorType::get({n}, f32);
      SmallVector<Value> outs = {sliceOf(newParams, range)};
      for (Value state : newStates)
        outs.push_back(sliceOf(state, range));
      SmallVector<Type> outTypes(outs.size(), sliceType);
      SmallVector<AffineMap> maps(1 + outs.size(), id1);
      auto update = linalg::GenericOp::create(
          b, loc, outTypes, ValueRange{sliceOf(grads, range)}, outs, maps,
          ArrayRef<utils::IteratorType>{parallel},
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            // args: g, p, state...; the rule takes p, g, state...
            SmallVector<Value> operands = {args[1], args[0]};
            llvm::append_range(operands, args.drop_front(2));
            SmallVector<Value> updated =
                updateBody(nb, nl, rule, operands, lrEff, clip, bc1, bc2);
            SmallVector<Value> yields;
            for (auto [value, old] : llvm::zip(updated, args.drop_front()))
              yields.push_back(
                  arith::SelectOp::create(nb, nl, commit, value, old));
            linalg::YieldOp::create(nb, nl, yields);
          });
      auto insert = [&](Value piece, Value into) -> Value {
        if (n == total)
          return piece;
        auto [offsets, sizes, strides] = place(range);
        return tensor::InsertSliceOp::create(b, loc, piece, into, offsets,
                                             sizes, strides)
            .getResult();
      };
      newParams = insert(update.getResult(0), newParams);
      for (unsigned i = 0; i < numStates; ++i)
        newStates[i] = insert(update.getResult(1 + i), newStates[i]);
    }

    Value firstNonFinite =
        tensor::FromElementsOp::create(b, loc, indexType, ValueRange{first});
    SmallVector<Value> returned = {loss, newParams};
    llvm::append_range(returned, newStates);
    returned.push_back(gradNorm);
    returned.push_back(firstNonFinite);
    func::ReturnOp::create(b, loc, returned);

    // The parameters and the state are results marked as updates of their
    // arguments (`loom-drop-updated-results` takes them out of the
    // compiled signature).
    auto result = [&](StringRef name, std::optional<int64_t> updates) {
      SmallVector<NamedAttribute> attrs = {
          b.getNamedAttr("loom.name", b.getStringAttr(name))};
      if (updates)
        attrs.push_back(
            b.getNamedAttr("loom.updates", b.getI64IntegerAttr(*updates)));
      return b.getDictionaryAttr(attrs);
    };
    SmallVector<DictionaryAttr> resultAttrs = {result("loss", std::nullopt),
                                               result("params", 0)};
    for (unsigned i = 0; i < numStates; ++i)
      resultAttrs.push_back(result(stateNames[i], 1 + i));
    resultAttrs.push_back(result("grad_norm", std::nullopt));
    resultAttrs.push_back(result("first_non_finite", std::nullopt));
    step.setAllResultAttrs(resultAttrs);
    if (auto flops = grad->getAttrOfType<IntegerAttr>("loom.flops"))
      step->setAttr("loom.flops",
                    b.getI64IntegerAttr(flops.getInt() +
                                        2 * buffer.getNumElements() +
                                        updateFlops));
    step->setAttr("loom.optimizer_states", b.getI64IntegerAttr(numStates));
    return success();
  }

  /// |x| < inf: false for infinities and NaN.
  static Value isFinite(OpBuilder &b, Location loc, Value x) {
    Value inf = arith::ConstantOp::create(
        b, loc, b.getF32FloatAttr(std::numeric_limits<float>::infinity()));
    return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT,
                                 math::AbsFOp::create(b, loc, x), inf);
  }

  /// The update of one element: args are (p, g, state...), results
  /// (p', state'...).
  static SmallVector<Value> updateBody(OpBuilder &b, Location loc,
                                       const Rule &rule, ValueRange args,
                                       Value lr, Value clip, Value bc1,
                                       Value bc2) {
    Scalars s{b, loc};
    Value p = args[0];
    Value g = s.mul(args[1], clip);
    if (rule.weightDecay > 0 && rule.kind != Rule::AdamW)
      g = s.add(g, s.mul(s.c(rule.weightDecay), p));
    if (rule.kind == Rule::Sgd) {
      if (rule.momentum <= 0)
        return {s.sub(p, s.mul(lr, g))};
      Value mu = s.c(rule.momentum);
      Value m = s.add(s.mul(mu, args[2]), g);
      Value step = rule.nesterov ? s.add(g, s.mul(mu, m)) : m;
      return {s.sub(p, s.mul(lr, step)), m};
    }
    Value m =
        s.add(s.mul(s.c(rule.beta1), args[2]), s.mul(s.c(1.0 - rule.beta1), g));
    Value v = s.add(s.mul(s.c(rule.beta2), args[3]),
                    s.mul(s.c(1.0 - rule.beta2), s.mul(g, g)));
    Value denom =
        s.add(math::SqrtOp::create(b, loc, s.div(v, bc2)), s.c(rule.eps));
    Value step = s.div(s.div(m, bc1), denom);
    if (rule.weightDecay > 0 && rule.kind == Rule::AdamW)
      step = s.add(step, s.mul(s.c(rule.weightDecay), p));
    return {s.sub(p, s.mul(lr, step)), m, v};
  }
};

} // namespace
