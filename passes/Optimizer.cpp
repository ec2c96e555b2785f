//===- Optimizer.cpp - A fused training step over flat buffers ------------===//
//
// Turns `<fn>_grad(params, inputs...) -> (loss, grads)` into
// `train_step(params, state..., hyper, inputs...) -> (loss, params',
// state'..., grad_norm, non_finite)`: the gradient computation, the global
// gradient norm (and clipping), then one fused elementwise loop per run of
// adjacent trainable parameters with the same learning rate (usually one
// loop over the whole buffer) that updates them and their optimizer state,
// and the count of updated parameters that are not finite.
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
    auto named = [&](StringRef name) {
      return b.getDictionaryAttr(
          {b.getNamedAttr("loom.name", b.getStringAttr(name)),
           b.getNamedAttr("bufferization.writable", b.getBoolAttr(false))});
    };
    argAttrs.push_back(named("params"));
    static const char *stateNames[] = {"m", "v"};
    for (unsigned i = 0; i < numStates; ++i) {
      inputs.push_back(buffer);
      argAttrs.push_back(named(stateNames[i]));
    }
    inputs.push_back(hyperType);
    argAttrs.push_back(named("hyper"));
    for (unsigned i = 1; i < grad.getNumArguments(); ++i) {
      inputs.push_back(grad.getArgument(i).getType());
      argAttrs.push_back(grad.getArgAttrDict(i) ? grad.getArgAttrDict(i)
                                                : b.getDictionaryAttr({}));
    }
    Type lossType = grad.getFunctionType().getResult(0);
    SmallVector<Type> results = {lossType, buffer};
    for (unsigned i = 0; i < numStates; ++i)
      results.push_back(buffer);
    results.push_back(scalarType); // grad_norm
    results.push_back(scalarType); // non_finite

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

    // Global gradient norm and the clipping factor. The sum of squares
    // runs in two levels: a partial sum per chunk of the buffer (a parallel
    // loop, which the threads split: one running sum over 124 M gradients
    // was 2.6% of a GPT-2-small step on one thread while the other waited),
    // then the sum of the partials. The chunks are fixed, so the result is
    // the same whatever the thread count.
    Value zero = s.c(0.0);
    auto zeros = [&](ArrayRef<int64_t> shape) {
      return linalg::FillOp::create(
                 b, loc, zero,
                 Value(tensor::EmptyOp::create(b, loc, shape, f32)))
          .getResult(0);
    };
    MLIRContext *c = ctx;
    AffineMap id1 = AffineMap::getMultiDimIdentityMap(1, c);
    AffineMap toScalar = AffineMap::get(1, 0, {}, c);
    // What a sum adds per element: x, x * x, or 1 where x is an infinity
    // or NaN (|x| < inf is false for both), else 0.
    enum class Term { Value, Square, NonFinite };
    auto sumOf = [&](Value input, Value init, ArrayRef<AffineMap> maps,
                     ArrayRef<utils::IteratorType> iterators, Term term) {
      return linalg::GenericOp::create(
                 b, loc, init.getType(), ValueRange{input}, ValueRange{init},
                 maps, iterators,
                 [term](OpBuilder &nb, Location nl, ValueRange args) {
                   Value x = args[0];
                   if (term == Term::Square)
                     x = arith::MulFOp::create(nb, nl, x, x);
                   if (term == Term::NonFinite) {
                     Type f32 = x.getType();
                     Value inf = arith::ConstantOp::create(
                         nb, nl,
                         nb.getFloatAttr(
                             f32, APFloat::getInf(APFloat::IEEEsingle())));
                     Value finite = arith::CmpFOp::create(
                         nb, nl, arith::CmpFPredicate::OLT,
                         math::AbsFOp::create(nb, nl, x), inf);
                     x = arith::SelectOp::create(
                         nb, nl, finite,
                         arith::ConstantOp::create(nb, nl,
                                                   nb.getFloatAttr(f32, 0.0)),
                         arith::ConstantOp::create(nb, nl,
                                                   nb.getFloatAttr(f32, 1.0)));
                   }
                   linalg::YieldOp::create(
                       nb, nl, {arith::AddFOp::create(nb, nl, args[1], x)});
                 })
          .getResult(0);
    };
    // Of the chunkings into 2-64 chunks of at least 4096 floats, the first
    // whose chunks are a multiple of 64 floats (four 16-lane vectors: the
    // vectorized loop then has no remainder and full registers), else of
    // 16, with at least 8 chunks if it can (threads to split them), else
    // any. (GPT-2-small's 124439808 floats in 64 chunks of 1944372 = 4 x
    // 486093 were summed 4 floats at a time.)
    int64_t total = buffer.getNumElements(), chunks = 1;
    auto pick = [&](int64_t multiple, int64_t atLeast) {
      for (int64_t candidate : {64, 32, 16, 8, 4, 2})
        if (candidate >= atLeast && total % candidate == 0 &&
            total / candidate >= 4096 && (total / candidate) % multiple == 0) {
          chunks = candidate;
          return true;
        }
      return false;
    };
    pick(64, 8) || pick(16, 8) || pick(64, 2) || pick(16, 2) || pick(1, 2);
    auto reduction = utils::IteratorType::reduction;
    auto sumOver = [&](Value flat, Term term) {
      if (chunks == 1)
        return sumOf(flat, zeros({}), {id1, toScalar}, {reduction}, term);
      Value grid = tensor::ExpandShapeOp::create(
          b, loc, RankedTensorType::get({chunks, total / chunks}, f32), flat,
          ArrayRef<ReassociationIndices>{{0, 1}});
      AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, c);
      AffineMap rows = AffineMap::get(2, 0, {getAffineDimExpr(0, c)}, c);
      Value partial = sumOf(grid, zeros({chunks}), {id2, rows},
                            {utils::IteratorType::parallel, reduction}, term);
      return sumOf(partial, zeros({}), {id1, toScalar}, {reduction},
                   Term::Value);
    };
    Value sumSq = sumOver(grads, Term::Square);
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

    Value newParams = params;
    SmallVector<Value> newStates(states);
    for (const Range &range : ranges) {
      Value lrEff = s.mul(lr, s.c(range.mult));
      int64_t n = range.end - range.begin;
      bool whole = n == buffer.getNumElements();
      auto sliceType = RankedTensorType::get({n}, f32);
      auto slice = [&](Value from) -> Value {
        if (whole)
          return from;
        return tensor::ExtractSliceOp::create(
                   b, loc, sliceType, from,
                   ArrayRef<OpFoldResult>{b.getIndexAttr(range.begin)},
                   ArrayRef<OpFoldResult>{b.getIndexAttr(n)},
                   ArrayRef<OpFoldResult>{b.getIndexAttr(1)})
            .getResult();
      };
      SmallVector<Value> ins = {slice(params), slice(grads)};
      for (Value state : states)
        ins.push_back(slice(state));
      SmallVector<Value> outs;
      SmallVector<Type> outTypes;
      for (unsigned i = 0; i <= numStates; ++i) {
        outs.push_back(
            tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{n}, f32));
        outTypes.push_back(sliceType);
      }
      SmallVector<AffineMap> maps(ins.size() + outs.size(), id1);
      auto update = linalg::GenericOp::create(
          b, loc, outTypes, ins, outs, maps,
          ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            SmallVector<Value> yields =
                updateBody(nb, nl, rule, args, lrEff, clip, bc1, bc2);
            linalg::YieldOp::create(nb, nl, yields);
          });
      auto insert = [&](Value piece, Value into) -> Value {
        if (whole)
          return piece;
        return tensor::InsertSliceOp::create(
                   b, loc, piece, into,
                   ArrayRef<OpFoldResult>{b.getIndexAttr(range.begin)},
                   ArrayRef<OpFoldResult>{b.getIndexAttr(n)},
                   ArrayRef<OpFoldResult>{b.getIndexAttr(1)})
            .getResult();
      };
      newParams = insert(update.getResult(0), newParams);
      for (unsigned i = 0; i < numStates; ++i)
        newStates[i] = insert(update.getResult(1 + i), newStates[i]);
    }

    // How many updated parameters are infinite or NaN (an overflowing
    // update can follow a finite gradient): the host commits the step only
    // when none is, and with parameters resident on a device it reads this
    // number rather than the buffer. (A count in f32: exact up to 2^24, and
    // never 0 when one is.)
    Value nonFinite = sumOver(newParams, Term::NonFinite);

    SmallVector<Value> returned = {loss, newParams};
    llvm::append_range(returned, newStates);
    returned.push_back(gradNorm);
    returned.push_back(nonFinite);
    func::ReturnOp::create(b, loc, returned);

    SmallVector<DictionaryAttr> resultAttrs;
    for (StringRef name : {"loss", "params"})
      resultAttrs.push_back(b.getDictionaryAttr(
          b.getNamedAttr("loom.name", b.getStringAttr(name))));
    for (unsigned i = 0; i < numStates; ++i)
      resultAttrs.push_back(b.getDictionaryAttr(
          b.getNamedAttr("loom.name", b.getStringAttr(stateNames[i]))));
    for (StringRef name : {"grad_norm", "non_finite"})
      resultAttrs.push_back(b.getDictionaryAttr(
          b.getNamedAttr("loom.name", b.getStringAttr(name))));
    step.setAllResultAttrs(resultAttrs);
    if (auto flops = grad->getAttrOfType<IntegerAttr>("loom.flops"))
      step->setAttr("loom.flops",
                    b.getI64IntegerAttr(flops.getInt() +
                                        2 * buffer.getNumElements() +
                                        updateFlops));
    step->setAttr("loom.optimizer_states", b.getI64IntegerAttr(numStates));
    return success();
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
