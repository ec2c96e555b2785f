//===- Import.h - Hugging Face checkpoints into Loom checkpoints -*- C++
//-*-===//
//
//   loom::ImportReport report =
//       loom::importHuggingFace("all-MiniLM-L6-v2/", "minilm.safetensors")
//           .value();
//   // then: loomc run examples/hf/bert.loom --ckpt minilm.safetensors ...
//
// Reads a Hugging Face model directory (config.json and model.safetensors)
// of a BERT-family encoder (model_type bert, roberta, distilbert or albert)
// or GPT-2, maps every tensor to the parameter of the Loom model file that
// has the same architecture (examples/hf/bert.loom, examples/hf/albert.loom,
// examples/gpt.loom), transposing
// linear layers' [out, in] weights and splitting GPT-2's fused query/key/value
// projection, and writes a Loom checkpoint. The model is configured from
// config.json, and the checkpoint's metadata records that configuration
// ("loom.config"), which loomc applies when it loads the checkpoint, with
// the directory's tokenizer files ("loom.tokenizer/..."; loom/Tokenizer.h),
// so the checkpoint alone tokenizes, runs and fine-tunes.
//
// Parameters the directory does not hold (a classification head added for
// fine-tuning) keep the model's initializer and are listed in the report;
// any other missing tensor, an unknown architecture, a configuration the
// model cannot express or a shape mismatch is an error naming the tensor.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_IMPORT_H
#define LOOM_IMPORT_H

#include "loom/Status.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace loom {

struct ImportOptions {
  /// The Loom model file to fill; empty: the one for the architecture in
  /// the examples directory (LOOM_EXAMPLES_DIR, else the source tree's).
  std::string modelFile;
  std::vector<std::string> includeDirs;
  /// Configuration values beyond those config.json gives (e.g. classes=3
  /// for a new classification head); config.json's values win where both
  /// name a value that the weights determine.
  std::map<std::string, std::string> config;
  /// Seed of the parameters the directory does not hold.
  uint64_t seed = 0;
};

struct ImportReport {
  /// config.json's model_type: "bert", "roberta", "distilbert", "albert" or
  /// "gpt2".
  std::string architecture;
  std::string modelFile;
  /// The Loom configuration the weights need (from config.json).
  std::map<std::string, std::string> config;
  /// Loom parameters not in the directory (initialized, not imported).
  std::vector<std::string> initialized;
  /// Tensors of the directory that the model has no use for (a pre-training
  /// head, buffers such as position_ids).
  std::vector<std::string> ignored;
  /// The tokenizer kept in the checkpoint ("wordpiece", "bpe"; empty when
  /// the directory has none).
  std::string tokenizer;
  /// Imported tensors and their floats.
  int64_t tensors = 0, parameters = 0;
};

/// Imports the Hugging Face model in directory `dir` into a Loom checkpoint
/// at `checkpointPath`.
Result<ImportReport> importHuggingFace(const std::string &dir,
                                       const std::string &checkpointPath,
                                       const ImportOptions &options = {});

/// The "loom.config" metadata of a checkpoint written by importHuggingFace
/// as configuration overrides (empty for other checkpoints).
Result<std::map<std::string, std::string>>
checkpointConfig(const std::string &checkpointPath);
/// The same from metadata already read; `where` names it in errors.
Result<std::map<std::string, std::string>>
configFromMetadata(const std::map<std::string, std::string> &metadata,
                   const std::string &where);

} // namespace loom

#endif // LOOM_IMPORT_H
