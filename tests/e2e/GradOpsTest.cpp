//===- GradOpsTest.cpp - The fused backward ops, JIT vs reference ---------===//
//
// The ops of ir/LoomGradOps.td are not primitives of the language (the
// autodiff pass emits them), so each case here is a small loom function
// written as MLIR: it is parsed, compiled with the CPU pipeline, JIT-run on
// random inputs and compared with the double-precision reference evaluator
// (tolerances as in Harness.h). The attention cases derive `out` and `lse`
// with loom.attention and loom.attention_lse in the same function, so the
// probabilities the backward recomputes are those of a real forward pass.
//
//===----------------------------------------------------------------------===//

#include "tests/e2e/Harness.h"

#include "codegen/cpu/CpuPipeline.h"
#include "ir/LoomDialect.h"

#include "loom/Tensor.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/Support/Error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using namespace loom;
using namespace loom::e2e;

namespace {

//===----------------------------------------------------------------------===//
// Compiling and running one MLIR function
//===----------------------------------------------------------------------===//

/// Deliberately leaked, like the harness's sessions: JIT engines must not be
/// destroyed from static destructors.
mlir::MLIRContext &context() {
  static mlir::MLIRContext *ctx = [] {
    mlir::DialectRegistry registry;
    registerCpuDialects(registry);
    registry.insert<LoomDialect>();
    auto *c = new mlir::MLIRContext(registry);
    c->loadAllAvailableDialects();
    return c;
  }();
  return *ctx;
}

/// `tensor<2x3xf32>` for shape {2, 3} and element "f32".
std::string tensor(const std::vector<int64_t> &shape, const char *elem) {
  std::string s = "tensor<";
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s + elem + ">";
}

/// One check: `source` defines `func.func @f`; `inputs[i]` generates
/// argument i (default normal(0, 1)).
struct GradCase {
  std::string family;
  std::string label;
  std::string source;
  std::map<int, Generator> inputs;
  /// For every output (all are f32).
  Tolerance tolerance = Tolerance::elementwise();
  uint64_t seed = 1;
};

/// The largest ratio |jit - ref| / allowed per family, for the summary.
struct Worst {
  double maxAbs = 0, maxRel = 0, ratio = 0;
};
std::map<std::string, Worst> &worstByFamily() {
  static std::map<std::string, Worst> worst;
  return worst;
}

class GradSummary : public ::testing::Environment {
public:
  void TearDown() override {
    if (worstByFamily().empty())
      return;
    std::printf("\n[grad] summary: max errors per family (ratio = worst "
                "error / allowed error)\n");
    for (const auto &[family, w] : worstByFamily())
      std::printf("[grad] %-28s max_abs %9.2e max_rel %9.2e ratio %7.4f\n",
                  family.c_str(), w.maxAbs, w.maxRel, w.ratio);
    std::fflush(stdout);
  }
};

[[maybe_unused]] ::testing::Environment *const gradSummary =
    ::testing::AddGlobalTestEnvironment(new GradSummary);

void storeElement(DType dtype, void *base, int64_t i, double v) {
  switch (dtype) {
  case DType::F32:
    static_cast<float *>(base)[i] = float(v);
    return;
  case DType::I32:
    static_cast<int32_t *>(base)[i] = int32_t(v);
    return;
  case DType::Bool:
    static_cast<uint8_t *>(base)[i] = v != 0;
    return;
  default:
    FAIL() << "GradOpsTest only feeds f32, i32 and bool inputs";
  }
}

/// Compiles `c.source`, runs it on random inputs, evaluates the reference
/// and checks every output (f32) against its tolerance.
void check(const GradCase &c) {
  std::string where = c.family + " | " + c.label;
  mlir::MLIRContext &ctx = context();
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  mlir::ScopedDiagnosticHandler handler(&ctx, [&](mlir::Diagnostic &d) {
    os << d.getLocation() << ": " << d.str() << "\n";
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(c.source, &ctx);
  ASSERT_TRUE(module) << where << ": parsing failed:\n"
                      << diagnostics << c.source;
  mlir::OwningOpRef<mlir::ModuleOp> loomModule(module->clone());
  std::vector<driver::Signature> sigs = driver::signaturesOf(*module);
  ASSERT_EQ(sigs.size(), 1u);
  const driver::Signature &sig = sigs.front();

  mlir::PassManager pm(&ctx);
  ASSERT_TRUE(mlir::succeeded(buildCpuPipeline(pm, CpuPipelineOptions())) &&
              mlir::succeeded(pm.run(*module)))
      << where << ": lowering failed:\n"
      << diagnostics;
  auto jit = JitModule::create(*module);
  ASSERT_TRUE(bool(jit)) << where << ": " << llvm::toString(jit.takeError());

  // Inputs, rounded to their dtype; the reference gets the same values.
  Rng rng(c.seed);
  std::vector<Array> inputs;
  std::vector<Tensor> buffers;
  float noParams = 0;
  std::vector<void *> pointers = {&noParams};
  for (size_t i = 0; i < sig.inputs.size(); ++i) {
    const driver::ArgSpec &arg = sig.inputs[i];
    auto it = c.inputs.find(int(i));
    Generator gen = it != c.inputs.end() ? it->second : normal();
    Array a;
    a.shape = arg.shape;
    a.data.assign(a.numElements(), 0.0);
    gen(arg, a.data, rng);
    Tensor t = Tensor::empty(arg.dtype, arg.shape);
    for (int64_t k = 0; k < a.numElements(); ++k) {
      a.data[k] = roundTo(arg.dtype, a.data[k]);
      storeElement(arg.dtype, t.rawData(), k, a.data[k]);
    }
    pointers.push_back(t.rawData());
    buffers.push_back(std::move(t));
    inputs.push_back(std::move(a));
  }
  // Outputs start as NaN, so that an element never written cannot pass.
  std::vector<Tensor> outputs;
  for (const driver::ArgSpec &out : sig.outputs) {
    ASSERT_EQ(out.dtype, DType::F32) << where;
    Tensor t = Tensor::empty(out.dtype, out.shape);
    std::memset(t.rawData(), 0xFF, t.nbytes());
    pointers.push_back(t.rawData());
    outputs.push_back(std::move(t));
  }
  if (llvm::Error err = (*jit)->call("f", pointers))
    FAIL() << where << ": JIT call failed: " << llvm::toString(std::move(err));

  auto ref = reference::evaluate(*loomModule, "f", inputs,
                                 [](llvm::StringRef) { return nullptr; });
  ASSERT_TRUE(bool(ref)) << where << ": the reference failed: "
                         << llvm::toString(ref.takeError());
  ASSERT_EQ(ref->size(), outputs.size()) << where;

  Worst &worst = worstByFamily()[c.family];
  for (size_t k = 0; k < outputs.size(); ++k) {
    const Array &r = (*ref)[k];
    ASSERT_EQ(r.shape, sig.outputs[k].shape) << where << ": output " << k;
    const Tolerance &tol = c.tolerance;
    const float *jitData = outputs[k].data<float>();
    double scale = 0;
    for (double v : r.data)
      if (std::isfinite(v))
        scale = std::max(scale, std::fabs(v));
    double allowedScale = std::max(scale, tol.floor);
    double maxAbs = 0, maxRel = 0, ratio = 0;
    int64_t worstAt = 0, bad = 0;
    for (int64_t i = 0; i < r.numElements(); ++i) {
      double err = std::fabs(double(jitData[i]) - r.data[i]);
      if (std::isnan(err))
        err = std::numeric_limits<double>::infinity();
      double allowed =
          tol.rel * std::fabs(r.data[i]) + tol.scaled * allowedScale;
      double q = err == 0 ? 0 : err / allowed;
      maxAbs = std::max(maxAbs, err);
      maxRel = std::max(maxRel, err / std::max(std::fabs(r.data[i]), 1e-3));
      if (q > ratio) {
        ratio = q;
        worstAt = i;
      }
      bad += q > 1;
    }
    std::printf("[grad] %-20s %-40s out %zu %-14s max_abs %9.2e max_rel "
                "%9.2e scale %8.2e ratio %7.4f%s\n",
                c.family.c_str(), c.label.c_str(), k,
                shapeString(r.shape).c_str(), maxAbs, maxRel, scale, ratio,
                bad ? "  MISMATCH" : "");
    worst.maxAbs = std::max(worst.maxAbs, maxAbs);
    worst.maxRel = std::max(worst.maxRel, maxRel);
    worst.ratio = std::max(worst.ratio, ratio);
    EXPECT_EQ(bad, 0) << where << ": output " << k << ": " << bad << " of "
                      << r.numElements()
                      << " elements outside the tolerance; worst at linear "
                      << worstAt << ": jit " << jitData[worstAt]
                      << ", reference " << r.data[worstAt];
  }
  std::fflush(stdout);
}

//===----------------------------------------------------------------------===//
// attention_lse, attention_grad
//===----------------------------------------------------------------------===//

struct AttentionShape {
  std::vector<int64_t> batch; // [B, ...]
  int64_t tq, tk, d, dv;
  bool causal;
  bool mask;
};

std::vector<int64_t> with(std::vector<int64_t> batch,
                          std::initializer_list<int64_t> tail) {
  batch.insert(batch.end(), tail);
  return batch;
}

std::string label(const AttentionShape &s) {
  std::string b;
  for (int64_t d : s.batch)
    b += std::to_string(d) + "x";
  return b + "Tq" + std::to_string(s.tq) + "xTk" + std::to_string(s.tk) + "xD" +
         std::to_string(s.d) + "xDv" + std::to_string(s.dv) +
         (s.causal ? " causal" : "") + (s.mask ? " mask" : "");
}

/// f(q, k, v, d_out[, mask]) -> (dq, dk, dv, lse): the forward attention and
/// its lse feed attention_grad.
GradCase attentionCase(const AttentionShape &s) {
  std::string q = tensor(with(s.batch, {s.tq, s.d}), "f32");
  std::string k = tensor(with(s.batch, {s.tk, s.d}), "f32");
  std::string v = tensor(with(s.batch, {s.tk, s.dv}), "f32");
  std::string o = tensor(with(s.batch, {s.tq, s.dv}), "f32");
  std::string lse = tensor(with(s.batch, {s.tq}), "f32");
  std::string m = tensor({s.batch[0], s.tk}, "i1");
  double scale = 1.0 / std::sqrt(double(s.d));
  std::string attrs = std::string("causal = ") + (s.causal ? "true" : "false") +
                      ", scale = " + std::to_string(scale);
  std::string maskOp = s.mask ? "mask %m, " : "";
  std::string maskType = s.mask ? ", " + m : "";
  GradCase c;
  c.family = "attention_grad";
  c.label = label(s);
  c.source =
      "func.func @f(%q: " + q + ", %k: " + k + ", %v: " + v + ", %do: " + o +
      (s.mask ? ", %m: " + m : "") + ") -> (" + q + ", " + k + ", " + v + ", " +
      lse + ") {\n" + "  %o = loom.attention %q, %k, %v, " + maskOp + attrs +
      " : " + q + ", " + k + ", " + v + maskType + "\n" +
      "  %lse = loom.attention_lse %q, %k, " + maskOp + attrs + " : " + q +
      ", " + k + maskType + " -> " + lse + "\n" +
      "  %dq, %dk, %dv = loom.attention_grad %q, %k, %v, %o, %lse, %do, " +
      maskOp + attrs + " : " + q + ", " + k + ", " + v + ", " + o + ", " + lse +
      maskType + "\n" + "  return %dq, %dk, %dv, %lse : " + q + ", " + k +
      ", " + v + ", " + lse + "\n}\n";
  if (s.mask)
    c.inputs[4] = bools(0.7);
  // Products over Tk, Tq and D, after a softmax over Tk.
  c.tolerance = Tolerance::accumulating(std::max({s.tq, s.tk, s.d, s.dv}) * 4);
  return c;
}

TEST(GradOps, AttentionGrad) {
  const std::vector<AttentionShape> shapes = {
      {{2, 3}, 5, 7, 8, 6, false, false}, // Tq != Tk, Dv != D
      {{2, 3}, 5, 7, 8, 8, true, true},   // causal with a key mask
      {{3}, 9, 9, 4, 5, true, false},     // rank 3, causal
      {{2}, 6, 4, 3, 3, true, true},      // Tq > Tk: early queries see none
      {{2}, 7, 11, 5, 2, false, true},    // mask only
      {{1, 2}, 32, 40, 16, 16, true, true}, {{1, 1}, 1, 1, 1, 1, false, false},
  };
  for (const AttentionShape &s : shapes) {
    SCOPED_TRACE(label(s));
    check(attentionCase(s));
  }
}

TEST(GradOps, AttentionLseEmptyRows) {
  // Every key masked for batch entry 0: its lse rows are 0.
  GradCase c;
  c.family = "attention_lse";
  c.label = "2x3x4x8, mask row 0 all false";
  c.source = R"(
func.func @f(%q: tensor<2x3x4x8xf32>, %k: tensor<2x3x6x8xf32>,
             %m: tensor<2x6xi1>) -> tensor<2x3x4xf32> {
  %0 = loom.attention_lse %q, %k, mask %m, causal = true, scale = 0.3
      : tensor<2x3x4x8xf32>, tensor<2x3x6x8xf32>, tensor<2x6xi1>
      -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}
)";
  c.inputs[2] = values({0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1});
  c.tolerance = Tolerance::accumulating(8);
  check(c);
}

//===----------------------------------------------------------------------===//
// cross_entropy_grad, layer_norm_grad, gelu_grad
//===----------------------------------------------------------------------===//

TEST(GradOps, CrossEntropyGrad) {
  struct Shape {
    std::vector<int64_t> rows;
    int64_t vocab;
    double ignored;
  };
  for (const Shape &s : std::vector<Shape>{{{3, 7}, 13, 0.3},
                                           {{4}, 64, 0.5},
                                           {{2, 1}, 1, 0.0},
                                           {{5}, 6, 1.0}}) {
    std::string logits = tensor(with(s.rows, {s.vocab}), "f32");
    std::string targets = tensor(s.rows, "i32");
    GradCase c;
    c.family = "cross_entropy_grad";
    c.label = logits + " ignored " + std::to_string(s.ignored);
    c.source = "func.func @f(%l: " + logits + ", %t: " + targets +
               ", %d: tensor<f32>) -> " + logits + " {\n" +
               "  %0 = loom.cross_entropy_grad %l, %t, %d, ignore_index = -100 "
               ": " +
               logits + ", " + targets +
               ", tensor<f32>\n  return %0 : " + logits + "\n}\n";
    c.inputs[0] = normal(0.0, 2.0);
    c.inputs[1] = integersWith(0, s.vocab, -100, s.ignored);
    c.inputs[2] = awayFromZero(0.5, 2.0);
    c.tolerance = Tolerance::accumulating(s.vocab);
    check(c);
  }
}

TEST(GradOps, LayerNormGrad) {
  for (const auto &shape : std::vector<std::vector<int64_t>>{
           {3, 5, 13}, {4, 64}, {7, 5}, {1, 33}, {6, 1}}) {
    std::string x = tensor(shape, "f32");
    std::string g = tensor({shape.back()}, "f32");
    GradCase c;
    c.family = "layer_norm_grad";
    c.label = x;
    c.source = "func.func @f(%x: " + x + ", %g: " + g + ", %dy: " + x +
               ") -> (" + x + ", " + g + ", " + g + ") {\n" +
               "  %dx, %dg, %db = loom.layer_norm_grad %x, %g, %dy, eps = "
               "1.0e-05 : " +
               x + ", " + g + "\n  return %dx, %dg, %db : " + x + ", " + g +
               ", " + g + "\n}\n";
    c.inputs[0] = normal(0.5, 2.0);
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i)
      rows *= shape[i];
    c.tolerance = Tolerance::accumulating(std::max(rows, shape.back()) * 4);
    check(c);
  }
}

TEST(GradOps, GeluGrad) {
  for (bool approximate : {false, true})
    for (const auto &shape :
         std::vector<std::vector<int64_t>>{{3, 7, 13}, {4, 67}, {1}}) {
      std::string x = tensor(shape, "f32");
      GradCase c;
      c.family = approximate ? "gelu_grad.tanh" : "gelu_grad.erf";
      c.label = x;
      c.source = "func.func @f(%x: " + x + ", %dy: " + x + ") -> " + x +
                 " {\n  %0 = loom.gelu_grad %x, %dy, approximate = " +
                 (approximate ? "true" : "false") + " : " + x +
                 "\n  return %0 : " + x + "\n}\n";
      c.inputs[0] = normal(0.0, 2.5);
      check(c);
    }
}

//===----------------------------------------------------------------------===//
// embedding_grad, lstm_grad
//===----------------------------------------------------------------------===//

TEST(GradOps, EmbeddingGrad) {
  struct Shape {
    std::vector<int64_t> ids;
    int64_t d, vocab, used; // ids drawn from [0, used): repeats, unused rows
  };
  for (const Shape &s : std::vector<Shape>{{{3, 7}, 13, 11, 5},
                                           {{2, 16}, 64, 40, 40},
                                           {{5}, 1, 3, 2},
                                           {{1, 1}, 8, 1, 1}}) {
    std::string ids = tensor(s.ids, "i32");
    std::string dy = tensor(with(s.ids, {s.d}), "f32");
    std::string table = tensor({s.vocab, s.d}, "f32");
    GradCase c;
    c.family = "embedding_grad";
    c.label = dy + " vocab " + std::to_string(s.vocab);
    c.source = "func.func @f(%ids: " + ids + ", %dy: " + dy + ") -> " + table +
               " {\n  %0 = loom.embedding_grad %ids, %dy, vocab = " +
               std::to_string(s.vocab) + " : " + ids + ", " + dy + " -> " +
               table + "\n  return %0 : " + table + "\n}\n";
    c.inputs[0] = integers(0, s.used);
    int64_t n = 1;
    for (int64_t d : s.ids)
      n *= d;
    c.tolerance = Tolerance::accumulating(n);
    check(c);
  }
}

TEST(GradOps, LstmGrad) {
  struct Shape {
    int64_t b, t, i, h;
  };
  for (const Shape &s : std::vector<Shape>{
           {2, 5, 3, 4}, {3, 7, 5, 8}, {1, 1, 2, 3}, {2, 12, 16, 32}}) {
    std::string x = tensor({s.b, s.t, s.i}, "f32");
    std::string st = tensor({s.b, s.h}, "f32");
    std::string wih = tensor({s.i, 4 * s.h}, "f32");
    std::string whh = tensor({s.h, 4 * s.h}, "f32");
    std::string bias = tensor({4 * s.h}, "f32");
    std::string out = tensor({s.b, s.t, s.h}, "f32");
    GradCase c;
    c.family = "lstm_grad";
    c.label = "B" + std::to_string(s.b) + " T" + std::to_string(s.t) + " I" +
              std::to_string(s.i) + " H" + std::to_string(s.h);
    c.source =
        "func.func @f(%x: " + x + ", %h0: " + st + ", %c0: " + st +
        ", %wih: " + wih + ", %whh: " + whh + ", %b: " + bias +
        ", %dout: " + out + ", %dh: " + st + ", %dc: " + st + ") -> (" + x +
        ", " + st + ", " + st + ", " + wih + ", " + whh + ", " + bias +
        ") {\n  %0:6 = loom.lstm_grad %x, %h0, %c0, %wih, %whh, %b, %dout, "
        "%dh, %dc : " +
        x + ", " + st + ", " + st + ", " + wih + ", " + whh + ", " + bias +
        ", " + out + "\n  return %0#0, %0#1, %0#2, %0#3, %0#4, %0#5 : " + x +
        ", " + st + ", " + st + ", " + wih + ", " + whh + ", " + bias + "\n}\n";
    // Weights of the usual 1/sqrt(H) size keep the gates out of saturation.
    double w = 1.0 / std::sqrt(double(s.h));
    c.inputs[3] = uniform(-w, w);
    c.inputs[4] = uniform(-w, w);
    c.inputs[5] = uniform(-w, w);
    // Sums over B*T rows (weights, bias), over 4H (inputs, states), and the
    // recurrence carries rounding through T steps.
    c.tolerance = Tolerance::accumulating(s.b * s.t * 4 * s.h);
    check(c);
  }
}

} // namespace
