//===- Checkpoint.h - safetensors checkpoints -------------------*- C++ -*-===//
//
// Checkpoints are standard safetensors files:
//
//   [u64 little-endian N][N bytes of JSON header, space padded to 8][data]
//   header: {"__metadata__": {"key": "value", ...},
//            "wte.weight": {"dtype": "F32", "shape": [256, 64],
//                           "data_offsets": [begin, end]}, ...}
//
// with offsets relative to the data section, which the tensors cover
// exactly. Saving is atomic (temp file, fsync, rename). Loading validates
// the whole file against the model before it writes a byte into the store,
// and reports any problem as an error, never a crash:
//   checkpoint 'x.safetensors': tensor 'wte.weight': shape [256, 64] does not
//   match the model's [256, 128]
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_CHECKPOINT_H
#define LOOM_CHECKPOINT_H

#include "loom/Params.h"
#include "loom/Status.h"
#include "loom/Tensor.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace loom {

/// Writes every parameter of `store` (in store order, packed) and `metadata`
/// to `path`: first to `path + ".tmp.<pid>"`, fsync, then renamed over
/// `path` (and the directory fsynced, best effort). On failure the temp file
/// is removed and `path` is untouched.
Status saveCheckpoint(const std::string &path, const ParamStore &store,
                      const std::map<std::string, std::string> &metadata = {});

/// Reads `path` into `store`. The file must hold exactly the store's
/// parameters with the same dtypes and shapes (in any order); a training
/// checkpoint's optimizer state (`optimizer.*`) is skipped. On error the
/// store is unchanged, unless reading the data itself fails midway.
Status loadCheckpoint(const std::string &path, ParamStore &store);

/// The "__metadata__" of `path` (empty if it has none), after validating the
/// file's header and layout (not against any model).
Result<std::map<std::string, std::string>>
readCheckpointMetadata(const std::string &path);

/// Every tensor of a safetensors file (any producer: a Hugging Face
/// model.safetensors as well as a Loom checkpoint), in header order, with its
/// dtype as stored, after the same validation as loadCheckpoint.
struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, Tensor>> tensors;
};
Result<SafetensorsFile> readSafetensors(const std::string &path);

} // namespace loom

#endif // LOOM_CHECKPOINT_H
