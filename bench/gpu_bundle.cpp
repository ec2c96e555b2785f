//===- gpu_bundle.cpp - GPU numerics checks prepared on the CPU -----------===//
//
//   loom_gpu_bundle OUT [--arch sm_90]
//
// GPU machines have no LLVM or MLIR, so what runs there is prepared here:
// for every entry function of the examples (small dims, as the e2e tests
// bind them), for AdamW training steps of GPT and BERT and for GPT's logits
// with tf32 and bf16 tensor-core products, OUT/<case>/ gets
// the program (kernels.ptx, manifest.json from the NVPTX pipeline), seeded
// inputs (inputs/<i>.bin: random parameters, valid ids) and the outputs the
// CPU pipeline computes from them (expect/<i>.bin; the CPU pipeline matches
// the reference evaluator in CI), and OUT/<case>/args the loom-gpu-run
// flags of the check (a training step runs 3 chained steps). bench/gpu.sh
// runs them with tools/loom-gpu-run on the device.
//
//===----------------------------------------------------------------------===//

#include "codegen/nvptx/NvptxPipeline.h"
#include "driver/Session.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace loom;

namespace {

struct Example {
  const char *file, *model;
  std::vector<std::string> functions;
  std::map<std::string, int64_t> bindings;
  std::vector<std::string> steps; // losses whose AdamW step is checked
  /// Smaller widths than the defaults: the bundle travels (64 MiB).
  std::map<std::string, std::string> config;
};

const std::vector<Example> examples = {
    {"gpt.loom",
     "",
     {"logits", "loss"},
     {{"B", 2}, {"T", 8}},
     {"loss"},
     {{"d", "64"}, {"heads", "2"}, {"layers", "2"}}},
    {"bert.loom",
     "",
     {"encode", "mlm_logits", "nsp_logits", "classify", "loss",
      "finetune_loss"},
     {{"B", 2}, {"T", 8}},
     {"loss"},
     {{"d", "64"}, {"heads", "2"}, {"layers", "2"}}},
    {"transformer.loom",
     "",
     {"encode", "decode", "logits", "loss"},
     {{"B", 2}, {"S", 6}, {"T", 8}},
     {},
     {{"d", "64"}, {"heads", "2"}}},
    {"seq2seq_lstm.loom",
     "Seq2Seq",
     {"logits", "loss", "encode", "decode"},
     {{"B", 2}, {"S", 6}, {"T", 8}},
     {},
     {{"hidden", "64"}}},
    {"seq2seq_lstm.loom",
     "Seq2SeqKQV",
     {"logits", "loss", "encode", "decode"},
     {{"B", 2}, {"S", 6}, {"T", 8}},
     {},
     {{"hidden", "64"}}},
};

int fail(const std::string &message) {
  std::fprintf(stderr, "loom_gpu_bundle: error: %s\n", message.c_str());
  return 1;
}

bool writeFile(const std::string &path, const void *data, size_t bytes) {
  std::ofstream file(path, std::ios::binary);
  file.write(static_cast<const char *>(data), std::streamsize(bytes));
  return bool(file);
}

/// The bindings `function`'s signature uses.
std::map<std::string, int64_t>
bindingsFor(driver::Session &session, const std::string &function,
            const std::map<std::string, int64_t> &all) {
  std::map<std::string, int64_t> used;
  if (const driver::Signature *sig = session.findFunction(function))
    for (const auto &specs : {sig->inputs, sig->outputs})
      for (const driver::ArgSpec &arg : specs)
        for (const std::string &dim : arg.dims)
          if (auto it = all.find(dim); it != all.end())
            used.insert(*it);
  return used;
}

/// One case: program, inputs, expected outputs, runner flags. The
/// contractions' tensor-core mode and the tolerance go with it (3xtf32:
/// f32 accuracy; tf32 and bf16 products are checked to their rounding).
int prepare(driver::Session &session, const std::string &function,
            const std::map<std::string, int64_t> &bindings, bool step,
            const std::string &arch, const std::string &dir,
            const std::string &tensorCores = "3xtf32",
            const char *tolerance = "1e-4") {
  driver::Variant variant;
  if (step) {
    variant.kind = driver::Variant::TrainStep;
    variant.optimizer = "kind=adamw";
  }
  auto cpu = session.get(function, bindings, variant);
  if (!cpu)
    return fail(llvm::toString(cpu.takeError()));
  driver::CompiledFunction &fn = **cpu;

  // The GPU program.
  auto module = session.generate(function, bindings);
  if (!module)
    return fail(llvm::toString(module.takeError()));
  NvptxPipelineOptions options;
  options.arch = arch;
  options.tensorCores = tensorCores;
  if (step) {
    options.autodiff = "function=" + function;
    options.optimizer = "function=" + function + "_grad kind=adamw";
  }
  driver::DiagnosticCollector collected(&session.getContext());
  mlir::PassManager pm(&session.getContext());
  if (mlir::failed(buildNvptxPipeline(pm, options)) ||
      mlir::failed(pm.run(**module)))
    return fail("the NVPTX pipeline failed:\n" + collected.text());
  std::string bindingText;
  for (const auto &[name, value] : bindings)
    bindingText +=
        (bindingText.empty() ? "" : ",") + name + "=" + std::to_string(value);
  auto program = extractGpuProgram(**module, arch, bindingText);
  if (!program)
    return fail(llvm::toString(program.takeError()));
  for (const char *sub : {"", "/inputs", "/expect"})
    if (llvm::sys::fs::create_directories(dir + sub))
      return fail("cannot create " + dir + sub);
  std::string manifest = gpu::toManifest(*program);
  if (!writeFile(dir + "/kernels.ptx", program->ptx.data(),
                 program->ptx.size()) ||
      !writeFile(dir + "/manifest.json", manifest.data(), manifest.size()))
    return fail("cannot write the program to " + dir);

  // Parameters and inputs.
  auto params = ParamStore::create(session.params());
  if (!params.ok())
    return fail(params.status().message());
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(-0.2f, 0.2f);
  float *p = reinterpret_cast<float *>(params.value().data());
  for (size_t i = 0; i < params.value().totalBytes() / 4; ++i)
    p[i] = u(rng);
  std::vector<Tensor> buffers;
  std::vector<void *> pointers = {params.value().data()};
  for (const driver::ArgSpec &spec : fn.signature.inputs) {
    Tensor t = Tensor::empty(spec.dtype, spec.shape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (spec.dtype == DType::I32) {
        int64_t lo = spec.range ? spec.range->lo : 0;
        int64_t hi = spec.range ? spec.range->hi : 2;
        t.data<int32_t>()[i] = int32_t(lo + int64_t(rng() % uint64_t(hi - lo)));
      } else if (spec.dtype == DType::F32) {
        // A first training step: zero moments, lr 1e-3 and AdamW's bias
        // corrections 1 - beta^1; anything else random.
        bool moment = step && (spec.name == "m" || spec.name == "v");
        const float hyper[4] = {1e-3f, 0.1f, 0.001f, 0.0f};
        t.data<float>()[i] = spec.name == "hyper" ? hyper[i % 4]
                             : moment             ? 0.0f
                                                  : 2.0f * u(rng);
      } else if (spec.dtype == DType::I64) {
        t.data<int64_t>()[i] = int64_t(rng() % 1000);
      } else {
        static_cast<uint8_t *>(t.rawData())[i] = rng() & 1;
      }
    }
    pointers.push_back(t.rawData());
    buffers.push_back(std::move(t));
  }
  for (size_t i = 0; i < pointers.size(); ++i) {
    int64_t bytes = program->functions.front().args[i].bytes;
    if (!writeFile(dir + "/inputs/" + std::to_string(i) + ".bin", pointers[i],
                   bytes))
      return fail("cannot write inputs");
  }
  std::vector<Tensor> outputs;
  for (const driver::ArgSpec &spec : fn.signature.outputs) {
    outputs.push_back(Tensor::empty(spec.dtype, spec.shape));
    pointers.push_back(outputs.back().rawData());
  }
  // A training step runs three times, each updating the parameters and
  // moments in place for the next (the same hyperparameters: the check is
  // about the chain, not the schedule); what it updated is expected too.
  const gpu::Function &gf = program->functions.front();
  int runs = step ? 3 : 1;
  for (int s = 0; s < runs; ++s)
    if (llvm::Error err = fn.jit->call(fn.entry, pointers))
      return fail(llvm::toString(std::move(err)));
  for (size_t i = 0; i < pointers.size(); ++i)
    if (gf.args[i].output &&
        !writeFile(dir + "/expect/" + std::to_string(i) + ".bin", pointers[i],
                   gf.args[i].bytes))
      return fail("cannot write expected outputs");
  std::string args = "--fn " + gf.name + " --tol " + tolerance;
  if (step)
    args += " --steps 3";
  args += "\n";
  writeFile(dir + "/args", args.data(), args.size());
  std::printf("prepared %s (%zu launches)\n", dir.c_str(), gf.launches.size());
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2)
    return fail("usage: loom_gpu_bundle OUT [--arch sm_90]");
  std::string out = argv[1], arch = "sm_90";
  for (int i = 2; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--arch")
      arch = argv[i + 1];
  for (const Example &e : examples) {
    driver::SessionOptions options;
    options.model = e.model;
    options.config = e.config;
    options.useCache = false;
    auto session = driver::Session::open(
        std::string(LOOM_EXAMPLES_DIR) + "/" + e.file, options);
    if (!session)
      return fail(llvm::toString(session.takeError()));
    std::string stem = std::string(e.file).substr(0, std::strlen(e.file) - 5);
    if (*e.model)
      stem += std::string("_") + e.model;
    for (const std::string &fn : e.functions)
      if (int rc =
              prepare(**session, fn, bindingsFor(**session, fn, e.bindings),
                      false, arch, out + "/" + stem + "_" + fn))
        return rc;
    for (const std::string &fn : e.steps)
      if (int rc =
              prepare(**session, fn, bindingsFor(**session, fn, e.bindings),
                      true, arch, out + "/" + stem + "_" + fn + "_adamw_step"))
        return rc;
    // GPT's logits with one tf32 and with bf16 products, against the CPU's
    // f32: the first device run checks those kernels (and the bf16
    // lowering of loom-gpu-lower-bf16-mma, which the emulator does not
    // run) too. The emulator puts them at ~1e-3 and ~4e-3 of the scale.
    if (std::string(e.file) == "gpt.loom")
      for (auto [cores, tolerance] :
           {std::pair("tf32", "1e-2"), std::pair("bf16", "3e-2")})
        if (int rc = prepare(**session, "logits",
                             bindingsFor(**session, "logits", e.bindings),
                             false, arch, out + "/" + stem + "_logits_" + cores,
                             cores, tolerance))
          return rc;
  }
  return 0;
}
