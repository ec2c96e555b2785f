//===- Primitives.cpp - Typing rules of the Loom primitives ---------------===//
//
// One entry per primitive: its parameters (with defaults) and a rule that
// checks shapes and dtypes with symbolic dims, reports errors naming the
// dims, and emits the loom op through MLIRGen. The result type the rule
// computes is cross-checked against the op's own type inference.
//
//===----------------------------------------------------------------------===//

#include "frontend/Diagnostics.h"
#include "frontend/MLIRGen.h"
#include "frontend/Sema.h"

#include "ir/LoomOps.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Format.h"

#include <cmath>
#include <functional>

using namespace loom::frontend;
using llvm::SMRange;
using llvm::StringRef;

namespace loom::frontend {

/// The arguments of one primitive call, bound to the primitive's parameters.
struct PrimitiveCall {
  Sema &sema;
  StringRef name;
  SMRange site;
  std::vector<Value> args;
  std::vector<SMRange> ranges;
  std::vector<const char *> names;
  mlir::Location loc;

  MLIRGen &gen() { return sema.getGen(); }
  mlir::OpBuilder &b() { return sema.getGen().builder(); }

  SMRange range(size_t i) const {
    return ranges[i].Start.isValid() ? ranges[i] : site;
  }
  bool has(size_t i) const { return args[i].kind != Value::Kind::None; }

  Value fail(size_t i, const llvm::Twine &message) {
    sema.error(range(i), message);
    return Value::error();
  }
  Value fail(const llvm::Twine &message) {
    sema.error(site, message);
    return Value::error();
  }
  std::string arg(size_t i) const {
    return "argument '" + std::string(names[i]) + "' of '" + name.str() + "'";
  }

  /// Argument i as a tensor (numbers become f32 scalars, or `like`'s dtype).
  std::optional<TensorType> tensor(size_t i, const TensorType *like = nullptr) {
    Value v = sema.asTensor(args[i], range(i), arg(i), like);
    if (v.isError())
      return std::nullopt;
    args[i] = v;
    return v.type;
  }
  std::optional<TensorType> floatTensor(size_t i) {
    std::optional<TensorType> t = tensor(i);
    if (t && !isFloat(t->dtype)) {
      fail(i, arg(i) + " must be a floating-point tensor, got " + t->str());
      return std::nullopt;
    }
    return t;
  }
  mlir::Value ir(size_t i) const { return args[i].ir; }

  std::optional<Dim> dim(size_t i) {
    if (args[i].kind == Value::Kind::Int)
      return args[i].dim;
    fail(i, arg(i) + " must be an integer, got " + args[i].describe());
    return std::nullopt;
  }
  std::optional<int64_t> integer(size_t i) {
    std::optional<Dim> d = dim(i);
    if (!d)
      return std::nullopt;
    if (!d->getConstant()) {
      fail(i, arg(i) +
                  " must be known at compile time, got the symbolic "
                  "dim " +
                  d->str());
      return std::nullopt;
    }
    return d->getConstant();
  }
  std::optional<double> number(size_t i) {
    if (args[i].kind == Value::Kind::Float)
      return args[i].number;
    if (args[i].kind == Value::Kind::Int && args[i].dim.getConstant())
      return static_cast<double>(*args[i].dim.getConstant());
    fail(i, arg(i) + " must be a number, got " + args[i].describe());
    return std::nullopt;
  }
  std::optional<bool> flag(size_t i) {
    if (args[i].kind == Value::Kind::Bool)
      return args[i].flag;
    fail(i, arg(i) + " must be true or false, got " + args[i].describe());
    return std::nullopt;
  }
  /// An integer or a list of integers, as a list of dims.
  std::optional<llvm::SmallVector<Dim>> dims(size_t i) {
    llvm::SmallVector<Dim> out;
    if (args[i].kind == Value::Kind::Int) {
      out.push_back(args[i].dim);
      return out;
    }
    if (args[i].kind != Value::Kind::List) {
      fail(i,
           arg(i) + " must be a list of integers, got " + args[i].describe());
      return std::nullopt;
    }
    for (const Value &e : args[i].elems) {
      if (e.kind != Value::Kind::Int) {
        fail(i,
             arg(i) + " must be a list of integers, but holds " + e.describe());
        return std::nullopt;
      }
      out.push_back(e.dim);
    }
    return out;
  }
  /// Normalizes a possibly negative axis against `rank`.
  std::optional<int64_t> axis(size_t i, int64_t rank) {
    std::optional<int64_t> a = integer(i);
    if (!a)
      return std::nullopt;
    if (*a < -rank || *a >= rank) {
      fail(i, arg(i) + " is " + llvm::Twine(*a) + ", out of range for rank " +
                  llvm::Twine(rank));
      return std::nullopt;
    }
    return *a < 0 ? *a + rank : *a;
  }

  /// Wraps the op's result, cross-checking its inferred type with ours.
  Value result(mlir::Value value, TensorType type) {
    mlir::RankedTensorType expected = gen().tensorType(type);
    if (value.getType() != expected) {
      std::string have;
      llvm::raw_string_ostream os(have);
      os << value.getType();
      os.flush();
      std::string want;
      llvm::raw_string_ostream os2(want);
      os2 << expected;
      os2.flush();
      return fail("internal error: loom op inferred " + have +
                  " but the frontend computed " + want + " for '" + name + "'");
    }
    return Value::tensor(std::move(type), value);
  }
};

} // namespace loom::frontend

namespace {

struct ParamSpec {
  const char *name;
  /// Filled in when the caller leaves the parameter out; Error = required.
  Value defaultValue;
};

using Rule = std::function<Value(PrimitiveCall &)>;

struct Primitive {
  std::vector<ParamSpec> params;
  Rule rule;
  /// All positional arguments go into the first parameter (a list).
  bool variadic = false;
};

/// A number as written in source: 1.5, not 1.500000.
std::string formatNumber(double v) {
  std::string s;
  llvm::raw_string_ostream(s) << llvm::format("%g", v);
  return s;
}

Value req() { return Value::error(); }
Value opt() { return Value::none(); }
Value intV(int64_t v) { return Value::integer(Dim(v)); }
Value floatV(double v) { return Value::floating(v); }
Value boolV(bool v) { return Value::boolean(v); }

/// NumPy broadcasting of symbolic shapes.
std::optional<llvm::SmallVector<Dim>> broadcast(llvm::ArrayRef<Dim> a,
                                                llvm::ArrayRef<Dim> b) {
  size_t rank = std::max(a.size(), b.size());
  llvm::SmallVector<Dim> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    Dim x = i < a.size() ? a[a.size() - 1 - i] : Dim(1);
    Dim y = i < b.size() ? b[b.size() - 1 - i] : Dim(1);
    if (x == y || y == Dim(1))
      out[rank - 1 - i] = x;
    else if (x == Dim(1))
      out[rank - 1 - i] = y;
    else
      return std::nullopt;
  }
  return out;
}

std::optional<Dim> product(llvm::ArrayRef<Dim> dims) {
  Dim p(1);
  for (const Dim &d : dims) {
    std::optional<Dim> next = Dim::mul(p, d);
    if (!next)
      return std::nullopt;
    p = *next;
  }
  return p;
}

template <typename OpTy> Rule unaryFloat() {
  return [](PrimitiveCall &c) -> Value {
    std::optional<TensorType> x = c.floatTensor(0);
    if (!x)
      return Value::error();
    return c.result(OpTy::create(c.b(), c.loc, c.ir(0)), *x);
  };
}

template <typename OpTy> Rule reduction(bool needsFloat) {
  return [needsFloat](PrimitiveCall &c) -> Value {
    std::optional<TensorType> x = needsFloat ? c.floatTensor(0) : c.tensor(0);
    std::optional<bool> keep = c.flag(2);
    if (!x || !keep)
      return Value::error();
    llvm::SmallVector<int64_t> axes;
    if (!c.has(1)) {
      for (int64_t i = 0; i < x->rank(); ++i)
        axes.push_back(i);
    } else {
      std::optional<llvm::SmallVector<Dim>> list = c.dims(1);
      if (!list)
        return Value::error();
      for (const Dim &d : *list) {
        std::optional<int64_t> a = d.getConstant();
        if (!a || *a < -x->rank() || *a >= x->rank())
          return c.fail(1, c.arg(1) + " holds " + d.str() +
                               ", out of range for rank " +
                               llvm::Twine(x->rank()));
        axes.push_back(*a < 0 ? *a + x->rank() : *a);
      }
      llvm::sort(axes);
      if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
        return c.fail(1, c.arg(1) + " names an axis twice");
    }
    if (axes.empty())
      return c.fail(0, "cannot reduce a rank-0 tensor");
    TensorType out;
    out.dtype = x->dtype;
    for (int64_t i = 0; i < x->rank(); ++i) {
      if (!llvm::is_contained(axes, i))
        out.dims.push_back(x->dims[i]);
      else if (*keep)
        out.dims.push_back(Dim(1));
    }
    return c.result(OpTy::create(c.b(), c.loc, c.ir(0),
                                 c.b().getDenseI64ArrayAttr(axes),
                                 c.b().getBoolAttr(*keep)),
                    out);
  };
}

Value transposeWith(PrimitiveCall &c, const TensorType &x,
                    llvm::ArrayRef<int64_t> perm) {
  TensorType out;
  out.dtype = x.dtype;
  for (int64_t p : perm)
    out.dims.push_back(x.dims[p]);
  return c.result(loom::TransposeOp::create(c.b(), c.loc, c.ir(0),
                                            c.b().getDenseI64ArrayAttr(perm)),
                  out);
}

/// A tensor filled with `value`: a dense constant when the shape is static,
/// a `loom.fill` with named dims otherwise.
Value filled(PrimitiveCall &c, double value, DType dtype,
             llvm::ArrayRef<Dim> dims, size_t shapeArg) {
  TensorType out;
  out.dtype = dtype;
  bool isStatic = true;
  for (const Dim &d : dims) {
    std::optional<int64_t> s = d.getConstant();
    if (s && *s < 0)
      return c.fail(shapeArg, "negative dim " + llvm::Twine(*s));
    isStatic &= s.has_value();
    out.dims.push_back(d);
  }
  mlir::RankedTensorType type = c.gen().tensorType(out);
  if (!isStatic) {
    auto op = loom::FillOp::create(c.b(), c.loc, type, value);
    c.gen().nameDims(op, out.dims);
    return c.result(op, out);
  }
  mlir::Attribute element =
      isFloat(dtype)
          ? mlir::Attribute(c.b().getFloatAttr(type.getElementType(), value))
          : mlir::Attribute(
                c.b().getIntegerAttr(type.getElementType(), int64_t(value)));
  auto attr = mlir::DenseElementsAttr::get(type, element);
  return c.result(loom::ConstantOp::create(c.b(), c.loc, type, attr), out);
}

const llvm::StringMap<Primitive> &primitives() {
  static const llvm::StringMap<Primitive> table = [] {
    llvm::StringMap<Primitive> t;
    t["exp"] = {{{"x", req()}}, unaryFloat<loom::ExpOp>()};
    t["log"] = {{{"x", req()}}, unaryFloat<loom::LogOp>()};
    t["tanh"] = {{{"x", req()}}, unaryFloat<loom::TanhOp>()};
    t["sigmoid"] = {{{"x", req()}}, unaryFloat<loom::SigmoidOp>()};
    t["relu"] = {{{"x", req()}}, unaryFloat<loom::ReluOp>()};
    t["sqrt"] = {{{"x", req()}}, unaryFloat<loom::SqrtOp>()};
    t["rsqrt"] = {{{"x", req()}}, unaryFloat<loom::RsqrtOp>()};
    t["neg"] = {{{"x", req()}}, unaryFloat<loom::NegOp>()};

    // error(message): stops the compilation with `message` at the call; a
    // library block's check of its configuration (only a branch taken for
    // the configuration at hand is elaborated).
    t["error"] = {{{"message", req()}}, [](PrimitiveCall &c) -> Value {
                    if (c.args[0].kind != Value::Kind::String)
                      return c.fail(0, "expected a string message for "
                                       "'error'");
                    return c.fail(c.args[0].text);
                  }};

    // gelu(x, approximate = true): tanh form; false: erf form.
    t["gelu"] = {{{"x", req()}, {"approximate", boolV(true)}},
                 [](PrimitiveCall &c) -> Value {
                   std::optional<TensorType> x = c.floatTensor(0);
                   std::optional<bool> approx = c.flag(1);
                   if (!x || !approx)
                     return Value::error();
                   return c.result(
                       loom::GeluOp::create(c.b(), c.loc, c.ir(0),
                                            c.b().getBoolAttr(*approx)),
                       *x);
                 }};

    // pow(x, p): x ** p for a compile-time p.
    t["pow"] = {{{"x", req()}, {"p", req()}}, [](PrimitiveCall &c) -> Value {
                  std::optional<TensorType> x = c.floatTensor(0);
                  std::optional<double> p = c.number(1);
                  if (!x || !p)
                    return Value::error();
                  return c.result(
                      loom::PowOp::create(c.b(), c.loc, c.ir(0),
                                          c.b().getF64FloatAttr(*p)),
                      *x);
                }};

    // softmax(x, axis = -1)
    t["softmax"] = {
        {{"x", req()}, {"axis", intV(-1)}}, [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> x = c.floatTensor(0);
          if (!x)
            return Value::error();
          std::optional<int64_t> axis = c.axis(1, x->rank());
          if (!axis)
            return Value::error();
          return c.result(
              loom::SoftmaxOp::create(c.b(), c.loc, c.ir(0),
                                      c.b().getI64IntegerAttr(*axis)),
              *x);
        }};

    // matmul(a, b): [..., M, K] @ [..., K, N] -> [..., M, N]
    t["matmul"] = {
        {{"a", req()}, {"b", req()}}, [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> a = c.floatTensor(0);
          std::optional<TensorType> b = c.floatTensor(1);
          if (!a || !b)
            return Value::error();
          if (a->rank() < 2 || b->rank() < 2)
            return c.fail("matmul needs operands of rank >= 2, got " +
                          a->str() + " and " + b->str());
          if (a->dtype != b->dtype)
            return c.fail("matmul operands differ in element type: " +
                          a->str() + " and " + b->str());
          const Dim &k1 = a->dims.back();
          const Dim &k2 = b->dims[b->rank() - 2];
          if (k1 != k2)
            return c.fail("matmul contraction dims differ: " + a->str() +
                          " has K = " + k1.str() + " but " + b->str() +
                          " has K = " + k2.str());
          auto batch = broadcast(llvm::ArrayRef<Dim>(a->dims).drop_back(2),
                                 llvm::ArrayRef<Dim>(b->dims).drop_back(2));
          if (!batch)
            return c.fail("matmul batch dims of " + a->str() + " and " +
                          b->str() + " do not broadcast");
          TensorType out;
          out.dtype = a->dtype;
          out.dims = *batch;
          out.dims.push_back(a->dims[a->rank() - 2]);
          out.dims.push_back(b->dims.back());
          return c.result(
              loom::MatmulOp::create(c.b(), c.loc, c.ir(0), c.ir(1)), out);
        }};

    // x.T: swaps the last two dims.
    t["swap_last"] = {{{"x", req()}}, [](PrimitiveCall &c) -> Value {
                        std::optional<TensorType> x = c.tensor(0);
                        if (!x)
                          return Value::error();
                        if (x->rank() < 2)
                          return c.fail("'.T' needs a tensor of rank >= 2, "
                                        "got " +
                                        x->str());
                        llvm::SmallVector<int64_t> perm;
                        for (int64_t i = 0; i < x->rank(); ++i)
                          perm.push_back(i);
                        std::swap(perm[x->rank() - 1], perm[x->rank() - 2]);
                        return transposeWith(c, *x, perm);
                      }};

    // transpose(x, perm) / permute(x, perm)
    Rule permute = [](PrimitiveCall &c) -> Value {
      std::optional<TensorType> x = c.tensor(0);
      std::optional<llvm::SmallVector<Dim>> list = c.dims(1);
      if (!x || !list)
        return Value::error();
      if (int64_t(list->size()) != x->rank())
        return c.fail(1, c.arg(1) + " has " + llvm::Twine(list->size()) +
                             " entries for a tensor of rank " +
                             llvm::Twine(x->rank()));
      llvm::SmallVector<int64_t> perm;
      llvm::SmallVector<bool> seen(x->rank(), false);
      for (const Dim &d : *list) {
        std::optional<int64_t> p = d.getConstant();
        if (p && *p < 0)
          *p += x->rank();
        if (!p || *p < 0 || *p >= x->rank() || seen[*p])
          return c.fail(1, c.arg(1) + " is not a permutation of the " +
                               llvm::Twine(x->rank()) + " dims");
        seen[*p] = true;
        perm.push_back(*p);
      }
      return transposeWith(c, *x, perm);
    };
    t["transpose"] = {{{"x", req()}, {"perm", req()}}, permute};
    t["permute"] = {{{"x", req()}, {"perm", req()}}, permute};

    // layer_norm(x, gamma, beta, eps = 1e-5): over the last dim.
    t["layer_norm"] = {
        {{"x", req()},
         {"gamma", req()},
         {"beta", req()},
         {"eps", floatV(1e-5)}},
        [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> x = c.floatTensor(0);
          std::optional<TensorType> g = c.floatTensor(1);
          std::optional<TensorType> b = c.floatTensor(2);
          std::optional<double> eps = c.number(3);
          if (!x || !g || !b || !eps)
            return Value::error();
          if (x->rank() < 1)
            return c.fail(0, "layer_norm needs a tensor of rank >= 1");
          for (size_t i : {1, 2}) {
            const TensorType &p = i == 1 ? *g : *b;
            if (p.rank() != 1 || p.dims[0] != x->dims.back() ||
                p.dtype != x->dtype)
              return c.fail(i, c.arg(i) + " must be " + spell(x->dtype) + "[" +
                                   x->dims.back().str() + "] to match " +
                                   x->str() + ", got " + p.str());
          }
          if (!(*eps > 0))
            return c.fail(3, "layer_norm needs eps > 0");
          return c.result(
              loom::LayerNormOp::create(c.b(), c.loc, c.ir(0), c.ir(1), c.ir(2),
                                        c.b().getF64FloatAttr(*eps)),
              *x);
        }};

    // sum / mean / max (x, axis = all, keepdim = false)
    t["sum"] = {{{"x", req()}, {"axis", opt()}, {"keepdim", boolV(false)}},
                reduction<loom::ReduceSumOp>(false)};
    t["mean"] = {{{"x", req()}, {"axis", opt()}, {"keepdim", boolV(false)}},
                 reduction<loom::ReduceMeanOp>(true)};
    t["max"] = {{{"x", req()}, {"axis", opt()}, {"keepdim", boolV(false)}},
                reduction<loom::ReduceMaxOp>(false)};

    // reshape(x, [d0, d1, ...]); one entry may be -1 (inferred).
    t["reshape"] = {
        {{"x", req()}, {"shape", req()}}, [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> x = c.tensor(0);
          std::optional<llvm::SmallVector<Dim>> shape = c.dims(1);
          if (!x || !shape)
            return Value::error();
          std::optional<Dim> total = product(x->dims);
          int inferred = -1;
          llvm::SmallVector<Dim> known;
          for (size_t i = 0; i < shape->size(); ++i) {
            if ((*shape)[i] == Dim(-1)) {
              if (inferred >= 0)
                return c.fail(1, "reshape allows one -1 entry, got several");
              inferred = i;
              continue;
            }
            std::optional<int64_t> s = (*shape)[i].getConstant();
            if (s && *s < 0)
              return c.fail(1, "reshape dims must be >= 0, got " +
                                   llvm::Twine(*s));
            known.push_back((*shape)[i]);
          }
          std::optional<Dim> knownProduct = product(known);
          if (!total || !knownProduct)
            return c.fail("reshape: element count overflows");
          if (inferred >= 0) {
            std::optional<Dim> rest = Dim::div(*total, *knownProduct);
            if (!rest && knownProduct->getConstant() && total->getConstant() &&
                *knownProduct->getConstant() != 0 &&
                *total->getConstant() % *knownProduct->getConstant() == 0)
              rest = Dim(*total->getConstant() / *knownProduct->getConstant());
            // Exact symbolic quotient, e.g. (B*T*d) / d = B*T.
            if (!rest)
              return c.fail(
                  1, "cannot infer the -1 entry of reshape: " + x->shapeStr() +
                         " does not divide by " + knownProduct->str());
            (*shape)[inferred] = *rest;
          } else if (*total != *knownProduct) {
            return c.fail(
                1, "reshape changes the element count: " + x->shapeStr() +
                       " has " + total->str() + " elements, " +
                       shapeStr(*shape) + " has " + knownProduct->str());
          }
          TensorType out;
          out.dtype = x->dtype;
          out.dims.assign(shape->begin(), shape->end());
          auto op = loom::ReshapeOp::create(
              c.b(), c.loc, c.ir(0),
              c.b().getDenseI64ArrayAttr(c.gen().staticSizes(out.dims)));
          c.gen().nameDims(op, out.dims);
          return c.result(op, out);
        }};

    // split_heads(x, heads): [B, T, H*Dh] -> [B, H, T, Dh]
    t["split_heads"] = {
        {{"x", req()}, {"heads", req()}}, [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> x = c.tensor(0);
          std::optional<int64_t> heads = c.integer(1);
          if (!x || !heads)
            return Value::error();
          if (x->rank() != 3)
            return c.fail(0, "split_heads needs [B, T, D], got " + x->str());
          if (*heads <= 0)
            return c.fail(1,
                          "heads must be positive, got " + llvm::Twine(*heads));
          std::optional<Dim> dh = Dim::div(x->dims[2], Dim(*heads));
          if (!dh)
            return c.fail(1, "model dim " + x->dims[2].str() +
                                 " does not split into " + llvm::Twine(*heads) +
                                 " heads");
          TensorType out;
          out.dtype = x->dtype;
          out.dims = {x->dims[0], Dim(*heads), x->dims[1], *dh};
          return c.result(
              loom::SplitHeadsOp::create(c.b(), c.loc, c.ir(0),
                                         c.b().getI64IntegerAttr(*heads)),
              out);
        }};

    // merge_heads(x): [B, H, T, Dh] -> [B, T, H*Dh]
    t["merge_heads"] = {
        {{"x", req()}}, [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> x = c.tensor(0);
          if (!x)
            return Value::error();
          if (x->rank() != 4)
            return c.fail(0,
                          "merge_heads needs [B, H, T, Dh], got " + x->str());
          std::optional<Dim> d = Dim::mul(x->dims[1], x->dims[3]);
          if (!d)
            return c.fail("merge_heads: dim overflow");
          TensorType out;
          out.dtype = x->dtype;
          out.dims = {x->dims[0], x->dims[2], *d};
          return c.result(loom::MergeHeadsOp::create(c.b(), c.loc, c.ir(0)),
                          out);
        }};

    // concat(a, b, ..., axis = -1)
    t["concat"] = {
        {{"xs", req()}, {"axis", intV(-1)}},
        [](PrimitiveCall &c) -> Value {
          std::vector<TensorType> types;
          llvm::SmallVector<mlir::Value> values;
          for (Value &v : c.args[0].elems) {
            Value t = c.sema.asTensor(v, c.site, "argument of 'concat'");
            if (t.isError())
              return t;
            types.push_back(t.type);
            values.push_back(t.ir);
          }
          if (types.empty())
            return c.fail("concat needs at least one tensor");
          std::optional<int64_t> axis = c.axis(1, types[0].rank());
          if (!axis)
            return Value::error();
          TensorType out = types[0];
          for (size_t i = 1; i < types.size(); ++i) {
            const TensorType &t = types[i];
            if (t.rank() != out.rank() || t.dtype != out.dtype)
              return c.fail("concat operands differ in rank or element "
                            "type: " +
                            types[0].str() + " and " + t.str());
            for (int64_t d = 0; d < t.rank(); ++d) {
              if (d == *axis)
                continue;
              if (t.dims[d] != types[0].dims[d])
                return c.fail("concat operands differ in dim " +
                              llvm::Twine(d) + ": " + types[0].str() + " and " +
                              t.str());
            }
            std::optional<Dim> sum = Dim::add(out.dims[*axis], t.dims[*axis]);
            if (!sum)
              return c.fail("concat: dim overflow");
            out.dims[*axis] = *sum;
          }
          return c.result(
              loom::ConcatOp::create(c.b(), c.loc, values,
                                     c.b().getI64IntegerAttr(*axis)),
              out);
        },
        /*variadic=*/true};

    // slice(x, axis, start, end): Python semantics on one axis.
    t["slice"] = {
        {{"x", req()}, {"axis", req()}, {"start", req()}, {"end", req()}},
        [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> x = c.tensor(0);
          if (!x)
            return Value::error();
          std::optional<int64_t> axis = c.axis(1, x->rank());
          std::optional<int64_t> start = c.integer(2);
          std::optional<int64_t> end = c.integer(3);
          if (!axis || !start || !end)
            return Value::error();
          const Dim &size = x->dims[*axis];
          auto normalize = [&](int64_t v) -> std::optional<Dim> {
            return v < 0 ? Dim::add(size, Dim(v)) : std::optional<Dim>(Dim(v));
          };
          std::optional<Dim> s = normalize(*start), e = normalize(*end);
          std::optional<Dim> len = s && e ? Dim::sub(*e, *s) : std::nullopt;
          if (!len)
            return c.fail("slice bounds overflow");
          if (auto n = size.getConstant()) {
            int64_t a = *s->getConstant(), z = *e->getConstant();
            if (a < 0 || a > z || z > *n)
              return c.fail("slice [" + llvm::Twine(*start) + ", " +
                            llvm::Twine(*end) + ") is out of range for dim " +
                            llvm::Twine(*axis) + " of " + x->str());
          } else if (auto l = len->getConstant(); l && *l < 0) {
            return c.fail("slice [" + llvm::Twine(*start) + ", " +
                          llvm::Twine(*end) + ") is empty or reversed");
          }
          TensorType out = *x;
          out.dims[*axis] = *len;
          return c.result(loom::SliceOp::create(c.b(), c.loc, c.ir(0),
                                                c.b().getI64IntegerAttr(*axis),
                                                c.b().getI64IntegerAttr(*start),
                                                c.b().getI64IntegerAttr(*end)),
                          out);
        }};

    // embedding(table, ids): [V, D] gathered by i32 ids -> ids.shape + [D]
    t["embedding"] = {
        {{"table", req()}, {"ids", req()}}, [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> table = c.floatTensor(0);
          std::optional<TensorType> ids = c.tensor(1);
          if (!table || !ids)
            return Value::error();
          if (table->rank() != 2)
            return c.fail(0, "embedding table must be [V, D], got " +
                                 table->str());
          if (ids->dtype != DType::I32)
            return c.fail(1, "embedding ids must be i32, got " + ids->str());
          // Positions arange(n) into a table of fewer rows (T bound beyond
          // a model's ctx): known wrong before anything runs.
          if (auto positions = c.ir(1).getDefiningOp<loom::ArangeOp>()) {
            std::optional<int64_t> rows = table->dims[0].getConstant();
            std::optional<int64_t> n = ids->dims[0].getConstant();
            if (rows && n && *n > *rows)
              return c.fail(1, "positions arange(" + llvm::Twine(*n) +
                                   ") index an embedding table of " +
                                   llvm::Twine(*rows) + " rows: positions " +
                                   llvm::Twine(*rows) + " to " +
                                   llvm::Twine(*n - 1) +
                                   " have no row; bind the length to at "
                                   "most " +
                                   llvm::Twine(*rows));
          }
          TensorType out = *ids;
          out.dtype = table->dtype;
          out.dims.push_back(table->dims[1]);
          return c.result(
              loom::EmbeddingOp::create(c.b(), c.loc, c.ir(0), c.ir(1)), out);
        }};

    // attention(q, k, v, causal = false, mask = none, scale = 1/sqrt(D))
    t["attention"] = {
        {{"q", req()},
         {"k", req()},
         {"v", req()},
         {"causal", boolV(false)},
         {"mask", opt()},
         {"scale", opt()}},
        [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> q = c.floatTensor(0);
          std::optional<TensorType> k = c.floatTensor(1);
          std::optional<TensorType> v = c.floatTensor(2);
          std::optional<bool> causal = c.flag(3);
          if (!q || !k || !v || !causal)
            return Value::error();
          if (q->rank() < 3)
            return c.fail(0, "attention needs q of rank >= 3 ([..., Tq, D]), "
                             "got " +
                                 q->str());
          if (k->rank() != q->rank() || v->rank() != q->rank())
            return c.fail("attention operands differ in rank: q " + q->str() +
                          ", k " + k->str() + ", v " + v->str());
          if (k->dtype != q->dtype || v->dtype != q->dtype)
            return c.fail("attention operands differ in element type");
          int64_t r = q->rank();
          for (int64_t i = 0; i < r - 2; ++i)
            if (k->dims[i] != q->dims[i] || v->dims[i] != q->dims[i])
              return c.fail("attention batch dim " + llvm::Twine(i) +
                            " differs: q " + q->str() + ", k " + k->str() +
                            ", v " + v->str());
          if (k->dims[r - 1] != q->dims[r - 1])
            return c.fail(1, "key dim " + k->dims[r - 1].str() +
                                 " does not match query dim " +
                                 q->dims[r - 1].str());
          if (v->dims[r - 2] != k->dims[r - 2])
            return c.fail(2, "value length " + v->dims[r - 2].str() +
                                 " does not match key length " +
                                 k->dims[r - 2].str());
          mlir::Value mask;
          if (c.has(4)) {
            std::optional<TensorType> m = c.tensor(4);
            if (!m)
              return Value::error();
            if (m->dtype != DType::Bool || m->rank() != 2 ||
                m->dims[0] != q->dims[0] || m->dims[1] != k->dims[r - 2])
              return c.fail(4, "key-padding mask must be bool[" +
                                   q->dims[0].str() + ", " +
                                   k->dims[r - 2].str() + "], got " + m->str());
            mask = c.ir(4);
          }
          double scale;
          if (c.has(5)) {
            std::optional<double> s = c.number(5);
            if (!s)
              return Value::error();
            scale = *s;
          } else {
            std::optional<int64_t> d = q->dims.back().getConstant();
            if (!d || *d <= 0)
              return c.fail("attention needs an explicit 'scale' when the "
                            "head dim " +
                            q->dims.back().str() + " is symbolic");
            scale = 1.0 / std::sqrt(double(*d));
          }
          TensorType out = *q;
          out.dims.back() = v->dims.back();
          return c.result(
              loom::AttentionOp::create(c.b(), c.loc, c.ir(0), c.ir(1), c.ir(2),
                                        mask, c.b().getBoolAttr(*causal),
                                        c.b().getF64FloatAttr(scale)),
              out);
        }};

    // cross_entropy(logits, targets, ignore_index = -100): mean over kept.
    t["cross_entropy"] = {
        {{"logits", req()}, {"targets", req()}, {"ignore_index", intV(-100)}},
        [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> logits = c.floatTensor(0);
          std::optional<TensorType> targets = c.tensor(1);
          std::optional<int64_t> ignore = c.integer(2);
          if (!logits || !targets || !ignore)
            return Value::error();
          if (targets->dtype != DType::I32)
            return c.fail(1, "cross_entropy targets must be i32, got " +
                                 targets->str());
          if (logits->rank() < 1 ||
              llvm::ArrayRef<Dim>(logits->dims).drop_back() !=
                  llvm::ArrayRef<Dim>(targets->dims))
            return c.fail("cross_entropy targets " + targets->str() +
                          " must have the shape of the logits " +
                          logits->str() + " without the class dim");
          TensorType out;
          out.dtype = logits->dtype;
          return c.result(
              loom::CrossEntropyOp::create(c.b(), c.loc, c.ir(0), c.ir(1),
                                           /*lse=*/mlir::Value(),
                                           c.b().getI64IntegerAttr(*ignore)),
              out);
        }};

    // dropout(x, rate): the seed is a function argument added on first use.
    t["dropout"] = {
        {{"x", req()}, {"rate", req()}}, [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> x = c.floatTensor(0);
          std::optional<double> rate = c.number(1);
          if (!x || !rate)
            return Value::error();
          if (!(*rate >= 0 && *rate < 1))
            return c.fail(1, "dropout rate must be in [0, 1), got " +
                                 formatNumber(*rate));
          if (*rate == 0 || !c.sema.isTraining())
            return c.args[0];
          int64_t site = c.sema.nextDropoutSite();
          return c.result(loom::DropoutOp::create(
                              c.b(), c.loc, c.ir(0), c.gen().dropoutSeed(),
                              c.b().getF64FloatAttr(*rate),
                              c.b().getI64IntegerAttr(site)),
                          *x);
        }};

    // arange(n): i32[n] holding 0 .. n-1.
    t["arange"] = {
        {{"n", req()}}, [](PrimitiveCall &c) -> Value {
          std::optional<Dim> n = c.dim(0);
          if (!n)
            return Value::error();
          if (auto s = n->getConstant(); s && *s < 0)
            return c.fail(0, "arange needs n >= 0, got " + llvm::Twine(*s));
          TensorType out;
          out.dtype = DType::I32;
          out.dims = {*n};
          auto op = loom::ArangeOp::create(
              c.b(), c.loc, c.gen().tensorType(out),
              c.b().getI64IntegerAttr(c.gen().staticSizes(out.dims)[0]));
          c.gen().nameDims(op, out.dims);
          return c.result(op, out);
        }};

    // sinusoidal(positions, dim): f32[..., dim] sin/cos encodings.
    t["sinusoidal"] = {
        {{"positions", req()}, {"dim", req()}}, [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> pos = c.tensor(0);
          std::optional<int64_t> dim = c.integer(1);
          if (!pos || !dim)
            return Value::error();
          if (pos->dtype != DType::I32)
            return c.fail(0, "sinusoidal positions must be i32, got " +
                                 pos->str());
          if (*dim <= 0 || *dim % 2)
            return c.fail(1, "sinusoidal dim must be even and positive, "
                             "got " +
                                 llvm::Twine(*dim));
          TensorType out = *pos;
          out.dtype = DType::F32;
          out.dims.push_back(Dim(*dim));
          return c.result(
              loom::SinusoidalOp::create(c.b(), c.loc, c.ir(0),
                                         c.b().getI64IntegerAttr(*dim)),
              out);
        }};

    // where(cond, a, b) and masked_fill(x, mask, value)
    auto select = [](PrimitiveCall &c, size_t ci, size_t ai,
                     size_t bi) -> Value {
      std::optional<TensorType> cond = c.tensor(ci);
      if (!cond)
        return Value::error();
      // A number takes the dtype of the tensor on the other side.
      const Value &av = c.args[ai], &bv = c.args[bi];
      std::optional<TensorType> a, b;
      if (av.kind == Value::Kind::Tensor) {
        a = c.tensor(ai);
        b = a ? c.tensor(bi, &*a) : std::nullopt;
      } else if (bv.kind == Value::Kind::Tensor) {
        b = c.tensor(bi);
        a = b ? c.tensor(ai, &*b) : std::nullopt;
      } else {
        a = c.tensor(ai);
        b = c.tensor(bi);
      }
      if (!a || !b)
        return Value::error();
      if (cond->dtype != DType::Bool)
        return c.fail(ci,
                      c.arg(ci) + " must be a bool tensor, got " + cond->str());
      if (a->dtype != b->dtype)
        return c.fail("'" + c.name.str() + "' values differ in element type: " +
                      a->str() + " and " + b->str());
      auto ab = broadcast(a->dims, b->dims);
      auto all = ab ? broadcast(cond->dims, *ab) : std::nullopt;
      if (!all)
        return c.fail("shapes " + cond->shapeStr() + ", " + a->shapeStr() +
                      " and " + b->shapeStr() + " do not broadcast");
      TensorType out;
      out.dtype = a->dtype;
      out.dims = *all;
      return c.result(
          loom::WhereOp::create(c.b(), c.loc, c.ir(ci), c.ir(ai), c.ir(bi)),
          out);
    };
    t["where"] = {{{"cond", req()}, {"a", req()}, {"b", req()}},
                  [select](PrimitiveCall &c) { return select(c, 0, 1, 2); }};
    t["masked_fill"] = {
        {{"x", req()}, {"mask", req()}, {"value", req()}},
        [select](PrimitiveCall &c) { return select(c, 1, 2, 0); }};

    // cast(x, dtype)
    t["cast"] = {{{"x", req()}, {"dtype", req()}},
                 [](PrimitiveCall &c) -> Value {
                   std::optional<TensorType> x = c.tensor(0);
                   if (!x)
                     return Value::error();
                   if (c.args[1].kind != Value::Kind::DType)
                     return c.fail(1, c.arg(1) +
                                          " must be a type such as "
                                          "bf16, got " +
                                          c.args[1].describe());
                   TensorType out = *x;
                   out.dtype = c.args[1].dtype;
                   return c.result(
                       loom::CastOp::create(
                           c.b(), c.loc, c.ir(0),
                           mlir::TypeAttr::get(c.gen().elementType(out.dtype))),
                       out);
                 }};

    // lstm(x, h0, c0, w_ih, w_hh, b) -> (outputs, h_n, c_n)
    t["lstm"] = {
        {{"x", req()},
         {"h0", req()},
         {"c0", req()},
         {"w_ih", req()},
         {"w_hh", req()},
         {"b", req()}},
        [](PrimitiveCall &c) -> Value {
          std::optional<TensorType> x = c.floatTensor(0), h0 = c.floatTensor(1),
                                    c0 = c.floatTensor(2),
                                    wih = c.floatTensor(3),
                                    whh = c.floatTensor(4),
                                    b = c.floatTensor(5);
          if (!x || !h0 || !c0 || !wih || !whh || !b)
            return Value::error();
          if (x->rank() != 3)
            return c.fail(0, "lstm input must be [B, T, I], got " + x->str());
          if (h0->rank() != 2)
            return c.fail(1, "lstm h0 must be [B, H], got " + h0->str());
          Dim batch = x->dims[0], in = x->dims[2], hidden = h0->dims[1];
          std::optional<Dim> gates = Dim::mul(hidden, Dim(4));
          auto want = [&](size_t i, const TensorType &t,
                          llvm::ArrayRef<Dim> dims) -> bool {
            if (t.dims == llvm::SmallVector<Dim>(dims.begin(), dims.end()) &&
                t.dtype == x->dtype)
              return true;
            c.fail(i, "lstm " + std::string(c.names[i]) + " must be " +
                          spell(x->dtype).str() + shapeStr(dims) + ", got " +
                          t.str());
            return false;
          };
          if (!gates || !want(1, *h0, {batch, hidden}) ||
              !want(2, *c0, {batch, hidden}) || !want(3, *wih, {in, *gates}) ||
              !want(4, *whh, {hidden, *gates}) || !want(5, *b, {*gates}))
            return Value::error();
          auto op = loom::LstmOp::create(c.b(), c.loc, c.ir(0), c.ir(1),
                                         c.ir(2), c.ir(3), c.ir(4), c.ir(5));
          TensorType outs = *x;
          outs.dims[2] = hidden;
          Value tuple = Value::make(Value::Kind::Tuple);
          tuple.elems.push_back(c.result(op->getResult(0), outs));
          tuple.elems.push_back(c.result(op->getResult(1), *h0));
          tuple.elems.push_back(c.result(op->getResult(2), *c0));
          for (const Value &e : tuple.elems)
            if (e.isError())
              return e;
          return tuple;
        }};

    // zeros(shape, dtype = f32), ones(...), full(shape, value, dtype = f32)
    auto fill = [](double v) {
      return [v](PrimitiveCall &c) -> Value {
        std::optional<llvm::SmallVector<Dim>> shape = c.dims(0);
        if (!shape)
          return Value::error();
        if (c.args[1].kind != Value::Kind::DType)
          return c.fail(1, c.arg(1) + " must be a type, got " +
                               c.args[1].describe());
        return filled(c, v, c.args[1].dtype, *shape, 0);
      };
    };
    Value f32 = Value::make(Value::Kind::DType);
    f32.dtype = DType::F32;
    t["zeros"] = {{{"shape", req()}, {"dtype", f32}}, fill(0.0)};
    t["ones"] = {{{"shape", req()}, {"dtype", f32}}, fill(1.0)};
    t["full"] = {{{"shape", req()}, {"value", req()}, {"dtype", f32}},
                 [](PrimitiveCall &c) -> Value {
                   std::optional<llvm::SmallVector<Dim>> shape = c.dims(0);
                   std::optional<double> v = c.number(1);
                   if (!shape || !v)
                     return Value::error();
                   if (c.args[2].kind != Value::Kind::DType)
                     return c.fail(2, c.arg(2) + " must be a type, got " +
                                          c.args[2].describe());
                   // An integer fill converts `v`: it must fit the dtype.
                   DType dtype = c.args[2].dtype;
                   double lo = dtype == DType::Bool ? 0 : INT32_MIN;
                   double hi = dtype == DType::Bool ? 1 : INT32_MAX;
                   if (!isFloat(dtype) && !(*v >= lo && *v <= hi))
                     return c.fail(1, c.arg(1) + " is " + formatNumber(*v) +
                                          ", out of range for " +
                                          spell(dtype).str());
                   return filled(c, *v, dtype, *shape, 0);
                 }};

    // dim(x, axis): the size of one dim, as a compile-time integer.
    t["dim"] = {{{"x", req()}, {"axis", req()}}, [](PrimitiveCall &c) -> Value {
                  std::optional<TensorType> x = c.tensor(0);
                  if (!x)
                    return Value::error();
                  std::optional<int64_t> axis = c.axis(1, x->rank());
                  if (!axis)
                    return Value::error();
                  return Value::integer(x->dims[*axis]);
                }};
    return t;
  }();
  return table;
}

} // namespace

std::vector<std::string> loom::frontend::primitiveNames() {
  std::vector<std::string> names;
  for (const auto &entry : primitives())
    if (entry.first() != "swap_last")
      names.push_back(entry.first().str());
  llvm::sort(names);
  return names;
}

bool loom::frontend::isPrimitive(StringRef name) {
  return primitives().count(name) && name != "swap_last";
}

Value Sema::asTensor(const Value &v, SMRange range, StringRef what,
                     const TensorType *like) {
  switch (v.kind) {
  case Value::Kind::Error:
    return v;
  case Value::Kind::Tensor:
    return v;
  case Value::Kind::Int:
  case Value::Kind::Float: {
    if (v.kind == Value::Kind::Int && !v.dim.getConstant()) {
      error(range,
            what + " must be a tensor, got the symbolic dim " + v.dim.str());
      return Value::error();
    }
    DType dtype = like ? like->dtype : DType::F32;
    double x = v.kind == Value::Kind::Float
                   ? v.number
                   : static_cast<double>(*v.dim.getConstant());
    if (dtype == DType::Bool ||
        (!isFloat(dtype) &&
         (v.kind == Value::Kind::Float || std::fabs(x) > 2147483647.0))) {
      error(range, "cannot use " + v.describe() + " as a " +
                       spell(dtype).str() + " tensor");
      return Value::error();
    }
    return scalarTensor(x, dtype, range);
  }
  default:
    error(range, what + " must be a tensor, got " + v.describe());
    return Value::error();
  }
}

Value Sema::scalarTensor(double value, DType dtype, SMRange range) {
  TensorType type;
  type.dtype = dtype;
  return Value::tensor(
      type, gen.scalar(value, dtype, gen.loc(range.Start, currentPath())));
}

Value Sema::callPrimitive(StringRef name, std::vector<ArgValue> args,
                          SMRange site) {
  auto it = primitives().find(name);
  if (it == primitives().end()) {
    error(site, "unknown primitive '" + name + "'");
    return Value::error();
  }
  const Primitive &prim = it->second;
  if (++primitiveCalls > kMaxPrimitiveCalls) {
    if (primitiveCalls == kMaxPrimitiveCalls + 1)
      error(site, "the model expands to more than " +
                      llvm::Twine(kMaxPrimitiveCalls) +
                      " operations; reduce the repeat counts");
    return Value::error();
  }
  for (const ArgValue &a : args)
    if (a.value.isError())
      return Value::error();
  if (!frame || !gen.inFunction()) {
    error(site, "'" + name +
                    "' computes on tensors; call it inside a "
                    "function");
    return Value::error();
  }

  PrimitiveCall call{*this,
                     it->first(),
                     site,
                     std::vector<Value>(prim.params.size(), Value::error()),
                     std::vector<SMRange>(prim.params.size()),
                     {},
                     gen.loc(site.Start, currentPath())};
  for (const ParamSpec &p : prim.params)
    call.names.push_back(p.name);
  std::vector<bool> given(prim.params.size(), false);
  size_t positional = 0;
  if (prim.variadic) {
    call.args[0] = Value::make(Value::Kind::List);
    given[0] = true;
    positional = prim.params.size();
  }
  for (ArgValue &arg : args) {
    size_t index = prim.params.size();
    if (arg.name.empty()) {
      if (prim.variadic) {
        call.args[0].elems.push_back(arg.value);
        continue;
      }
      index = positional++;
      if (index >= prim.params.size()) {
        error(arg.range, "'" + name + "' takes " +
                             llvm::Twine(prim.params.size()) + " argument" +
                             (prim.params.size() == 1 ? "" : "s") + ", got " +
                             llvm::Twine(args.size()));
        return Value::error();
      }
    } else {
      for (size_t i = 0; i < prim.params.size(); ++i)
        if (arg.name == prim.params[i].name)
          index = i;
      if (index == prim.params.size() || (prim.variadic && index == 0)) {
        std::vector<std::string> names;
        for (const ParamSpec &p : prim.params)
          names.push_back(p.name);
        error(arg.range, "'" + name + "' has no argument '" + arg.name +
                             "'; it takes " + llvm::join(names, ", "));
        return Value::error();
      }
    }
    if (given[index]) {
      error(arg.range, "argument '" + std::string(prim.params[index].name) +
                           "' of '" + name + "' is given twice");
      return Value::error();
    }
    given[index] = true;
    call.args[index] = arg.value;
    call.ranges[index] = arg.range;
  }
  for (size_t i = 0; i < prim.params.size(); ++i) {
    if (given[i])
      continue;
    if (prim.params[i].defaultValue.isError()) {
      error(site,
            "'" + name + "' needs its argument '" + prim.params[i].name + "'");
      return Value::error();
    }
    call.args[i] = prim.params[i].defaultValue;
  }
  return prim.rule(call);
}

Value Sema::tensorBinary(BinaryOp op, Value lhs, Value rhs, SMRange range) {
  std::string opText = "'" + spell(op).str() + "'";
  if (op == BinaryOp::And || op == BinaryOp::Or || op == BinaryOp::Mod) {
    error(range, opText + " is not defined on tensors");
    return Value::error();
  }
  if (op == BinaryOp::MatMul)
    return callPrimitive("matmul", {{"", lhs, range}, {"", rhs, range}}, range);
  // A number takes the element type of the tensor on the other side.
  if (lhs.kind != Value::Kind::Tensor)
    lhs = asTensor(lhs, range, "left operand of " + opText, &rhs.type);
  if (rhs.kind != Value::Kind::Tensor)
    rhs = asTensor(rhs, range, "right operand of " + opText, &lhs.type);
  if (lhs.isError() || rhs.isError())
    return Value::error();
  if (lhs.type.dtype != rhs.type.dtype) {
    error(range, "operands of " + opText +
                     " differ in element type: " + lhs.type.str() + " and " +
                     rhs.type.str() + "; convert one with cast()");
    return Value::error();
  }
  auto dims = broadcast(lhs.type.dims, rhs.type.dims);
  if (!dims) {
    error(range, "shapes " + lhs.type.shapeStr() + " and " +
                     rhs.type.shapeStr() + " do not broadcast for " + opText);
    return Value::error();
  }
  bool arithmetic = op == BinaryOp::Add || op == BinaryOp::Sub ||
                    op == BinaryOp::Mul || op == BinaryOp::Div;
  if (arithmetic && lhs.type.dtype == DType::Bool) {
    error(range, opText + " is not defined on bool tensors");
    return Value::error();
  }
  TensorType out;
  out.dtype = arithmetic ? lhs.type.dtype : DType::Bool;
  out.dims = *dims;
  mlir::Location loc = gen.loc(range.Start, currentPath());
  mlir::OpBuilder &b = gen.builder();
  mlir::Value result;
  switch (op) {
  case BinaryOp::Add:
    result = loom::AddOp::create(b, loc, lhs.ir, rhs.ir);
    break;
  case BinaryOp::Sub:
    result = loom::SubOp::create(b, loc, lhs.ir, rhs.ir);
    break;
  case BinaryOp::Mul:
    result = loom::MulOp::create(b, loc, lhs.ir, rhs.ir);
    break;
  case BinaryOp::Div:
    result = loom::DivOp::create(b, loc, lhs.ir, rhs.ir);
    break;
  default: {
    const char *pred = op == BinaryOp::Eq   ? "eq"
                       : op == BinaryOp::Ne ? "ne"
                       : op == BinaryOp::Lt ? "lt"
                       : op == BinaryOp::Le ? "le"
                       : op == BinaryOp::Gt ? "gt"
                                            : "ge";
    result =
        loom::CompareOp::create(b, loc, lhs.ir, rhs.ir, b.getStringAttr(pred));
    break;
  }
  }
  if (result.getType() != gen.tensorType(out)) {
    error(range, "internal error: inferred type of " + opText +
                     " disagrees with the frontend");
    return Value::error();
  }
  return Value::tensor(out, result);
}
