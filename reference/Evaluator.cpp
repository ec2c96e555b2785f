//===- Evaluator.cpp - Reference interpreter of the loom dialect ----------===//
//
// One function per op, in double precision, straight from the op
// descriptions in ir/LoomOps.td and ir/LoomGradOps.td (the fused backward
// ops). Arrays are row-major; shape comments give the layout
// (`// x: [B, T, C]`). Speed is no goal: every loop is the
// textbook one, so that the code can be checked by reading it.
//
// Each op function checks the shapes it indexes with and returns an error
// rather than reading out of bounds; the driver adds the op's name and
// location to the message and checks every result against its MLIR type.
//
//===----------------------------------------------------------------------===//

#include "reference/Evaluator.h"

#include "ir/LoomOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <string>

using namespace mlir;

namespace loom::reference {

int64_t Array::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace {

using Shape = std::vector<int64_t>;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
/// The most elements one result may have (8 GiB of doubles): a bigger one is
/// an error, not an allocation failure.
constexpr int64_t kMaxElements = int64_t(1) << 30;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

std::string str(llvm::ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string str(Type type) {
  std::string s;
  llvm::raw_string_ostream os(s);
  if (type)
    type.print(os);
  else
    os << "<null type>";
  return s;
}

int64_t product(llvm::ArrayRef<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims)
    n *= d;
  return n;
}

/// An array of `shape` filled with `value`.
Array filled(Shape shape, Type type, double value = 0.0) {
  Array a;
  a.data.assign(product(shape), value);
  a.shape = std::move(shape);
  a.elementType = type;
  return a;
}

/// The multi-index of row-major position `linear` in `shape`.
Shape unravel(int64_t linear, llvm::ArrayRef<int64_t> shape) {
  Shape index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = linear % shape[d];
    linear /= shape[d];
  }
  return index;
}

/// The row-major position of multi-index `index` in `shape`.
int64_t linearize(llvm::ArrayRef<int64_t> index,
                  llvm::ArrayRef<int64_t> shape) {
  int64_t linear = 0;
  for (size_t d = 0; d < shape.size(); ++d)
    linear = linear * shape[d] + index[d];
  return linear;
}

/// NumPy broadcasting: trailing dims aligned, a dim of 1 stretches.
llvm::Expected<Shape> broadcastShape(llvm::ArrayRef<int64_t> a,
                                     llvm::ArrayRef<int64_t> b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1)
      return fail("shapes " + str(a) + " and " + str(b) + " do not broadcast");
    out[rank - 1 - i] = da == 1 ? db : da;
  }
  return out;
}

/// The row-major position in an array of shape `in` of the element that
/// broadcasts to multi-index `outIndex` of the (higher or equal rank) result:
/// `in`'s dims align with the trailing dims of the result, and a dim of 1
/// always reads index 0.
int64_t broadcastSource(llvm::ArrayRef<int64_t> outIndex,
                        llvm::ArrayRef<int64_t> in) {
  size_t offset = outIndex.size() - in.size();
  int64_t linear = 0;
  for (size_t d = 0; d < in.size(); ++d)
    linear = linear * in[d] + (in[d] == 1 ? 0 : outIndex[offset + d]);
  return linear;
}

/// Integer results wrap like machine integers: i32 to two's complement
/// [-2^31, 2^31), i1 (stored as 0 and 1) modulo 2. Floats are untouched.
double wrapInteger(double v, Type type) {
  auto integer = llvm::dyn_cast_or_null<IntegerType>(type);
  if (!integer || !std::isfinite(v) || integer.getWidth() > 32)
    return v;
  double modulus = std::ldexp(1.0, integer.getWidth());
  double r = std::fmod(std::trunc(v), modulus);
  if (r < 0)
    r += modulus;
  if (integer.getWidth() > 1 && r >= modulus / 2)
    r -= modulus;
  return r;
}

/// A number for a message: "7", "0.5", "nan".
std::string num(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

bool isInteger(Type type) { return llvm::isa_and_nonnull<IntegerType>(type); }

/// Converts `v` to element type `to` as `loom.cast` and `loom.fill` do:
/// floats keep the value, i32 truncates toward zero, i1 is `v != 0`.
llvm::Expected<double> convertTo(double v, Type to) {
  if (to.isSignlessInteger(1))
    return v != 0 ? 1.0 : 0.0;
  if (to.isSignlessInteger(32)) {
    double t = std::trunc(v);
    if (!(t >= -2147483648.0 && t <= 2147483647.0))
      return fail("value " + num(v) + " does not fit in i32");
    return t;
  }
  if (llvm::isa<FloatType>(to))
    return v;
  return fail("cannot convert to element type " + str(to));
}

double toDouble(llvm::APFloat v) {
  bool losesInfo = false;
  v.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven,
            &losesInfo);
  return v.convertToDouble();
}

//===----------------------------------------------------------------------===//
// constant, fill, arange
//===----------------------------------------------------------------------===//

llvm::Expected<Array> constant(Attribute value, RankedTensorType type) {
  auto dense = llvm::dyn_cast<DenseElementsAttr>(value);
  if (!dense)
    return fail("only dense constants can be evaluated");
  if (dense.getType() != type)
    return fail("constant type differs from the result type");
  Type element = type.getElementType();
  Array out = filled(Shape(type.getShape()), element);
  size_t i = 0;
  if (llvm::isa<FloatType>(element)) {
    for (llvm::APFloat v : dense.getValues<llvm::APFloat>())
      if (i < out.data.size())
        out.data[i++] = toDouble(v);
  } else if (auto integer = llvm::dyn_cast<IntegerType>(element)) {
    for (llvm::APInt v : dense.getValues<llvm::APInt>())
      if (i < out.data.size())
        out.data[i++] = integer.getWidth() == 1 ? double(v.getZExtValue())
                                                : double(v.getSExtValue());
  } else {
    return fail("unsupported constant element type " + str(element));
  }
  return out;
}

// out: `shape`, every element `value` converted to `type`.
llvm::Expected<Array> fill(Shape shape, Type type, double value) {
  llvm::Expected<double> v = convertTo(value, type);
  if (!v)
    return v.takeError();
  return filled(std::move(shape), type, *v);
}

// out: [size] = 0, 1, ..., size - 1
llvm::Expected<Array> arange(int64_t size, Type type) {
  if (size < 0)
    return fail("size " + std::to_string(size) + " is negative");
  Array out = filled({size}, type);
  for (int64_t i = 0; i < size; ++i)
    out.data[i] = double(i);
  return out;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

// out[i] = f(x[i]); x and out: the same shape
Array unary(const Array &x, Type type, llvm::function_ref<double(double)> f) {
  Array out = filled(x.shape, type);
  for (size_t i = 0; i < x.data.size(); ++i)
    out.data[i] = f(x.data[i]);
  return out;
}

// out = f(a, b), with a and b broadcast NumPy-style to out's shape. Integer
// results wrap (see wrapInteger).
llvm::Expected<Array> binary(const Array &a, const Array &b, Type type,
                             llvm::function_ref<double(double, double)> f) {
  llvm::Expected<Shape> shape = broadcastShape(a.shape, b.shape);
  if (!shape)
    return shape.takeError();
  Array out = filled(*shape, type);
  for (int64_t i = 0; i < out.numElements(); ++i) {
    Shape index = unravel(i, out.shape);
    double x = a.data[broadcastSource(index, a.shape)];
    double y = b.data[broadcastSource(index, b.shape)];
    out.data[i] = wrapInteger(f(x, y), type);
  }
  return out;
}

// a / b; on integers the quotient truncates toward zero (C), and a zero
// divisor is an error rather than undefined behavior.
llvm::Expected<Array> divide(const Array &a, const Array &b, Type type) {
  if (isInteger(type)) {
    for (double y : b.data)
      if (y == 0)
        return fail("integer division by zero");
    return binary(a, b, type,
                  [](double x, double y) { return std::trunc(x / y); });
  }
  return binary(a, b, type, [](double x, double y) { return x / y; });
}

llvm::Expected<Array> compare(const Array &a, const Array &b,
                              llvm::StringRef predicate, Type i1) {
  std::function<bool(double, double)> test;
  if (predicate == "eq")
    test = [](double x, double y) { return x == y; };
  else if (predicate == "ne")
    test = [](double x, double y) { return x != y; };
  else if (predicate == "lt")
    test = [](double x, double y) { return x < y; };
  else if (predicate == "le")
    test = [](double x, double y) { return x <= y; };
  else if (predicate == "gt")
    test = [](double x, double y) { return x > y; };
  else if (predicate == "ge")
    test = [](double x, double y) { return x >= y; };
  else
    return fail("unknown predicate \"" + predicate + "\"");
  return binary(a, b, i1,
                [&](double x, double y) { return test(x, y) ? 1.0 : 0.0; });
}

// out = cond ? a : b, the three broadcast NumPy-style
llvm::Expected<Array> where(const Array &cond, const Array &a, const Array &b,
                            Type type) {
  llvm::Expected<Shape> values = broadcastShape(a.shape, b.shape);
  if (!values)
    return values.takeError();
  llvm::Expected<Shape> shape = broadcastShape(cond.shape, *values);
  if (!shape)
    return shape.takeError();
  Array out = filled(*shape, type);
  for (int64_t i = 0; i < out.numElements(); ++i) {
    Shape index = unravel(i, out.shape);
    bool c = cond.data[broadcastSource(index, cond.shape)] != 0;
    out.data[i] = c ? a.data[broadcastSource(index, a.shape)]
                    : b.data[broadcastSource(index, b.shape)];
  }
  return out;
}

llvm::Expected<Array> castTo(const Array &x, Type to) {
  Array out = filled(x.shape, to);
  for (size_t i = 0; i < x.data.size(); ++i) {
    llvm::Expected<double> v = convertTo(x.data[i], to);
    if (!v)
      return v.takeError();
    out.data[i] = *v;
  }
  return out;
}

double gelu(double x, bool approximate) {
  if (approximate) {
    double k = std::sqrt(2.0 / std::numbers::pi);
    return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
  }
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

enum class Reduction { Sum, Mean, Max };

// x: [d0, ..., dn-1] -> x with the `axes` dims reduced (dropped, or kept as
// 1s with keepdim). An empty sum is 0, an empty mean NaN, an empty max -inf;
// max propagates NaN.
llvm::Expected<Array> reduce(const Array &x, llvm::ArrayRef<int64_t> axes,
                             bool keepdim, Reduction kind, Type type) {
  int64_t rank = x.shape.size();
  std::vector<bool> reduced(rank, false);
  for (int64_t axis : axes) {
    if (axis < 0 || axis >= rank || reduced[axis])
      return fail("axes " + str(axes) + " are not unique axes of rank " +
                  std::to_string(rank));
    reduced[axis] = true;
  }
  Shape kept = x.shape; // the result shape with keepdim = true
  int64_t count = 1;    // elements per result element
  for (int64_t d = 0; d < rank; ++d)
    if (reduced[d]) {
      count *= kept[d];
      kept[d] = 1;
    }
  Array out = filled(kept, type, kind == Reduction::Max ? -kInf : 0.0);
  for (int64_t i = 0; i < x.numElements(); ++i) {
    Shape index = unravel(i, x.shape);
    for (int64_t d = 0; d < rank; ++d)
      if (reduced[d])
        index[d] = 0;
    double &acc = out.data[linearize(index, kept)];
    double v = x.data[i];
    if (kind == Reduction::Max)
      acc = (std::isnan(acc) || v <= acc) ? acc : v;
    else
      acc += v;
  }
  for (double &v : out.data) {
    if (kind == Reduction::Mean)
      v = v / double(count);
    v = wrapInteger(v, type);
  }
  if (!keepdim) {
    out.shape.clear();
    for (int64_t d = 0; d < rank; ++d)
      if (!reduced[d])
        out.shape.push_back(x.shape[d]);
  }
  return out;
}

//===----------------------------------------------------------------------===//
// matmul, transpose, softmax
//===----------------------------------------------------------------------===//

// a: [..., M, K] @ b: [..., K, N] -> [..., M, N]; the batch dims `...`
// broadcast NumPy-style (a rank-2 b multiplies every matrix of a).
llvm::Expected<Array> matmul(const Array &a, const Array &b, Type type) {
  if (a.shape.size() < 2 || b.shape.size() < 2)
    return fail("matmul needs operands of rank >= 2");
  int64_t M = a.shape[a.shape.size() - 2], K = a.shape.back();
  int64_t K2 = b.shape[b.shape.size() - 2], N = b.shape.back();
  if (K != K2)
    return fail("contraction dims differ: " + str(a.shape) + " @ " +
                str(b.shape));
  Shape aBatch(a.shape.begin(), a.shape.end() - 2);
  Shape bBatch(b.shape.begin(), b.shape.end() - 2);
  llvm::Expected<Shape> batch = broadcastShape(aBatch, bBatch);
  if (!batch)
    return batch.takeError();
  Shape shape = *batch;
  shape.push_back(M);
  shape.push_back(N);
  Array out = filled(shape, type);
  for (int64_t n = 0; n < product(*batch); ++n) {
    Shape index = unravel(n, *batch);
    const double *A = a.data.data() + broadcastSource(index, aBatch) * M * K;
    const double *B = b.data.data() + broadcastSource(index, bBatch) * K * N;
    double *C = out.data.data() + n * M * N;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double sum = 0.0;
        for (int64_t k = 0; k < K; ++k)
          sum += A[i * K + k] * B[k * N + j];
        C[i * N + j] = sum;
      }
  }
  return out;
}

// out dim i = x dim perm[i]
llvm::Expected<Array> transpose(const Array &x, llvm::ArrayRef<int64_t> perm,
                                Type type) {
  size_t rank = x.shape.size();
  std::vector<bool> seen(rank, false);
  if (perm.size() != rank)
    return fail("perm " + str(perm) + " does not match rank " +
                std::to_string(rank));
  Shape shape(rank);
  for (size_t i = 0; i < rank; ++i) {
    if (perm[i] < 0 || perm[i] >= int64_t(rank) || seen[perm[i]])
      return fail("perm " + str(perm) + " is not a permutation");
    seen[perm[i]] = true;
    shape[i] = x.shape[perm[i]];
  }
  Array out = filled(shape, type);
  for (int64_t o = 0; o < out.numElements(); ++o) {
    Shape outIndex = unravel(o, shape);
    Shape inIndex(rank);
    for (size_t i = 0; i < rank; ++i)
      inIndex[perm[i]] = outIndex[i];
    out.data[o] = x.data[linearize(inIndex, x.shape)];
  }
  return out;
}

// x viewed as [outer, n, inner] around `axis`; softmax over n:
// exp(x - max) / sum(exp(x - max))
llvm::Expected<Array> softmax(const Array &x, int64_t axis, Type type) {
  if (axis < 0 || axis >= int64_t(x.shape.size()))
    return fail("axis " + std::to_string(axis) + " is out of range");
  int64_t outer = product(llvm::ArrayRef(x.shape).take_front(axis));
  int64_t n = x.shape[axis];
  int64_t inner = product(llvm::ArrayRef(x.shape).drop_front(axis + 1));
  Array out = filled(x.shape, type);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      auto at = [&](int64_t j) { return (o * n + j) * inner + in; };
      double max = -kInf;
      for (int64_t j = 0; j < n; ++j)
        max = std::max(max, x.data[at(j)]);
      double sum = 0.0;
      for (int64_t j = 0; j < n; ++j)
        sum += std::exp(x.data[at(j)] - max);
      for (int64_t j = 0; j < n; ++j)
        out.data[at(j)] = std::exp(x.data[at(j)] - max) / sum;
    }
  return out;
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

// The same row-major elements with shape `shape`.
llvm::Expected<Array> reshape(const Array &x, Shape shape, Type type) {
  if (product(shape) != x.numElements())
    return fail("cannot reshape " + str(x.shape) + " to " + str(shape));
  Array out = x;
  out.shape = std::move(shape);
  out.elementType = type;
  return out;
}

// x: [B, T, H*Dh] -> out: [B, H, T, Dh]; out[b, h, t, d] = x[b, t, h*Dh + d]
llvm::Expected<Array> splitHeads(const Array &x, int64_t H, Type type) {
  if (x.shape.size() != 3 || H <= 0 || x.shape[2] % H != 0)
    return fail("cannot split " + str(x.shape) + " into " + std::to_string(H) +
                " heads");
  int64_t B = x.shape[0], T = x.shape[1], Dh = x.shape[2] / H;
  Array out = filled({B, H, T, Dh}, type);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < Dh; ++d)
          out.data[((b * H + h) * T + t) * Dh + d] =
              x.data[(b * T + t) * (H * Dh) + h * Dh + d];
  return out;
}

// x: [B, H, T, Dh] -> out: [B, T, H*Dh]; out[b, t, h*Dh + d] = x[b, h, t, d]
llvm::Expected<Array> mergeHeads(const Array &x, Type type) {
  if (x.shape.size() != 4)
    return fail("merge_heads needs a rank-4 input, got " + str(x.shape));
  int64_t B = x.shape[0], H = x.shape[1], T = x.shape[2], Dh = x.shape[3];
  Array out = filled({B, T, H * Dh}, type);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < Dh; ++d)
          out.data[(b * T + t) * (H * Dh) + h * Dh + d] =
              x.data[((b * H + h) * T + t) * Dh + d];
  return out;
}

// inputs[k]: [outer..., n_k, inner...] -> [outer..., sum n_k, inner...]
llvm::Expected<Array> concat(llvm::ArrayRef<const Array *> inputs, int64_t axis,
                             Type type) {
  if (inputs.empty())
    return fail("concat of no inputs");
  const Shape &first = inputs[0]->shape;
  if (axis < 0 || axis >= int64_t(first.size()))
    return fail("axis " + std::to_string(axis) + " is out of range");
  Shape shape = first;
  shape[axis] = 0;
  for (const Array *in : inputs) {
    Shape s = in->shape;
    if (s.size() != first.size())
      return fail("concat inputs differ in rank");
    shape[axis] += s[axis];
    s[axis] = shape[axis];
    if (s != shape)
      return fail("concat input " + str(in->shape) + " does not match " +
                  str(first) + " off the axis");
  }
  int64_t outer = product(llvm::ArrayRef(shape).take_front(axis));
  int64_t inner = product(llvm::ArrayRef(shape).drop_front(axis + 1));
  Array out = filled(shape, type);
  int64_t o = 0; // next element of out, which is filled in order
  for (int64_t i = 0; i < outer; ++i)
    for (const Array *in : inputs) {
      int64_t block = in->shape[axis] * inner;
      for (int64_t j = 0; j < block; ++j)
        out.data[o++] = in->data[i * block + j];
    }
  return out;
}

// x: [outer..., n, inner...] -> [outer..., end - start, inner...], keeping
// indices [start, end) of `axis`; a negative start or end counts from the end.
llvm::Expected<Array> slice(const Array &x, int64_t axis, int64_t start,
                            int64_t end, Type type) {
  if (axis < 0 || axis >= int64_t(x.shape.size()))
    return fail("axis " + std::to_string(axis) + " is out of range");
  int64_t n = x.shape[axis];
  int64_t s = start < 0 ? n + start : start;
  int64_t e = end < 0 ? n + end : end;
  if (s < 0 || s > e || e > n)
    return fail("slice [" + std::to_string(start) + ", " + std::to_string(end) +
                ") is out of range for a dim of size " + std::to_string(n));
  int64_t outer = product(llvm::ArrayRef(x.shape).take_front(axis));
  int64_t inner = product(llvm::ArrayRef(x.shape).drop_front(axis + 1));
  Shape shape = x.shape;
  shape[axis] = e - s;
  Array out = filled(shape, type);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = s; j < e; ++j)
      for (int64_t in = 0; in < inner; ++in)
        out.data[(o * (e - s) + (j - s)) * inner + in] =
            x.data[(o * n + j) * inner + in];
  return out;
}

//===----------------------------------------------------------------------===//
// Model ops
//===----------------------------------------------------------------------===//

// table: [V, D], ids: [...] -> out: [..., D]; out[p, :] = table[ids[p], :]
llvm::Expected<Array> embedding(const Array &table, const Array &ids,
                                Type type) {
  if (table.shape.size() != 2)
    return fail("embedding table must have rank 2, got " + str(table.shape));
  int64_t V = table.shape[0], D = table.shape[1];
  Shape shape = ids.shape;
  shape.push_back(D);
  Array out = filled(shape, type);
  for (int64_t p = 0; p < ids.numElements(); ++p) {
    double id = ids.data[p];
    if (!(id >= 0 && id < double(V)) || id != std::trunc(id))
      return fail("id " + num(id) + " at ids" + str(unravel(p, ids.shape)) +
                  " is out of range [0, " + std::to_string(V) + ")");
    for (int64_t d = 0; d < D; ++d)
      out.data[p * D + d] = table.data[int64_t(id) * D + d];
  }
  return out;
}

// positions: [...] -> out: [..., dim]; for i in [0, dim/2):
// out[p, 2i] = sin(pos / 10000^(2i/dim)), out[p, 2i+1] = cos(same)
llvm::Expected<Array> sinusoidal(const Array &positions, int64_t dim,
                                 Type type) {
  if (dim <= 0 || dim % 2 != 0)
    return fail("dim must be positive and even, got " + std::to_string(dim));
  Shape shape = positions.shape;
  shape.push_back(dim);
  Array out = filled(shape, type);
  for (int64_t p = 0; p < positions.numElements(); ++p)
    for (int64_t i = 0; i < dim / 2; ++i) {
      double angle =
          positions.data[p] / std::pow(10000.0, double(2 * i) / double(dim));
      out.data[p * dim + 2 * i] = std::sin(angle);
      out.data[p * dim + 2 * i + 1] = std::cos(angle);
    }
  return out;
}

// x: [..., D], gamma, beta: [D] -> [..., D];
// (x - mean) / sqrt(var + eps) * gamma + beta, the biased mean and variance
// of each row of D
llvm::Expected<Array> layerNorm(const Array &x, const Array &gamma,
                                const Array &beta, double eps, Type type) {
  if (x.shape.empty())
    return fail("layer_norm needs an input of rank >= 1");
  int64_t D = x.shape.back();
  if (gamma.shape != Shape{D} || beta.shape != Shape{D})
    return fail("gamma and beta must have shape [" + std::to_string(D) + "]");
  Array out = filled(x.shape, type);
  int64_t rows = D == 0 ? 0 : x.numElements() / D;
  for (int64_t r = 0; r < rows; ++r) {
    const double *row = x.data.data() + r * D;
    double mean = 0.0;
    for (int64_t d = 0; d < D; ++d)
      mean += row[d];
    mean /= double(D);
    double var = 0.0;
    for (int64_t d = 0; d < D; ++d)
      var += (row[d] - mean) * (row[d] - mean);
    var /= double(D);
    double rstd = 1.0 / std::sqrt(var + eps);
    for (int64_t d = 0; d < D; ++d)
      out.data[r * D + d] =
          (row[d] - mean) * rstd * gamma.data[d] + beta.data[d];
  }
  return out;
}

// q: [..., Tq, D], k: [..., Tk, D], v: [..., Tk, Dv] -> out: [..., Tq, Dv];
// keyMask (optional): [B, Tk], B = q.shape[0], true = attend.
// out[n, i] = sum_j p[i, j] * v[n, j] with p the softmax over the keys j that
// query i may attend of scale * q[n, i] . k[n, j]; query i may attend key j
// when (!causal || j <= i + (Tk - Tq)) && keyMask[b, j]. A query that may
// attend no key gets zeros.
llvm::Expected<Array> attention(const Array &q, const Array &k, const Array &v,
                                const Array *keyMask, bool causal, double scale,
                                Type type) {
  size_t rank = q.shape.size();
  if (rank < 3 || k.shape.size() != rank || v.shape.size() != rank)
    return fail("attention needs q, k, v of one rank >= 3");
  Shape batch(q.shape.begin(), q.shape.end() - 2);
  if (Shape(k.shape.begin(), k.shape.end() - 2) != batch ||
      Shape(v.shape.begin(), v.shape.end() - 2) != batch)
    return fail("attention batch dims differ");
  int64_t Tq = q.shape[rank - 2], D = q.shape[rank - 1];
  int64_t Tk = k.shape[rank - 2], Dv = v.shape[rank - 1];
  if (k.shape[rank - 1] != D || v.shape[rank - 2] != Tk)
    return fail("attention shapes do not match: q " + str(q.shape) + ", k " +
                str(k.shape) + ", v " + str(v.shape));
  int64_t B = batch[0];
  int64_t perB = product(llvm::ArrayRef(batch).drop_front()); // e.g. heads
  if (keyMask && keyMask->shape != Shape{B, Tk})
    return fail("key_mask has shape " + str(keyMask->shape) + ", expected " +
                str(Shape{B, Tk}));
  Shape shape = batch;
  shape.push_back(Tq);
  shape.push_back(Dv);
  Array out = filled(shape, type);
  std::vector<double> scores(Tk);
  std::vector<bool> allowed(Tk);
  for (int64_t n = 0; n < product(batch); ++n) {
    int64_t b = n / perB;
    const double *Q = q.data.data() + n * Tq * D;
    const double *K = k.data.data() + n * Tk * D;
    const double *V = v.data.data() + n * Tk * Dv;
    double *O = out.data.data() + n * Tq * Dv;
    for (int64_t i = 0; i < Tq; ++i) {
      double max = -kInf;
      bool any = false;
      for (int64_t j = 0; j < Tk; ++j) {
        allowed[j] = (!causal || j <= i + (Tk - Tq)) &&
                     (!keyMask || keyMask->data[b * Tk + j] != 0);
        if (!allowed[j])
          continue;
        double dot = 0.0;
        for (int64_t d = 0; d < D; ++d)
          dot += Q[i * D + d] * K[j * D + d];
        scores[j] = dot * scale;
        max = std::max(max, scores[j]);
        any = true;
      }
      if (!any)
        continue; // the row stays zero
      double sum = 0.0;
      for (int64_t j = 0; j < Tk; ++j)
        if (allowed[j])
          sum += std::exp(scores[j] - max);
      for (int64_t j = 0; j < Tk; ++j) {
        if (!allowed[j])
          continue;
        double p = std::exp(scores[j] - max) / sum;
        for (int64_t d = 0; d < Dv; ++d)
          O[i * Dv + d] += p * V[j * Dv + d];
      }
    }
  }
  return out;
}

/// Checks the class ids of cross_entropy(_grad): logits [..., V], targets
/// [...], each target in [0, V) or ignoreIndex. Returns the number of
/// positions that are not ignored.
llvm::Expected<int64_t> countTargets(const Array &logits, const Array &targets,
                                     int64_t ignoreIndex, StringRef op) {
  if (logits.shape.empty())
    return fail(op.str() + " needs logits of rank >= 1");
  int64_t V = logits.shape.back();
  if (Shape(logits.shape.begin(), logits.shape.end() - 1) != targets.shape)
    return fail("targets " + str(targets.shape) + " do not match logits " +
                str(logits.shape));
  int64_t count = 0;
  for (int64_t p = 0; p < targets.numElements(); ++p) {
    double t = targets.data[p];
    if (t == double(ignoreIndex))
      continue;
    if (!(t >= 0 && t < double(V)) || t != std::trunc(t))
      return fail("target " + num(t) + " at targets" +
                  str(unravel(p, targets.shape)) + " is out of range [0, " +
                  std::to_string(V) + ") and is not ignore_index " +
                  std::to_string(ignoreIndex));
    ++count;
  }
  return count;
}

// max + log(sum(exp(row - max))) over V values; -inf when every value is.
double rowLogSumExp(const double *row, int64_t V) {
  double max = -kInf;
  for (int64_t c = 0; c < V; ++c)
    max = std::max(max, row[c]);
  if (!std::isfinite(max))
    return max;
  double sum = 0.0;
  for (int64_t c = 0; c < V; ++c)
    sum += std::exp(row[c] - max);
  return max + std::log(sum);
}

// logits: [..., V], targets: [...] -> a scalar: the mean over the positions p
// with targets[p] != ignoreIndex of logsumexp(logits[p]) - logits[p, t].
// NaN when every position is ignored.
llvm::Expected<Array> crossEntropy(const Array &logits, const Array &targets,
                                   int64_t ignoreIndex, Type type) {
  llvm::Expected<int64_t> count =
      countTargets(logits, targets, ignoreIndex, "cross_entropy");
  if (!count)
    return count.takeError();
  int64_t V = logits.shape.back();
  double total = 0.0;
  for (int64_t p = 0; p < targets.numElements(); ++p) {
    double t = targets.data[p];
    if (t == double(ignoreIndex))
      continue;
    const double *row = logits.data.data() + p * V;
    total += rowLogSumExp(row, V) - row[int64_t(t)];
  }
  return filled({}, type, *count == 0 ? kNaN : total / double(*count));
}

// x: [..., V] -> [...]: the rows' logsumexp.
llvm::Expected<Array> logSumExp(const Array &x, Type type) {
  if (x.shape.empty())
    return fail("logsumexp: expected an input of rank >= 1");
  int64_t V = x.shape.back();
  Shape rows(x.shape.begin(), x.shape.end() - 1);
  Array out = filled(rows, type);
  for (int64_t p = 0; p < out.numElements(); ++p)
    out.data[p] = rowLogSumExp(x.data.data() + p * V, V);
  return out;
}

// x: any shape; out[i] = keep(i) ? x[i] / (1 - rate) : 0
llvm::Expected<Array> dropout(const Array &x, uint64_t seed, double rate,
                              int64_t site, Type type) {
  if (!(rate >= 0 && rate < 1))
    return fail("rate must be in [0, 1)");
  double scale = 1.0 / (1.0 - rate);
  Array out = filled(x.shape, type);
  for (int64_t i = 0; i < x.numElements(); ++i)
    out.data[i] =
        dropoutKeeps(seed, site, uint64_t(i), rate) ? x.data[i] * scale : 0.0;
  return out;
}

// x: [B, T, I], h0, c0: [B, H], wIh: [I, 4H], wHh: [H, 4H], bias: [4H]
// -> outputs: [B, T, H], hN: [B, H], cN: [B, H]. Per step t:
// z = x[:, t] @ wIh + h @ wHh + bias, gates i, f, g, o = z in quarters,
// c = sigmoid(f) * c + sigmoid(i) * tanh(g), h = sigmoid(o) * tanh(c)
llvm::Expected<std::vector<Array>> lstm(const Array &x, const Array &h0,
                                        const Array &c0, const Array &wIh,
                                        const Array &wHh, const Array &bias,
                                        Type type) {
  if (x.shape.size() != 3 || h0.shape.size() != 2)
    return fail("lstm needs input [B, T, I] and h0 [B, H]");
  int64_t B = x.shape[0], T = x.shape[1], I = x.shape[2], H = h0.shape[1];
  if (h0.shape != Shape{B, H} || c0.shape != Shape{B, H} ||
      wIh.shape != Shape{I, 4 * H} || wHh.shape != Shape{H, 4 * H} ||
      bias.shape != Shape{4 * H})
    return fail("lstm operand shapes do not match");
  Array outputs = filled({B, T, H}, type);
  Array h = h0, c = c0;
  h.elementType = c.elementType = type;
  std::vector<double> z(4 * H);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      const double *xt = x.data.data() + (b * T + t) * I;
      const double *hb = h.data.data() + b * H;
      for (int64_t g = 0; g < 4 * H; ++g) {
        double sum = bias.data[g];
        for (int64_t k = 0; k < I; ++k)
          sum += xt[k] * wIh.data[k * 4 * H + g];
        for (int64_t k = 0; k < H; ++k)
          sum += hb[k] * wHh.data[k * 4 * H + g];
        z[g] = sum;
      }
      // Every z is computed from the old h, so h and c update afterwards.
      for (int64_t j = 0; j < H; ++j) {
        double ig = sigmoid(z[j]);
        double fg = sigmoid(z[H + j]);
        double gg = std::tanh(z[2 * H + j]);
        double og = sigmoid(z[3 * H + j]);
        double cNew = fg * c.data[b * H + j] + ig * gg;
        c.data[b * H + j] = cNew;
        h.data[b * H + j] = og * std::tanh(cNew);
        outputs.data[(b * T + t) * H + j] = h.data[b * H + j];
      }
    }
  return std::vector<Array>{std::move(outputs), std::move(h), std::move(c)};
}

//===----------------------------------------------------------------------===//
// Backward ops (ir/LoomGradOps.td)
//===----------------------------------------------------------------------===//

/// The dims of attention operands q: [..., Tq, D], k: [..., Tk, D] and the
/// optional keyMask: [B, Tk], B = q.shape[0]; perB = the batch entries per b
/// (e.g. heads).
struct AttentionDims {
  Shape batch;
  int64_t Tq, Tk, D, B, perB;
};

llvm::Expected<AttentionDims> attentionDims(const Array &q, const Array &k,
                                            const Array *keyMask) {
  size_t rank = q.shape.size();
  if (rank < 3 || k.shape.size() != rank)
    return fail("attention needs q and k of one rank >= 3");
  AttentionDims dims;
  dims.batch = Shape(q.shape.begin(), q.shape.end() - 2);
  if (Shape(k.shape.begin(), k.shape.end() - 2) != dims.batch)
    return fail("attention batch dims differ");
  dims.Tq = q.shape[rank - 2];
  dims.D = q.shape[rank - 1];
  dims.Tk = k.shape[rank - 2];
  if (k.shape[rank - 1] != dims.D)
    return fail("attention shapes do not match: q " + str(q.shape) + ", k " +
                str(k.shape));
  dims.B = dims.batch[0];
  dims.perB = product(llvm::ArrayRef(dims.batch).drop_front());
  if (keyMask && keyMask->shape != Shape{dims.B, dims.Tk})
    return fail("key_mask has shape " + str(keyMask->shape) + ", expected " +
                str(Shape{dims.B, dims.Tk}));
  return dims;
}

/// Whether query i of batch entry b may attend key j, as in attention().
bool attends(const AttentionDims &dims, const Array *keyMask, bool causal,
             int64_t b, int64_t i, int64_t j) {
  return (!causal || j <= i + (dims.Tk - dims.Tq)) &&
         (!keyMask || keyMask->data[b * dims.Tk + j] != 0);
}

// q: [..., Tq, D], k: [..., Tk, D], keyMask (optional): [B, Tk]
// -> lse: [..., Tq]; lse[n, i] = log(sum_j exp(scale * q[n, i] . k[n, j]))
// over the keys j that query i may attend (see attention()), 0 when it may
// attend none. Computed as max + log(sum_j exp(s_j - max)).
llvm::Expected<Array> attentionLse(const Array &q, const Array &k,
                                   const Array *keyMask, bool causal,
                                   double scale, Type type) {
  llvm::Expected<AttentionDims> dims = attentionDims(q, k, keyMask);
  if (!dims)
    return dims.takeError();
  int64_t Tq = dims->Tq, Tk = dims->Tk, D = dims->D;
  Shape shape = dims->batch;
  shape.push_back(Tq);
  Array lse = filled(shape, type);
  std::vector<double> scores(Tk);
  for (int64_t n = 0; n < product(dims->batch); ++n) {
    int64_t b = n / dims->perB;
    const double *Q = q.data.data() + n * Tq * D;
    const double *K = k.data.data() + n * Tk * D;
    for (int64_t i = 0; i < Tq; ++i) {
      double max = -kInf;
      bool any = false;
      for (int64_t j = 0; j < Tk; ++j) {
        if (!attends(*dims, keyMask, causal, b, i, j))
          continue;
        double dot = 0.0;
        for (int64_t d = 0; d < D; ++d)
          dot += Q[i * D + d] * K[j * D + d];
        scores[j] = dot * scale;
        max = std::max(max, scores[j]);
        any = true;
      }
      if (!any)
        continue; // lse stays 0
      double sum = 0.0;
      for (int64_t j = 0; j < Tk; ++j)
        if (attends(*dims, keyMask, causal, b, i, j))
          sum += std::exp(scores[j] - max);
      lse.data[n * Tq + i] = max + std::log(sum);
    }
  }
  return lse;
}

// q: [..., Tq, D], k: [..., Tk, D], v: [..., Tk, Dv], out, dOut:
// [..., Tq, Dv], lse: [..., Tq], keyMask (optional): [B, Tk] -> dQ, dK, dV
// (the shapes of q, k, v). Per batch entry n, over the pairs (i, j) that
// attention() lets attend:
//   P[i, j]  = exp(scale * q[i] . k[j] - lse[i])   (0 for the other pairs)
//   delta[i] = dOut[i] . out[i]
//   dP[i, j] = dOut[i] . v[j]
//   dS[i, j] = P[i, j] * (dP[i, j] - delta[i])
//   dV = P^T @ dOut,  dQ = scale * dS @ k,  dK = scale * dS^T @ q
llvm::Expected<std::vector<Array>>
attentionGrad(const Array &q, const Array &k, const Array &v, const Array &out,
              const Array &lse, const Array &dOut, const Array *keyMask,
              bool causal, double scale) {
  llvm::Expected<AttentionDims> dims = attentionDims(q, k, keyMask);
  if (!dims)
    return dims.takeError();
  size_t rank = q.shape.size();
  int64_t Tq = dims->Tq, Tk = dims->Tk, D = dims->D;
  if (v.shape.size() != rank || Shape(v.shape.begin(), v.shape.end() - 1) !=
                                    Shape(k.shape.begin(), k.shape.end() - 1))
    return fail("v has shape " + str(v.shape) + ", expected [..., " +
                std::to_string(Tk) + ", Dv] with the batch dims of k " +
                str(k.shape));
  int64_t Dv = v.shape.back();
  Shape outShape = dims->batch, lseShape = dims->batch;
  outShape.push_back(Tq);
  outShape.push_back(Dv);
  lseShape.push_back(Tq);
  if (out.shape != outShape || dOut.shape != outShape)
    return fail("out and d_out have shapes " + str(out.shape) + " and " +
                str(dOut.shape) + ", expected " + str(outShape));
  if (lse.shape != lseShape)
    return fail("lse has shape " + str(lse.shape) + ", expected " +
                str(lseShape));
  Array dQ = filled(q.shape, q.elementType);
  Array dK = filled(k.shape, k.elementType);
  Array dV = filled(v.shape, v.elementType);
  std::vector<double> P(Tq * Tk), dS(Tq * Tk), delta(Tq);
  for (int64_t n = 0; n < product(dims->batch); ++n) {
    int64_t b = n / dims->perB;
    const double *Q = q.data.data() + n * Tq * D;
    const double *K = k.data.data() + n * Tk * D;
    const double *V = v.data.data() + n * Tk * Dv;
    const double *O = out.data.data() + n * Tq * Dv;
    const double *dO = dOut.data.data() + n * Tq * Dv;
    const double *L = lse.data.data() + n * Tq;
    double *dQn = dQ.data.data() + n * Tq * D;
    double *dKn = dK.data.data() + n * Tk * D;
    double *dVn = dV.data.data() + n * Tk * Dv;
    // P, recomputed from lse.
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t j = 0; j < Tk; ++j) {
        P[i * Tk + j] = 0.0;
        if (!attends(*dims, keyMask, causal, b, i, j))
          continue;
        double dot = 0.0;
        for (int64_t d = 0; d < D; ++d)
          dot += Q[i * D + d] * K[j * D + d];
        P[i * Tk + j] = std::exp(scale * dot - L[i]);
      }
    // delta = rowsum(dOut * out)
    for (int64_t i = 0; i < Tq; ++i) {
      delta[i] = 0.0;
      for (int64_t d = 0; d < Dv; ++d)
        delta[i] += dO[i * Dv + d] * O[i * Dv + d];
    }
    // dV = P^T @ dOut
    for (int64_t j = 0; j < Tk; ++j)
      for (int64_t d = 0; d < Dv; ++d)
        for (int64_t i = 0; i < Tq; ++i)
          dVn[j * Dv + d] += P[i * Tk + j] * dO[i * Dv + d];
    // dS = P * (dOut @ v^T - delta)
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t j = 0; j < Tk; ++j) {
        double dP = 0.0;
        for (int64_t d = 0; d < Dv; ++d)
          dP += dO[i * Dv + d] * V[j * Dv + d];
        dS[i * Tk + j] = P[i * Tk + j] * (dP - delta[i]);
      }
    // dQ = scale * dS @ k, dK = scale * dS^T @ q
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t d = 0; d < D; ++d)
        for (int64_t j = 0; j < Tk; ++j)
          dQn[i * D + d] += scale * dS[i * Tk + j] * K[j * D + d];
    for (int64_t j = 0; j < Tk; ++j)
      for (int64_t d = 0; d < D; ++d)
        for (int64_t i = 0; i < Tq; ++i)
          dKn[j * D + d] += scale * dS[i * Tk + j] * Q[i * D + d];
  }
  return std::vector<Array>{std::move(dQ), std::move(dK), std::move(dV)};
}

// logits: [..., V], targets: [...], dLoss: [] -> dLogits: [..., V];
// dLogits[p] = (softmax(logits[p]) - onehot(targets[p])) * dLoss / n for the
// n positions p whose target is not ignoreIndex, 0 for the others (all 0
// when every position is ignored).
llvm::Expected<Array> crossEntropyGrad(const Array &logits,
                                       const Array &targets, const Array &dLoss,
                                       int64_t ignoreIndex, Type type) {
  llvm::Expected<int64_t> counted =
      countTargets(logits, targets, ignoreIndex, "cross_entropy_grad");
  if (!counted)
    return counted.takeError();
  if (!dLoss.shape.empty())
    return fail("d_loss must have rank 0, got " + str(dLoss.shape));
  int64_t V = logits.shape.back(), count = *counted;
  Array out = filled(logits.shape, type);
  for (int64_t p = 0; p < targets.numElements(); ++p) {
    double t = targets.data[p];
    if (t == double(ignoreIndex))
      continue; // the row stays zero
    double factor = dLoss.data[0] / double(count);
    const double *row = logits.data.data() + p * V;
    double lse = rowLogSumExp(row, V);
    for (int64_t c = 0; c < V; ++c) {
      double onehot = c == int64_t(t) ? 1.0 : 0.0;
      out.data[p * V + c] = (std::exp(row[c] - lse) - onehot) * factor;
    }
  }
  return out;
}

// x, dy: [..., D], gamma: [D] -> dx: [..., D], dGamma, dBeta: [D]. Per row
// of D, with mean and var the biased moments of x, rstd = 1/sqrt(var + eps),
// xhat = (x - mean) * rstd and g = dy * gamma:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
//   dGamma += dy * xhat,  dBeta += dy  (summed over rows)
llvm::Expected<std::vector<Array>>
layerNormGrad(const Array &x, const Array &gamma, const Array &dy, double eps) {
  if (x.shape.empty())
    return fail("layer_norm_grad needs an input of rank >= 1");
  int64_t D = x.shape.back();
  if (gamma.shape != Shape{D})
    return fail("gamma must have shape [" + std::to_string(D) + "], got " +
                str(gamma.shape));
  if (dy.shape != x.shape)
    return fail("d_result has shape " + str(dy.shape) + ", expected " +
                str(x.shape));
  Array dx = filled(x.shape, x.elementType);
  Array dGamma = filled({D}, gamma.elementType);
  Array dBeta = filled({D}, gamma.elementType);
  int64_t rows = D == 0 ? 0 : x.numElements() / D;
  std::vector<double> xhat(D), g(D);
  for (int64_t r = 0; r < rows; ++r) {
    const double *row = x.data.data() + r * D;
    const double *dyRow = dy.data.data() + r * D;
    double mean = 0.0;
    for (int64_t d = 0; d < D; ++d)
      mean += row[d];
    mean /= double(D);
    double var = 0.0;
    for (int64_t d = 0; d < D; ++d)
      var += (row[d] - mean) * (row[d] - mean);
    var /= double(D);
    double rstd = 1.0 / std::sqrt(var + eps);
    double meanG = 0.0, meanGXhat = 0.0;
    for (int64_t d = 0; d < D; ++d) {
      xhat[d] = (row[d] - mean) * rstd;
      g[d] = dyRow[d] * gamma.data[d];
      meanG += g[d];
      meanGXhat += g[d] * xhat[d];
    }
    meanG /= double(D);
    meanGXhat /= double(D);
    for (int64_t d = 0; d < D; ++d) {
      dx.data[r * D + d] = rstd * (g[d] - meanG - xhat[d] * meanGXhat);
      dGamma.data[d] += dyRow[d] * xhat[d];
      dBeta.data[d] += dyRow[d];
    }
  }
  return std::vector<Array>{std::move(dx), std::move(dGamma), std::move(dBeta)};
}

/// The derivative of gelu(x, approximate): for the erf form
/// Phi(x) + x * phi(x); for the tanh form, with
/// u = sqrt(2/pi) * (x + 0.044715 x^3),
/// 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 0.134145 x^2).
double geluDerivative(double x, bool approximate) {
  if (approximate) {
    double k = std::sqrt(2.0 / std::numbers::pi);
    double t = std::tanh(k * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 + t) +
           0.5 * x * (1.0 - t * t) * k * (1.0 + 0.134145 * x * x);
  }
  double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
  double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
  return cdf + x * pdf;
}

// x, dy: the same shape; dx[i] = dy[i] * gelu'(x[i])
llvm::Expected<Array> geluGrad(const Array &x, const Array &dy,
                               bool approximate, Type type) {
  if (dy.shape != x.shape)
    return fail("d_result has shape " + str(dy.shape) + ", expected " +
                str(x.shape));
  Array dx = filled(x.shape, type);
  for (int64_t i = 0; i < x.numElements(); ++i)
    dx.data[i] = dy.data[i] * geluDerivative(x.data[i], approximate);
  return dx;
}

// ids: [...], dy: [..., D] -> dTable: [vocab, D];
// dTable[r, :] = sum of dy[p, :] over the positions p with ids[p] == r
llvm::Expected<Array> embeddingGrad(const Array &ids, const Array &dy,
                                    int64_t vocab, Type type) {
  if (vocab < 1)
    return fail("vocab must be >= 1, got " + std::to_string(vocab));
  if (dy.shape.size() != ids.shape.size() + 1 ||
      Shape(dy.shape.begin(), dy.shape.end() - 1) != ids.shape)
    return fail("d_result " + str(dy.shape) + " is not [..., D] over ids " +
                str(ids.shape));
  int64_t D = dy.shape.back();
  Array out = filled({vocab, D}, type);
  for (int64_t p = 0; p < ids.numElements(); ++p) {
    double id = ids.data[p];
    if (!(id >= 0 && id < double(vocab)) || id != std::trunc(id))
      return fail("id " + num(id) + " at ids" + str(unravel(p, ids.shape)) +
                  " is out of range [0, " + std::to_string(vocab) + ")");
    for (int64_t d = 0; d < D; ++d)
      out.data[int64_t(id) * D + d] += dy.data[p * D + d];
  }
  return out;
}

// The operands of lstm() plus dOutputs: [B, T, H], dHN, dCN: [B, H] -> the
// gradients of the six operands, in their shapes. The forward recurrence of
// lstm() is run again, keeping the gates and the states of every step; then
// the steps are walked backwards (with x_t = x[:, t], c_t and h_t the states
// after step t, c_{-1} = c0, h_{-1} = h0):
//   dh = dHN;  dc = dCN
//   for t = T-1 .. 0:
//     dh += dOutputs[:, t]
//     do = dh * tanh(c_t);  dc += dh * o * (1 - tanh(c_t)^2)
//     di = dc * g;  dg = dc * i;  df = dc * c_{t-1};  dc = dc * f
//     dz = [di * i(1-i), df * f(1-f), dg * (1-g^2), do * o(1-o)]
//     dx[:, t] = dz @ wIh^T;  dh = dz @ wHh^T
//     dWIh += x_t^T @ dz;  dWHh += h_{t-1}^T @ dz;  dBias += sum_b dz
//   dH0 = dh;  dC0 = dc
llvm::Expected<std::vector<Array>>
lstmGrad(const Array &x, const Array &h0, const Array &c0, const Array &wIh,
         const Array &wHh, const Array &bias, const Array &dOutputs,
         const Array &dHN, const Array &dCN) {
  if (x.shape.size() != 3 || h0.shape.size() != 2)
    return fail("lstm_grad needs input [B, T, I] and h0 [B, H]");
  int64_t B = x.shape[0], T = x.shape[1], I = x.shape[2], H = h0.shape[1];
  if (h0.shape != Shape{B, H} || c0.shape != Shape{B, H} ||
      wIh.shape != Shape{I, 4 * H} || wHh.shape != Shape{H, 4 * H} ||
      bias.shape != Shape{4 * H})
    return fail("lstm_grad operand shapes do not match: input " + str(x.shape) +
                ", h0 " + str(h0.shape) + ", c0 " + str(c0.shape) + ", w_ih " +
                str(wIh.shape) + ", w_hh " + str(wHh.shape) + ", bias " +
                str(bias.shape));
  if (dOutputs.shape != Shape{B, T, H} || dHN.shape != Shape{B, H} ||
      dCN.shape != Shape{B, H})
    return fail("lstm_grad result gradients do not match: d_outputs " +
                str(dOutputs.shape) + ", d_h_n " + str(dHN.shape) + ", d_c_n " +
                str(dCN.shape));

  // Forward. gates[t][b, :] = i, f, g, o (activated), [B, 4H] per step;
  // hs[t + 1], cs[t + 1]: [B, H], the states after step t; hs[0] = h0,
  // cs[0] = c0.
  std::vector<std::vector<double>> gates(T, std::vector<double>(B * 4 * H));
  std::vector<std::vector<double>> hs(T + 1), cs(T + 1);
  hs[0] = h0.data;
  cs[0] = c0.data;
  for (int64_t t = 0; t < T; ++t) {
    hs[t + 1].assign(B * H, 0.0);
    cs[t + 1].assign(B * H, 0.0);
    for (int64_t b = 0; b < B; ++b) {
      const double *xt = x.data.data() + (b * T + t) * I;
      const double *hPrev = hs[t].data() + b * H;
      double *gate = gates[t].data() + b * 4 * H;
      for (int64_t n = 0; n < 4 * H; ++n) {
        double z = bias.data[n];
        for (int64_t k = 0; k < I; ++k)
          z += xt[k] * wIh.data[k * 4 * H + n];
        for (int64_t k = 0; k < H; ++k)
          z += hPrev[k] * wHh.data[k * 4 * H + n];
        gate[n] = n >= 2 * H && n < 3 * H ? std::tanh(z) : sigmoid(z);
      }
      for (int64_t j = 0; j < H; ++j) {
        double c = gate[H + j] * cs[t][b * H + j] + gate[j] * gate[2 * H + j];
        cs[t + 1][b * H + j] = c;
        hs[t + 1][b * H + j] = gate[3 * H + j] * std::tanh(c);
      }
    }
  }

  // Backward through time.
  Array dX = filled(x.shape, x.elementType);
  Array dWIh = filled(wIh.shape, wIh.elementType);
  Array dWHh = filled(wHh.shape, wHh.elementType);
  Array dBias = filled(bias.shape, bias.elementType);
  std::vector<double> dh = dHN.data, dc = dCN.data, dz(B * 4 * H);
  for (int64_t t = T - 1; t >= 0; --t) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        int64_t bj = b * H + j;
        const double *gate = gates[t].data() + b * 4 * H;
        double i = gate[j], f = gate[H + j], g = gate[2 * H + j],
               o = gate[3 * H + j];
        dh[bj] += dOutputs.data[(b * T + t) * H + j];
        double tc = std::tanh(cs[t + 1][bj]);
        double dO = dh[bj] * tc;
        dc[bj] += dh[bj] * o * (1.0 - tc * tc);
        double dI = dc[bj] * g, dG = dc[bj] * i, dF = dc[bj] * cs[t][bj];
        dc[bj] *= f;
        double *dzb = dz.data() + b * 4 * H;
        dzb[j] = dI * i * (1.0 - i);
        dzb[H + j] = dF * f * (1.0 - f);
        dzb[2 * H + j] = dG * (1.0 - g * g);
        dzb[3 * H + j] = dO * o * (1.0 - o);
      }
    for (int64_t b = 0; b < B; ++b) {
      const double *dzb = dz.data() + b * 4 * H;
      const double *xt = x.data.data() + (b * T + t) * I;
      const double *hPrev = hs[t].data() + b * H;
      for (int64_t k = 0; k < I; ++k) {
        double sum = 0.0;
        for (int64_t n = 0; n < 4 * H; ++n)
          sum += dzb[n] * wIh.data[k * 4 * H + n];
        dX.data[(b * T + t) * I + k] = sum;
      }
      for (int64_t k = 0; k < H; ++k) {
        double sum = 0.0;
        for (int64_t n = 0; n < 4 * H; ++n)
          sum += dzb[n] * wHh.data[k * 4 * H + n];
        dh[b * H + k] = sum;
      }
      for (int64_t n = 0; n < 4 * H; ++n) {
        for (int64_t k = 0; k < I; ++k)
          dWIh.data[k * 4 * H + n] += xt[k] * dzb[n];
        for (int64_t k = 0; k < H; ++k)
          dWHh.data[k * 4 * H + n] += hPrev[k] * dzb[n];
        dBias.data[n] += dzb[n];
      }
    }
  }
  Array dH0 = filled(h0.shape, h0.elementType);
  Array dC0 = filled(c0.shape, c0.elementType);
  dH0.data = std::move(dh);
  dC0.data = std::move(dc);
  return std::vector<Array>{std::move(dX),   std::move(dH0),  std::move(dC0),
                            std::move(dWIh), std::move(dWHh), std::move(dBias)};
}

//===----------------------------------------------------------------------===//
// The driver
//===----------------------------------------------------------------------===//

/// `'loom.matmul' at loc("model.mlir":3:10): message`
llvm::Error opError(Operation *op, const llvm::Twine &message) {
  std::string where;
  llvm::raw_string_ostream os(where);
  os << "'" << op->getName() << "' at ";
  op->getLoc().print(os);
  return fail(where + ": " + message);
}

/// The static shape of a ranked tensor type, or nullopt.
std::optional<Shape> staticShape(Type type) {
  auto ranked = llvm::dyn_cast<RankedTensorType>(type);
  if (!ranked || !ranked.hasStaticShape())
    return std::nullopt;
  return Shape(ranked.getShape());
}

/// Checks that `array` is a consistent value of `type`. A null element type
/// in `array` matches any.
llvm::Error checkAgainstType(const Array &array, Type type,
                             const llvm::Twine &what) {
  std::optional<Shape> shape = staticShape(type);
  if (!shape)
    return fail(what + " has type " + str(type) +
                ", which is not a statically shaped tensor");
  for (int64_t d : array.shape)
    if (d < 0)
      return fail(what + " has a negative dim: " + str(array.shape));
  if (array.shape != *shape)
    return fail(what + " has shape " + str(array.shape) + " but its type is " +
                str(type));
  if (int64_t(array.data.size()) != array.numElements())
    return fail(what + " holds " + std::to_string(array.data.size()) +
                " values for shape " + str(array.shape));
  Type element = llvm::cast<RankedTensorType>(type).getElementType();
  if (array.elementType && array.elementType != element)
    return fail(what + " has element type " + str(array.elementType) +
                " but its type is " + str(type));
  return llvm::Error::success();
}

/// Checks that the values of an argument fit its integer element type: 0 or
/// 1 for i1, an integer in range for i32, an integer for i64.
llvm::Error checkIntegerValues(const Array &array, Type element,
                               const llvm::Twine &what) {
  auto integer = llvm::dyn_cast<IntegerType>(element);
  if (!integer)
    return llvm::Error::success();
  for (size_t i = 0; i < array.data.size(); ++i) {
    double v = array.data[i];
    bool fits = v == std::trunc(v) && std::isfinite(v);
    if (integer.getWidth() == 1)
      fits = v == 0 || v == 1;
    else if (integer.getWidth() == 32)
      fits = fits && v >= -2147483648.0 && v <= 2147483647.0;
    if (!fits)
      return fail(what + " holds " + num(v) + " at " +
                  str(unravel(i, array.shape)) + ", which is not an " +
                  str(element));
  }
  return llvm::Error::success();
}

/// The dropout seed, an i64 held in a double, reinterpreted as uint64. Only
/// integers of magnitude <= 2^53 are surely the seed the caller meant (a
/// larger one may have been rounded on its way into the double), so others
/// are an error rather than a silently different mask.
llvm::Expected<uint64_t> seedOf(const Array &seed) {
  if (seed.data.size() != 1)
    return fail("seed must hold one value");
  double s = seed.data[0];
  if (!(std::fabs(s) <= 0x1p53) || s != std::trunc(s))
    return fail("seed " + num(s) +
                " is not an integer of magnitude <= 2^53, which a double "
                "holds exactly");
  return uint64_t(int64_t(s));
}

class Interpreter {
public:
  Interpreter(ModuleOp module, const ParamLookup &params)
      : module(module), params(params) {}

  llvm::Expected<std::vector<Array>>
  call(func::FuncOp func, llvm::ArrayRef<Array> args, int depth);

private:
  llvm::Expected<std::vector<Array>>
  evalOp(Operation *op, llvm::ArrayRef<const Array *> in, int depth);

  ModuleOp module;
  const ParamLookup &params;
};

/// Wraps a single-result kernel's answer as the op's result list.
llvm::Expected<std::vector<Array>> one(llvm::Expected<Array> result) {
  if (!result)
    return result.takeError();
  std::vector<Array> results;
  results.push_back(std::move(*result));
  return results;
}

llvm::Expected<std::vector<Array>>
Interpreter::evalOp(Operation *op, llvm::ArrayRef<const Array *> in,
                    int depth) {
  // The element type of the (first) result.
  Type type;
  if (op->getNumResults() > 0)
    type = llvm::cast<RankedTensorType>(op->getResult(0).getType())
               .getElementType();
  Shape shape;
  if (op->getNumResults() > 0)
    shape = *staticShape(op->getResult(0).getType());

  auto un = [&](llvm::function_ref<double(double)> f) {
    return one(unary(*in[0], type, f));
  };
  auto bin = [&](llvm::function_ref<double(double, double)> f) {
    return one(binary(*in[0], *in[1], type, f));
  };
  using Result = llvm::Expected<std::vector<Array>>;
  return llvm::TypeSwitch<Operation *, Result>(op)
      .Case([&](ConstantOp c) {
        return one(
            constant(c.getValue(), llvm::cast<RankedTensorType>(c.getType())));
      })
      .Case([&](FillOp f) { return one(fill(shape, type, f.getValue())); })
      .Case([&](ArangeOp a) { return one(arange(a.getSize(), type)); })
      .Case(
          [&](AddOp) { return bin([](double x, double y) { return x + y; }); })
      .Case(
          [&](SubOp) { return bin([](double x, double y) { return x - y; }); })
      .Case(
          [&](MulOp) { return bin([](double x, double y) { return x * y; }); })
      .Case([&](DivOp) { return one(divide(*in[0], *in[1], type)); })
      .Case([&](NegOp) { return un([](double x) { return -x; }); })
      .Case([&](ExpOp) { return un([](double x) { return std::exp(x); }); })
      .Case([&](LogOp) { return un([](double x) { return std::log(x); }); })
      .Case([&](TanhOp) { return un([](double x) { return std::tanh(x); }); })
      .Case([&](SigmoidOp) { return un(sigmoid); })
      .Case(
          [&](ReluOp) { return un([](double x) { return x < 0 ? 0.0 : x; }); })
      .Case([&](SqrtOp) { return un([](double x) { return std::sqrt(x); }); })
      .Case([&](RsqrtOp) {
        return un([](double x) { return 1.0 / std::sqrt(x); });
      })
      .Case([&](GeluOp g) {
        bool approximate = g.getApproximate();
        return un([&](double x) { return gelu(x, approximate); });
      })
      .Case([&](PowOp p) {
        double e = p.getExponent();
        return un([&](double x) { return std::pow(x, e); });
      })
      .Case([&](CompareOp c) {
        return one(compare(*in[0], *in[1], c.getPredicate(), type));
      })
      .Case([&](WhereOp) { return one(where(*in[0], *in[1], *in[2], type)); })
      .Case([&](CastOp) { return one(castTo(*in[0], type)); })
      .Case([&](ReduceSumOp r) {
        return one(
            reduce(*in[0], r.getAxes(), r.getKeepdim(), Reduction::Sum, type));
      })
      .Case([&](ReduceMeanOp r) {
        return one(
            reduce(*in[0], r.getAxes(), r.getKeepdim(), Reduction::Mean, type));
      })
      .Case([&](ReduceMaxOp r) {
        return one(
            reduce(*in[0], r.getAxes(), r.getKeepdim(), Reduction::Max, type));
      })
      .Case([&](MatmulOp) { return one(matmul(*in[0], *in[1], type)); })
      .Case([&](TransposeOp t) {
        return one(transpose(*in[0], t.getPerm(), type));
      })
      .Case([&](SoftmaxOp s) {
        return one(softmax(*in[0], s.getAxisAttr().getInt(), type));
      })
      .Case([&](ReshapeOp) { return one(reshape(*in[0], shape, type)); })
      .Case([&](SplitHeadsOp s) {
        return one(splitHeads(*in[0], s.getHeadsAttr().getInt(), type));
      })
      .Case([&](MergeHeadsOp) { return one(mergeHeads(*in[0], type)); })
      .Case([&](ConcatOp c) {
        return one(concat(in, c.getAxisAttr().getInt(), type));
      })
      .Case([&](SliceOp s) {
        return one(slice(*in[0], s.getAxisAttr().getInt(),
                         s.getStartAttr().getInt(), s.getEndAttr().getInt(),
                         type));
      })
      .Case([&](EmbeddingOp) { return one(embedding(*in[0], *in[1], type)); })
      .Case([&](SinusoidalOp s) {
        return one(sinusoidal(*in[0], s.getDimAttr().getInt(), type));
      })
      .Case([&](LayerNormOp l) {
        return one(layerNorm(*in[0], *in[1], *in[2], l.getEps(), type));
      })
      .Case([&](AttentionOp a) {
        const Array *mask = a.getKeyMask() ? in[3] : nullptr;
        return one(attention(*in[0], *in[1], *in[2], mask, a.getCausal(),
                             a.getScale(), type));
      })
      .Case([&](CrossEntropyOp c) {
        // An `lse` operand is logsumexp(logits) by definition: recomputed.
        return one(crossEntropy(*in[0], *in[1], c.getIgnoreIndexAttr().getInt(),
                                type));
      })
      .Case([&](DropoutOp d) -> Result {
        llvm::Expected<uint64_t> seed = seedOf(*in[1]);
        if (!seed)
          return seed.takeError();
        return one(dropout(*in[0], *seed, d.getRate(), d.getSiteAttr().getInt(),
                           type));
      })
      .Case([&](LstmOp) {
        return lstm(*in[0], *in[1], *in[2], *in[3], *in[4], *in[5], type);
      })
      .Case([&](AttentionLseOp a) {
        const Array *mask = a.getKeyMask() ? in[2] : nullptr;
        return one(attentionLse(*in[0], *in[1], mask, a.getCausal(),
                                a.getScale(), type));
      })
      .Case([&](AttentionGradOp a) {
        const Array *mask = a.getKeyMask() ? in[6] : nullptr;
        return attentionGrad(*in[0], *in[1], *in[2], *in[3], *in[4], *in[5],
                             mask, a.getCausal(), a.getScale());
      })
      .Case([&](CrossEntropyGradOp c) {
        return one(crossEntropyGrad(*in[0], *in[1], *in[2],
                                    c.getIgnoreIndexAttr().getInt(), type));
      })
      .Case([&](LogSumExpOp) { return one(logSumExp(*in[0], type)); })
      .Case([&](LayerNormGradOp l) {
        return layerNormGrad(*in[0], *in[1], *in[2], l.getEps());
      })
      .Case([&](GeluGradOp g) {
        return one(geluGrad(*in[0], *in[1], g.getApproximate(), type));
      })
      .Case([&](EmbeddingGradOp e) {
        return one(
            embeddingGrad(*in[0], *in[1], e.getVocabAttr().getInt(), type));
      })
      .Case([&](LstmGradOp) {
        return lstmGrad(*in[0], *in[1], *in[2], *in[3], *in[4], *in[5], *in[6],
                        *in[7], *in[8]);
      })
      .Case([&](GetParameterOp g) -> Result {
        const Array *param = params ? params(g.getName()) : nullptr;
        if (!param)
          return fail("missing parameter '" + g.getName() + "'");
        if (llvm::Error e = checkAgainstType(*param, g.getType(),
                                             "parameter '" + g.getName() + "'"))
          return std::move(e);
        Array copy = *param;
        copy.elementType = type;
        return one(std::move(copy));
      })
      .Case([&](func::CallOp c) -> Result {
        auto callee = module.lookupSymbol<func::FuncOp>(c.getCallee());
        if (!callee)
          return fail("unknown function '" + c.getCallee() + "'");
        std::vector<Array> args;
        for (const Array *a : in)
          args.push_back(*a);
        return call(callee, args, depth + 1);
      })
      .Default([&](Operation *) -> Result {
        return fail("the reference evaluator does not know this op");
      });
}

llvm::Expected<std::vector<Array>>
Interpreter::call(func::FuncOp func, llvm::ArrayRef<Array> args, int depth) {
  if (depth > 64)
    return opError(func, "calls nest deeper than 64 (recursion?)");
  if (func.isExternal())
    return opError(func, "function '" + func.getSymName() + "' has no body");
  if (!llvm::hasSingleElement(func.getBody()))
    return opError(func, "only single-block functions can be evaluated");
  if (args.size() != func.getNumArguments())
    return opError(func, "function '" + func.getSymName() + "' takes " +
                             std::to_string(func.getNumArguments()) +
                             " arguments, got " + std::to_string(args.size()));
  llvm::DenseMap<Value, Array> env;
  for (auto [i, arg] : llvm::enumerate(func.getArguments())) {
    if (llvm::Error e = checkAgainstType(args[i], arg.getType(),
                                         "argument #" + std::to_string(i)))
      return opError(func, llvm::toString(std::move(e)));
    Array value = args[i];
    value.elementType =
        llvm::cast<RankedTensorType>(arg.getType()).getElementType();
    if (llvm::Error e = checkIntegerValues(value, value.elementType,
                                           "argument #" + std::to_string(i)))
      return opError(func, llvm::toString(std::move(e)));
    env[arg] = std::move(value);
  }
  for (Operation &op : func.getBody().front()) {
    std::vector<const Array *> in;
    for (auto [i, operand] : llvm::enumerate(op.getOperands())) {
      auto it = env.find(operand);
      if (it == env.end())
        return opError(&op, "operand #" + std::to_string(i) +
                                " has no value (not a tensor of this "
                                "function?)");
      in.push_back(&it->second);
    }
    if (llvm::isa<func::ReturnOp>(op)) {
      std::vector<Array> results;
      for (const Array *a : in)
        results.push_back(*a);
      return results;
    }
    if (op.getNumRegions() != 0)
      return opError(&op, "ops with regions cannot be evaluated");
    for (auto [i, result] : llvm::enumerate(op.getResults())) {
      std::optional<Shape> shape = staticShape(result.getType());
      if (!shape)
        return opError(&op, "result #" + std::to_string(i) + " has type " +
                                str(result.getType()) +
                                ": the reference evaluator needs "
                                "statically shaped tensors (run "
                                "loom-specialize first)");
      std::optional<int64_t> elements = int64_t(1);
      for (int64_t d : *shape)
        if (elements)
          elements = llvm::checkedMul(*elements, d);
      if (!elements || *elements > kMaxElements)
        return opError(&op, "result #" + std::to_string(i) + " of type " +
                                str(result.getType()) +
                                " is too large for the reference evaluator");
    }
    llvm::Expected<std::vector<Array>> results = evalOp(&op, in, depth);
    if (!results)
      return opError(&op, llvm::toString(results.takeError()));
    if (results->size() != op.getNumResults())
      return opError(&op, "evaluated " + std::to_string(results->size()) +
                              " results, the op has " +
                              std::to_string(op.getNumResults()));
    for (auto [i, result] : llvm::enumerate(op.getResults())) {
      Array &value = (*results)[i];
      // Every kernel knows its own shape; this catches a disagreement with
      // the type MLIR inferred.
      if (llvm::Error e = checkAgainstType(value, result.getType(),
                                           "result #" + std::to_string(i)))
        return opError(&op, llvm::toString(std::move(e)));
      value.elementType =
          llvm::cast<RankedTensorType>(result.getType()).getElementType();
      env[result] = std::move(value);
    }
  }
  return opError(func, "function body has no func.return");
}

} // namespace

bool dropoutKeeps(uint64_t seed, int64_t site, uint64_t index, double rate) {
  uint64_t x = seed + uint64_t(site) * 0x9E3779B97F4A7C15ull +
               index * 0xD1B54A32D192ED03ull;
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  double u = double(x >> 40) * 0x1p-24; // in [0, 1), 24 random bits
  return u >= rate;
}

llvm::Expected<std::vector<Array>> evaluate(ModuleOp module,
                                            llvm::StringRef function,
                                            llvm::ArrayRef<Array> args,
                                            const ParamLookup &params) {
  if (!module)
    return fail("evaluate: null module");
  // The op accessors assume verified IR; report a broken module instead.
  std::string diagnostics;
  {
    ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &d) {
      diagnostics += (diagnostics.empty() ? "" : "; ") + d.str();
      return success();
    });
    if (failed(mlir::verify(module)))
      return fail("the module does not verify: " + diagnostics);
  }
  auto func = module.lookupSymbol<func::FuncOp>(function);
  if (!func)
    return fail("no func.func named '" + function + "' in the module");
  Interpreter interpreter(module, params);
  return interpreter.call(func, args, 0);
}

} // namespace loom::reference
