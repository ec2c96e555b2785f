//===- GemmTeam.h - A GEMM's operands and its thread team -------*- C++ -*-===//
//
// Shared by the packed GEMM kernels (GemmIsa.cpp, once per ISA, and
// GemmAmx.cpp): one product's operands, and how a batch of products is
// spread over a team of OpenMP threads (libomp, the runtime of compiled
// code's parallel loops). Internal linkage: each kernel's copy is compiled
// with its own ISA flags, and an inline function shared between them could
// be merged into the widest one's code.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_RUNTIME_KERNELS_GEMMTEAM_H
#define LOOM_RUNTIME_KERNELS_GEMMTEAM_H

#include "runtime/kernels/Epilogue.h"

#include <algorithm>
#include <cstdint>
#include <utility>

extern "C" int omp_get_level(void);
extern "C" int omp_get_thread_num(void);
extern "C" int omp_get_num_threads(void);
extern "C" int omp_get_max_threads(void);

namespace loom::kernels {
namespace {

/// One GEMM's operands (one batch entry, or a thread's share of one) and
/// what finishes its blocks.
struct GemmOperands {
  const float *a;
  int64_t aRow, aCol;
  const float *b;
  int64_t bRow, bCol;
  float *c;
  int64_t cRow;
  bool accumulate;
  const GemmEpilogue *epilogue;
  int64_t epilogueRow, epilogueCol; // where C starts in the epilogue's view
};

/// x rounded up to a multiple of `to`.
constexpr int64_t roundUp(int64_t x, int64_t to) {
  return (x + to - 1) / to * to;
}

/// Whether a team of `team` takes whole batch entries (they spread evenly,
/// or are many) rather than a share of each entry.
inline bool teamTakesWholeEntries(int64_t batch, int team) {
  return batch % team == 0 || batch >= 4 * team;
}

/// Rows (or columns) of [0, extent) in whole units of `unit` for member `t`
/// of a team of `team`: even shares, the last one ragged.
inline std::pair<int64_t, int64_t> shareOf(int64_t extent, int64_t unit, int t,
                                           int team) {
  int64_t units = (extent + unit - 1) / unit;
  return {std::min(extent, units * t / team * unit),
          std::min(extent, units * (t + 1) / team * unit)};
}

/// Below this many multiply-adds a GEMM runs on the calling thread alone:
/// starting the team would cost more than it saves.
constexpr int64_t kMinTeamWork = int64_t(1) << 20;

/// The team for `work` multiply-adds when the caller allows `threads`: one
/// inside another parallel region (a GEMM per head already has its thread)
/// or for little work, else at most what compiled code's parallel loops get
/// (OMP_NUM_THREADS: a num_threads clause would override it).
inline int gemmTeamSize(int64_t threads, int64_t work) {
  int team = int(std::clamp<int64_t>(threads, 1, 64));
  if (team > 1 && (omp_get_level() > 0 || work < kMinTeamWork))
    team = 1;
  return std::min(team, std::max(1, omp_get_max_threads()));
}

/// Runs a batch of `batch` m x n x k products (`entry(bi)` gives entry bi's
/// operands) on a team of `team`: member t runs `blocked(t, m, n, k, o)` for
/// whole batch entries when they spread evenly (or are many), else for its
/// share of each entry: of the rows in units of `rowUnit` when M >= N, of
/// the columns in units of `colUnit` otherwise. Each member packs all of
/// the other operand into its own buffers, so the side whose duplicated
/// packing costs less is split. (Sharing one packed B panel between the
/// members instead, as BLIS does, was 5% slower at 1024^3 on 2 cores with
/// 2 MB L2 each: half of each member's B slivers then come from the other
/// core.)
template <typename Entry, typename Blocked>
void gemmOnTeam(int team, int64_t batch, int64_t m, int64_t n, int64_t k,
                int64_t rowUnit, int64_t colUnit, Entry entry,
                Blocked blocked) {
  if (team == 1) {
    for (int64_t bi = 0; bi < batch; ++bi)
      blocked(0, m, n, k, entry(bi));
    return;
  }
#pragma omp parallel num_threads(team)
  {
    int t = omp_get_thread_num(), size = omp_get_num_threads();
    if (teamTakesWholeEntries(batch, size)) {
      for (int64_t bi = t; bi < batch; bi += size)
        blocked(t, m, n, k, entry(bi));
    } else {
      // (An empty share returns at once: packing would still run.)
      for (int64_t bi = 0; bi < batch; ++bi) {
        GemmOperands o = entry(bi);
        if (m >= n) {
          auto [r0, r1] = shareOf(m, rowUnit, t, size);
          o.a += r0 * o.aRow;
          o.c += r0 * o.cRow;
          o.epilogueRow += r0;
          if (r1 > r0)
            blocked(t, r1 - r0, n, k, o);
        } else {
          auto [c0, c1] = shareOf(n, colUnit, t, size);
          o.b += c0 * o.bCol;
          o.c += c0;
          o.epilogueCol += c0;
          if (c1 > c0)
            blocked(t, m, c1 - c0, k, o);
        }
      }
    }
  }
}

} // namespace
} // namespace loom::kernels

#endif // LOOM_RUNTIME_KERNELS_GEMMTEAM_H
