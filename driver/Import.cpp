//===- Import.cpp - Hugging Face checkpoints into Loom checkpoints --------===//
//
// 1. config.json -> the architecture, its Loom model file and configuration.
// 2. The Loom model compiled with that configuration gives the parameter
//    layout (names, shapes) and initial values.
// 3. Each tensor of model.safetensors is renamed (a table per architecture),
//    converted to f32, transposed or split as the Loom layout needs, checked
//    against the parameter's shape and copied in.
// 4. Parameters nothing filled must be ones a fine-tuning head adds;
//    then the checkpoint is written with the configuration in its metadata.
//
//===----------------------------------------------------------------------===//

#include "loom/Import.h"

#include "loom/Checkpoint.h"
#include "loom/Model.h"
#include "loom/Tokenizer.h"

#include "runtime/Json.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>

namespace loom {

namespace {

constexpr const char *kConfigKey = "loom.config";

/// Where one Hugging Face tensor goes: a Loom parameter, transposed (a
/// linear layer's [out, in] weight) or one of `parts` equal column blocks
/// of it (GPT-2's fused query/key/value projection).
struct Target {
  std::string name;
  bool transpose = false;
  int part = 0, parts = 1;
};

/// How one Hugging Face module's tensors map: `hf` is the module's name
/// ("attention.self.query."), `loom` the Loom block's ("attn.query.").
enum class Kind {
  Table,     // an embedding table: hf + "weight" as is
  Linear,    // torch.nn.Linear: [out, in] weight, transposed
  Conv1D,    // GPT-2's Conv1D: [in, out] weight, as is
  Qkv,       // GPT-2's fused query/key/value Conv1D, split in three
  LayerNorm, // weight and bias (gamma and beta in old checkpoints)
};
struct Rule {
  const char *hf, *loom;
  Kind kind;
};

/// An architecture: its model file, the rules for the tensors outside and
/// inside the layers, which Loom parameters may be missing (a head for
/// fine-tuning) and which of those start as zeros, not from the
/// initializer.
struct Architecture {
  std::string modelFile;             // relative to the examples directory
  std::vector<std::string> prefixes; // stripped from Hugging Face names
  std::vector<Rule> top;
  /// The layers: `hfLayers` + index + "." + a layer rule's name, as
  /// `loomLayers` + index + "." + the rule's Loom name; with `shared`, one
  /// layer without an index on either side (ALBERT).
  const char *hfLayers, *loomLayers;
  bool shared = false;
  std::vector<Rule> layer;
  std::vector<std::string> optional; // Loom name prefixes
  std::vector<std::string> zeros;
};

/// The targets of `rest` (the name after a module prefix) under `rule`,
/// with `loom` the Loom module's full prefix; empty when it does not match.
std::vector<Target> apply(const Rule &rule, llvm::StringRef rest,
                          const std::string &loom) {
  if (!rest.consume_front(rule.hf))
    return {};
  std::string leaf = rest.str();
  if (rule.kind == Kind::LayerNorm)
    leaf = leaf == "gamma" ? "weight" : leaf == "beta" ? "bias" : leaf;
  if (rule.kind == Kind::Table ? leaf != "weight"
                               : leaf != "weight" && leaf != "bias")
    return {};
  if (rule.kind == Kind::Qkv) {
    static const char *const parts[] = {"query.", "key.", "value."};
    std::vector<Target> qkv;
    for (int part = 0; part < 3; ++part)
      qkv.push_back(Target{loom + parts[part] + leaf, false, part, 3});
    return qkv;
  }
  return {Target{loom + leaf, rule.kind == Kind::Linear && leaf == "weight"}};
}

/// Where tensor `name` (module prefix stripped) goes under `arch`.
std::vector<Target> mapName(const Architecture &arch, llvm::StringRef name) {
  for (const Rule &rule : arch.top)
    if (auto targets = apply(rule, name, rule.loom); !targets.empty())
      return targets;
  if (!name.consume_front(arch.hfLayers))
    return {};
  std::string loom = arch.loomLayers;
  if (!arch.shared) {
    auto [index, rest] = name.split('.');
    unsigned value = 0;
    if (index.getAsInteger(10, value) || rest.empty())
      return {};
    loom += index.str() + ".";
    name = rest;
  }
  for (const Rule &rule : arch.layer)
    if (auto targets = apply(rule, name, loom + rule.loom); !targets.empty())
      return targets;
  return {};
}

/// BERT's embeddings (word, position, token type, their layer norm), then
/// `more` rules.
std::vector<Rule> withEmbeddings(std::vector<Rule> more) {
  std::vector<Rule> rules = {
      {"embeddings.word_embeddings.", "tok.", Kind::Table},
      {"embeddings.position_embeddings.", "pos.", Kind::Table},
      {"embeddings.token_type_embeddings.", "seg.", Kind::Table},
      {"embeddings.LayerNorm.", "ln.", Kind::LayerNorm}};
  rules.insert(rules.end(), more.begin(), more.end());
  return rules;
}

std::optional<Architecture> architectureOf(const std::string &modelType) {
  using K = Kind;
  if (modelType == "bert" || modelType == "roberta")
    return Architecture{
        "hf/bert.loom",
        {"bert.", "roberta."},
        withEmbeddings({{"pooler.dense.", "pooler.", K::Linear},
                        {"classifier.", "classifier.", K::Linear}}),
        "encoder.layer.",
        "encoder.",
        false,
        {{"attention.self.query.", "attn.query.", K::Linear},
         {"attention.self.key.", "attn.key.", K::Linear},
         {"attention.self.value.", "attn.value.", K::Linear},
         {"attention.output.dense.", "attn.out.", K::Linear},
         {"attention.output.LayerNorm.", "ln1.", K::LayerNorm},
         {"intermediate.dense.", "mlp.fc1.", K::Linear},
         {"output.dense.", "mlp.fc2.", K::Linear},
         {"output.LayerNorm.", "ln2.", K::LayerNorm}},
        {"pooler.", "classifier."},
        {}};
  if (modelType == "distilbert")
    return Architecture{"hf/bert.loom",
                        {"distilbert."},
                        {{"embeddings.word_embeddings.", "tok.", K::Table},
                         {"embeddings.position_embeddings.", "pos.", K::Table},
                         // A fine-tuned DistilBERT's classifier reads
                         // pre_classifier through a ReLU, which the Loom
                         // model lacks: both stay out, the head starts
                         // fresh.
                         {"embeddings.LayerNorm.", "ln.", K::LayerNorm}},
                        "transformer.layer.",
                        "encoder.",
                        false,
                        {{"attention.q_lin.", "attn.query.", K::Linear},
                         {"attention.k_lin.", "attn.key.", K::Linear},
                         {"attention.v_lin.", "attn.value.", K::Linear},
                         {"attention.out_lin.", "attn.out.", K::Linear},
                         {"sa_layer_norm.", "ln1.", K::LayerNorm},
                         {"ffn.lin1.", "mlp.fc1.", K::Linear},
                         {"ffn.lin2.", "mlp.fc2.", K::Linear},
                         {"output_layer_norm.", "ln2.", K::LayerNorm}},
                        {"pooler.", "classifier.", "seg."},
                        {"seg."}};
  if (modelType == "albert")
    return Architecture{
        "hf/albert.loom",
        {"albert."},
        withEmbeddings(
            {{"encoder.embedding_hidden_mapping_in.", "project.", K::Linear},
             {"pooler.", "pooler.", K::Linear},
             {"classifier.", "classifier.", K::Linear}}),
        // One group of one layer (the configuration is checked).
        "encoder.albert_layer_groups.0.albert_layers.0.",
        "encoder.",
        true,
        {{"attention.query.", "attn.query.", K::Linear},
         {"attention.key.", "attn.key.", K::Linear},
         {"attention.value.", "attn.value.", K::Linear},
         {"attention.dense.", "attn.out.", K::Linear},
         {"attention.LayerNorm.", "ln1.", K::LayerNorm},
         {"ffn.", "mlp.fc1.", K::Linear},
         {"ffn_output.", "mlp.fc2.", K::Linear},
         {"full_layer_layer_norm.", "ln2.", K::LayerNorm}},
        {"pooler.", "classifier."},
        {}};
  if (modelType == "gpt2")
    return Architecture{"gpt.loom",
                        {"transformer."},
                        {{"wte.", "wte.", K::Table},
                         {"wpe.", "wpe.", K::Table},
                         {"ln_f.", "lnf.", K::LayerNorm}},
                        "h.",
                        "blocks.",
                        false,
                        {{"ln_1.", "ln1.", K::LayerNorm},
                         {"attn.c_attn.", "self_attn.", K::Qkv},
                         {"attn.c_proj.", "self_attn.out.", K::Conv1D},
                         {"ln_2.", "ln2.", K::LayerNorm},
                         {"mlp.c_fc.", "mlp.fc1.", K::Conv1D},
                         {"mlp.c_proj.", "mlp.fc2.", K::Conv1D}},
                        {},
                        {}};
  return std::nullopt;
}

bool hasPrefix(const std::string &name, const std::vector<std::string> &list) {
  for (const std::string &prefix : list)
    if (llvm::StringRef(name).starts_with(prefix))
      return true;
  return false;
}

/// Reads config.json's values for one architecture into Loom's
/// configuration, refusing what the Loom model cannot express.
class ConfigReader {
public:
  ConfigReader(const json::Value &root, std::string path)
      : root(root), path(std::move(path)) {}

  /// The integer `key`; `fallback` when absent and one is given.
  Result<int64_t> integer(const char *key,
                          std::optional<int64_t> fallback = std::nullopt) {
    const json::Value *v = root.find(key);
    if (!v || v->kind == json::Value::Kind::Null) {
      if (fallback)
        return *fallback;
      return error(std::string("has no '") + key + "'");
    }
    if (v->kind != json::Value::Kind::Integer)
      return error(std::string("'") + key + "' is not an integer");
    return v->integer;
  }
  Result<double> number(const char *key, double fallback) {
    const json::Value *v = root.find(key);
    if (!v || v->kind == json::Value::Kind::Null)
      return fallback;
    if (v->kind != json::Value::Kind::Integer &&
        v->kind != json::Value::Kind::Number)
      return error(std::string("'") + key + "' is not a number");
    return v->number;
  }
  Result<std::string> string(const char *key, const std::string &fallback) {
    const json::Value *v = root.find(key);
    if (!v || v->kind == json::Value::Kind::Null)
      return fallback;
    if (v->kind != json::Value::Kind::String)
      return error(std::string("'") + key + "' is not a string");
    return v->string;
  }
  bool flag(const char *key) {
    const json::Value *v = root.find(key);
    return v && v->kind == json::Value::Kind::Bool && v->boolean;
  }
  Status error(const std::string &message) const {
    return Status::error(path + ": " + message);
  }

private:
  const json::Value &root;
  std::string path;
};

/// The shortest decimal text that reads back as `value` ("0.1", "1e-12").
std::string numberText(double value) {
  char text[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value)
      break;
  }
  return text;
}

/// Hugging Face's activation names as FeedForward's.
Result<std::string> activationOf(const std::string &name, ConfigReader &r) {
  if (name == "gelu")
    return std::string("gelu_exact");
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast")
    return std::string("gelu");
  if (name == "relu" || name == "tanh")
    return name;
  return r.error("activation '" + name +
                 "' has no Loom counterpart (gelu, gelu_new, "
                 "gelu_pytorch_tanh, relu or tanh)");
}

#define LOOM_TRY(var, expr)                                                    \
  auto var##Result = (expr);                                                   \
  if (!var##Result.ok())                                                       \
    return var##Result.status();                                               \
  auto var = std::move(var##Result.value())

Result<std::map<std::string, std::string>>
loomConfig(const std::string &modelType, ConfigReader &r) {
  std::map<std::string, std::string> c;
  auto put = [&](const char *key, int64_t value) {
    c[key] = std::to_string(value);
  };
  if (modelType == "bert" || modelType == "roberta") {
    LOOM_TRY(type, r.string("position_embedding_type", "absolute"));
    if (type != "absolute")
      return r.error("position_embedding_type '" + type +
                     "' is not supported (only absolute positions)");
    LOOM_TRY(vocab, r.integer("vocab_size"));
    LOOM_TRY(ctx, r.integer("max_position_embeddings"));
    LOOM_TRY(types, r.integer("type_vocab_size", 2));
    LOOM_TRY(d, r.integer("hidden_size"));
    LOOM_TRY(heads, r.integer("num_attention_heads"));
    LOOM_TRY(layers, r.integer("num_hidden_layers"));
    LOOM_TRY(ffn, r.integer("intermediate_size"));
    LOOM_TRY(pad, r.integer("pad_token_id", modelType == "roberta" ? 1 : 0));
    LOOM_TRY(eps, r.number("layer_norm_eps", 1e-12));
    LOOM_TRY(drop, r.number("hidden_dropout_prob", 0.1));
    LOOM_TRY(act, r.string("hidden_act", "gelu"));
    LOOM_TRY(activation, activationOf(act, r));
    put("vocab", vocab);
    put("ctx", ctx);
    put("types", types);
    put("d", d);
    put("heads", heads);
    put("layers", layers);
    put("ffn", ffn);
    put("pad", pad);
    // RoBERTa numbers positions from pad + 1 (padding_idx + 1).
    put("pos_offset", modelType == "roberta" ? pad + 1 : 0);
    c["eps"] = numberText(eps);
    c["drop"] = numberText(drop);
    c["activation"] = activation;
    return c;
  }
  if (modelType == "albert") {
    LOOM_TRY(groups, r.integer("num_hidden_groups", 1));
    LOOM_TRY(inner, r.integer("inner_group_num", 1));
    if (groups != 1 || inner != 1)
      return r.error("num_hidden_groups " + std::to_string(groups) +
                     " and inner_group_num " + std::to_string(inner) +
                     ": only one shared layer (1 and 1) is supported");
    LOOM_TRY(type, r.string("position_embedding_type", "absolute"));
    if (type != "absolute")
      return r.error("position_embedding_type '" + type +
                     "' is not supported (only absolute positions)");
    LOOM_TRY(vocab, r.integer("vocab_size"));
    LOOM_TRY(ctx, r.integer("max_position_embeddings"));
    LOOM_TRY(types, r.integer("type_vocab_size", 2));
    LOOM_TRY(embed, r.integer("embedding_size"));
    LOOM_TRY(d, r.integer("hidden_size"));
    LOOM_TRY(heads, r.integer("num_attention_heads"));
    LOOM_TRY(layers, r.integer("num_hidden_layers"));
    LOOM_TRY(ffn, r.integer("intermediate_size"));
    LOOM_TRY(pad, r.integer("pad_token_id", 0));
    LOOM_TRY(eps, r.number("layer_norm_eps", 1e-12));
    LOOM_TRY(drop, r.number("hidden_dropout_prob", 0.0));
    LOOM_TRY(act, r.string("hidden_act", "gelu_new"));
    LOOM_TRY(activation, activationOf(act, r));
    put("vocab", vocab);
    put("ctx", ctx);
    put("types", types);
    put("embed", embed);
    put("d", d);
    put("heads", heads);
    put("layers", layers);
    put("ffn", ffn);
    put("pad", pad);
    c["eps"] = numberText(eps);
    c["drop"] = numberText(drop);
    c["activation"] = activation;
    return c;
  }
  if (modelType == "distilbert") {
    LOOM_TRY(vocab, r.integer("vocab_size"));
    LOOM_TRY(ctx, r.integer("max_position_embeddings"));
    LOOM_TRY(d, r.integer("dim"));
    LOOM_TRY(heads, r.integer("n_heads"));
    LOOM_TRY(layers, r.integer("n_layers"));
    LOOM_TRY(ffn, r.integer("hidden_dim"));
    LOOM_TRY(pad, r.integer("pad_token_id", 0));
    LOOM_TRY(drop, r.number("dropout", 0.1));
    LOOM_TRY(act, r.string("activation", "gelu"));
    LOOM_TRY(activation, activationOf(act, r));
    put("vocab", vocab);
    put("ctx", ctx);
    put("types", 1);
    put("d", d);
    put("heads", heads);
    put("layers", layers);
    put("ffn", ffn);
    put("pad", pad);
    put("pos_offset", 0);
    c["eps"] = numberText(1e-12); // fixed in DistilBERT's code
    c["drop"] = numberText(drop);
    c["activation"] = activation;
    return c;
  }
  // gpt2
  LOOM_TRY(vocab, r.integer("vocab_size"));
  LOOM_TRY(ctx, r.integer("n_positions"));
  LOOM_TRY(d, r.integer("n_embd"));
  LOOM_TRY(heads, r.integer("n_head"));
  LOOM_TRY(layers, r.integer("n_layer"));
  LOOM_TRY(inner, r.integer("n_inner", 4 * d));
  LOOM_TRY(eps, r.number("layer_norm_epsilon", 1e-5));
  LOOM_TRY(drop, r.number("resid_pdrop", 0.1));
  LOOM_TRY(act, r.string("activation_function", "gelu_new"));
  LOOM_TRY(activation, activationOf(act, r));
  if (inner != 4 * d)
    return r.error("n_inner " + std::to_string(inner) +
                   " is not 4 * n_embd, which examples/gpt.loom assumes");
  if (std::abs(eps - 1e-5) > 1e-12)
    return r.error("layer_norm_epsilon " + numberText(eps) +
                   " is not 1e-5, which examples/gpt.loom assumes");
  if (activation != "gelu")
    return r.error("activation_function '" + act +
                   "' is not gelu_new, which examples/gpt.loom assumes");
  if (r.flag("scale_attn_by_inverse_layer_idx") ||
      r.flag("reorder_and_upcast_attn"))
    return r.error("scale_attn_by_inverse_layer_idx and "
                   "reorder_and_upcast_attn are not supported");
  put("vocab", vocab);
  put("ctx", ctx);
  put("d", d);
  put("heads", heads);
  put("layers", layers);
  c["drop"] = numberText(drop);
  return c;
}

/// `tensor` as f32 values (from f32, f16, bf16 or f64).
Result<std::vector<float>> floatsOf(const Tensor &tensor,
                                    const std::string &name) {
  int64_t n = tensor.numel();
  std::vector<float> out(static_cast<size_t>(n));
  const void *raw = tensor.rawData();
  switch (tensor.dtype()) {
  case DType::F32:
    std::memcpy(out.data(), raw, size_t(n) * sizeof(float));
    break;
  case DType::F64:
    for (int64_t i = 0; i < n; ++i)
      out[i] = float(static_cast<const double *>(raw)[i]);
    break;
  case DType::BF16:
    for (int64_t i = 0; i < n; ++i) {
      uint32_t bits = uint32_t(static_cast<const uint16_t *>(raw)[i]) << 16;
      std::memcpy(&out[i], &bits, 4);
    }
    break;
  case DType::F16:
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h = static_cast<const uint16_t *>(raw)[i];
      uint32_t sign = uint32_t(h & 0x8000) << 16;
      int exponent = (h >> 10) & 0x1f;
      uint32_t mantissa = h & 0x3ff;
      float value;
      if (exponent == 0)
        value = std::ldexp(float(mantissa), -24); // zero or subnormal
      else if (exponent == 31)
        value = mantissa ? NAN : INFINITY;
      else
        value = std::ldexp(float(mantissa | 0x400), exponent - 25);
      uint32_t bits;
      std::memcpy(&bits, &value, 4);
      bits |= sign;
      std::memcpy(&out[i], &bits, 4);
    }
    break;
  default:
    return Status::error("tensor '" + name + "' is " +
                         std::string(dtypeName(tensor.dtype())) +
                         ", not a floating-point type");
  }
  return out;
}

std::string examplesDir() {
  if (const char *dir = std::getenv("LOOM_EXAMPLES_DIR"))
    return dir;
  return LOOM_SOURCE_DIR "/examples";
}

} // namespace

Result<ImportReport> importHuggingFace(const std::string &dir,
                                       const std::string &checkpointPath,
                                       const ImportOptions &options) {
  auto fail = [&](const Status &status) -> Status {
    return status.withContext("import '" + dir + "'");
  };
  // 1. The architecture and its configuration.
  std::string configPath = dir + "/config.json";
  auto configText = llvm::MemoryBuffer::getFile(configPath);
  if (!configText)
    return fail(Status::error(
        configPath + ": cannot read: " + configText.getError().message()));
  json::Limits full;
  full.fullJson = true;
  Result<json::Value> root =
      json::parse((*configText)->getBuffer().str(), full);
  if (!root.ok())
    return fail(root.status().withContext(configPath));
  if (root->kind != json::Value::Kind::Object)
    return fail(Status::error(configPath + ": not a JSON object"));
  ConfigReader reader(root.value(), configPath);
  Result<std::string> modelType = reader.string("model_type", "");
  if (!modelType.ok())
    return fail(modelType.status());
  std::optional<Architecture> arch = architectureOf(*modelType);
  if (!arch)
    return fail(reader.error(
        "model_type '" + *modelType +
        "' is not supported (bert, roberta, distilbert, albert or gpt2)"));
  Result<std::map<std::string, std::string>> config =
      loomConfig(*modelType, reader);
  if (!config.ok())
    return fail(config.status());

  ImportReport report;
  report.architecture = *modelType;
  report.config = *config;
  report.modelFile = options.modelFile.empty()
                         ? examplesDir() + "/" + arch->modelFile
                         : options.modelFile;

  // 2. The Loom model with that configuration.
  CompileOptions compileOptions;
  compileOptions.includeDirs = options.includeDirs;
  compileOptions.seed = options.seed;
  compileOptions.diskCache = false;
  compileOptions.config = *config;
  for (const auto &[key, value] : options.config) {
    auto given = config->find(key);
    // Dropout is a training choice; the rest is fixed by the weights.
    if (given != config->end() && given->second != value && key != "drop")
      return fail(Status::error("configuration " + key + "=" + value +
                                " contradicts config.json, which gives " + key +
                                "=" + given->second));
    compileOptions.config[key] = value;
  }
  Result<Model> model = compile(report.modelFile, compileOptions);
  if (!model.ok())
    return fail(model.status());
  ParamStore &store = model->params();

  // 3. Every tensor renamed, converted and copied.
  std::string weightsPath = dir + "/model.safetensors";
  if (!llvm::sys::fs::exists(weightsPath))
    return fail(Status::error(
        weightsPath +
        ": no such file (only safetensors weights are read; "
        "convert a pytorch_model.bin with "
        "transformers' save_pretrained(safe_serialization=True))"));
  Result<SafetensorsFile> weights = readSafetensors(weightsPath);
  if (!weights.ok())
    return fail(weights.status());
  std::vector<std::string> filledBy(store.size());
  for (const auto &[hfName, tensor] : weights->tensors) {
    llvm::StringRef name = hfName;
    for (const std::string &prefix : arch->prefixes)
      if (name.consume_front(prefix))
        break;
    std::vector<Target> targets = mapName(*arch, name);
    if (targets.empty()) {
      report.ignored.push_back(hfName);
      continue;
    }
    Result<std::vector<float>> values = floatsOf(tensor, hfName);
    if (!values.ok())
      return fail(values.status());
    std::vector<int64_t> shape = tensor.shape();
    for (const Target &target : targets) {
      std::optional<size_t> index = store.indexOf(target.name);
      if (!index)
        return fail(Status::error("tensor '" + hfName + "' maps to '" +
                                  target.name + "', which " + report.modelFile +
                                  " does not have"));
      const ParamInfo &info = store.param(*index);
      if (!filledBy[*index].empty())
        return fail(Status::error("tensors '" + filledBy[*index] + "' and '" +
                                  hfName + "' both map to '" + target.name +
                                  "'"));
      // The Loom shape this tensor gives: transposed, or a column block.
      std::vector<int64_t> loomShape = shape;
      bool shapeOk = !shape.empty() && shape.size() <= 2;
      if (shapeOk && target.transpose && shape.size() == 2)
        std::swap(loomShape[0], loomShape[1]);
      if (shapeOk && target.parts > 1) {
        shapeOk = loomShape.back() % target.parts == 0;
        loomShape.back() /= target.parts;
      }
      if (!shapeOk || loomShape != info.shape)
        return fail(Status::error(
            "tensor '" + hfName + "' of shape " + shapeString(shape) +
            " does not fit '" + target.name + "' of shape " +
            shapeString(info.shape) +
            (target.transpose ? " (a linear layer's [out, in] weight, "
                                "transposed)"
                              : "")));
      if (info.dtype != DType::F32)
        return fail(Status::error("'" + target.name + "' is not f32"));
      float *out = reinterpret_cast<float *>(store.data() + info.offset);
      int64_t rows = shape.size() == 2 ? shape[0] : 1;
      int64_t cols = shape.back();
      const float *in = values->data();
      if (target.transpose && shape.size() == 2) {
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c)
            out[c * rows + r] = in[r * cols + c];
      } else {
        int64_t width = cols / target.parts;
        for (int64_t r = 0; r < rows; ++r)
          std::memcpy(out + r * width, in + r * cols + target.part * width,
                      size_t(width) * sizeof(float));
      }
      filledBy[*index] = hfName;
      ++report.tensors;
      report.parameters += int64_t(info.nbytes() / sizeof(float));
    }
  }

  // 4. What nothing filled must be a head the directory need not have.
  for (size_t i = 0; i < store.size(); ++i) {
    if (!filledBy[i].empty())
      continue;
    const ParamInfo &info = store.param(i);
    if (!hasPrefix(info.name, arch->optional))
      return fail(Status::error("'" + weightsPath + "' has no tensor for '" +
                                info.name + "' of " + report.modelFile +
                                " (shape " + shapeString(info.shape) + ")"));
    if (hasPrefix(info.name, arch->zeros))
      std::memset(store.data() + info.offset, 0, info.nbytes());
    report.initialized.push_back(info.name);
  }

  std::string configList;
  for (const auto &[key, value] : compileOptions.config)
    configList += (configList.empty() ? "" : ",") + key + "=" + value;
  std::map<std::string, std::string> metadata = {
      {kConfigKey, configList},
      {"loom.model_file", report.modelFile},
      {"hf.model_type", report.architecture}};
  // The tokenizer travels with the weights.
  if (llvm::sys::fs::exists(dir + "/tokenizer.json") ||
      llvm::sys::fs::exists(dir + "/vocab.txt") ||
      llvm::sys::fs::exists(dir + "/vocab.json")) {
    Result<TokenizerFiles> files = Tokenizer::readFiles(dir);
    if (!files.ok())
      return fail(files.status());
    Result<std::unique_ptr<Tokenizer>> tokenizer =
        Tokenizer::fromFiles(*files, dir);
    if (!tokenizer.ok())
      return fail(tokenizer.status());
    if ((*tokenizer)->vocabSize() > std::stoll(config->at("vocab")))
      return fail(Status::error("the tokenizer's vocabulary (" +
                                std::to_string((*tokenizer)->vocabSize()) +
                                " tokens) is larger than the model's (" +
                                config->at("vocab") + ")"));
    for (auto &[name, text] : *files)
      metadata[Tokenizer::kMetadataPrefix + name] = std::move(text);
    report.tokenizer = std::string((*tokenizer)->kind());
  }
  Status saved = saveCheckpoint(checkpointPath, store, metadata);
  if (!saved.ok())
    return fail(saved);
  return report;
}

Result<std::map<std::string, std::string>>
checkpointConfig(const std::string &checkpointPath) {
  auto metadata = readCheckpointMetadata(checkpointPath);
  if (!metadata.ok())
    return metadata.status();
  return configFromMetadata(*metadata, "checkpoint '" + checkpointPath + "'");
}

Result<std::map<std::string, std::string>>
configFromMetadata(const std::map<std::string, std::string> &metadata,
                   const std::string &where) {
  std::map<std::string, std::string> config;
  auto it = metadata.find(kConfigKey);
  if (it == metadata.end())
    return config;
  llvm::StringRef rest = it->second;
  while (!rest.empty()) {
    auto [item, tail] = rest.split(',');
    auto [key, value] = item.split('=');
    if (key.empty() || value.empty())
      return Status::error(where + ": " + kConfigKey + " entry '" + item.str() +
                           "' is not NAME=VALUE");
    config[key.str()] = value.str();
    rest = tail;
  }
  return config;
}

} // namespace loom
