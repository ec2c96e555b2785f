//===- Schedule.h - Learning-rate schedules and the LR finder ---*- C++ -*-===//
//
// `LrSchedule` maps an optimizer step (0-based) to a learning rate. It is a
// plain value: a kind, the base LR it scales, and the kind's parameters.
// `parseLrSchedule` reads the compact CLI spelling:
//
//   constant
//   step:size=100,gamma=0.5            base * gamma^floor(step / size)
//   exp:gamma=0.999                    base * gamma^step
//   cyclic:min=1e-4,max=1e-2,size=200  Smith's triangular policy
//   warmup-linear:warmup=100,total=1000,min=0
//   warmup-cosine:warmup=100,total=1000,min=1e-5
//
// `LrFinder` runs the LR range test (Smith 2017; fast.ai): an exponential
// sweep of LRs, one training step each, with the losses smoothed and the run
// stopped once the loss diverges; it suggests the LR where the smoothed loss
// falls fastest per unit of log(lr). docs/training.md has the formulas.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_SCHEDULE_H
#define LOOM_SCHEDULE_H

#include "loom/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

class LrSchedule {
public:
  enum class Kind {
    Constant,     // base
    Step,         // base * gamma^floor(step / stepSize)
    Exponential,  // base * gamma^step
    Cyclic,       // triangle between minLr and maxLr, half-cycle stepSize
    WarmupLinear, // linear warmup to base, linear decay to minLr at totalSteps
    WarmupCosine, // linear warmup to base, cosine decay to minLr at totalSteps
  };

  /// The constant schedule at 1e-3.
  LrSchedule() = default;

  static LrSchedule constant(double baseLr);
  static LrSchedule step(double baseLr, int64_t stepSize, double gamma);
  static LrSchedule exponential(double baseLr, double gamma);
  /// The base LR is not used: the LR moves between minLr and maxLr.
  static LrSchedule cyclic(double minLr, double maxLr, int64_t stepSize);
  static LrSchedule warmupLinear(double baseLr, int64_t warmupSteps,
                                 int64_t totalSteps, double minLr);
  static LrSchedule warmupCosine(double baseLr, int64_t warmupSteps,
                                 int64_t totalSteps, double minLr);

  /// The LR of optimizer step `step` (0-based; negative steps read as 0).
  ///  - Step:        base * gamma^floor(step / stepSize)
  ///  - Exponential: base * gamma^step
  ///  - Cyclic:      cycle = floor(1 + step / (2 stepSize)),
  ///                 x = |step / stepSize - 2 cycle + 1|,
  ///                 minLr + (maxLr - minLr) * max(0, 1 - x)
  ///                 (minLr at step 0, maxLr at stepSize, minLr at 2 stepSize)
  ///  - Warmup*:     step < warmup: base * (step + 1) / warmup (base is
  ///                 reached at step warmup - 1); then with
  ///                 p = (step - warmup) / (total - warmup) in [0, 1]:
  ///                 linear: minLr + (base - minLr) * (1 - p)
  ///                 cosine: minLr + (base - minLr) * (1 + cos(pi p)) / 2;
  ///                 minLr from step total on.
  double lr(int64_t step) const;

  /// The spec that parseLrSchedule reads back to this schedule (numbers in
  /// shortest round-trip form), e.g. "step:size=100,gamma=0.5".
  std::string spec() const;

  Kind kind() const { return type; }
  double baseLr() const { return base; }
  double gamma() const { return decay; }
  double minLr() const { return low; }
  double maxLr() const { return high; }
  int64_t stepSize() const { return size; }
  int64_t warmupSteps() const { return warmup; }
  int64_t totalSteps() const { return total; }

private:
  Kind type = Kind::Constant;
  double base = 1e-3;
  double decay = 1.0;
  double low = 0.0;
  double high = 0.0;
  int64_t size = 1;
  int64_t warmup = 0;
  int64_t total = 1;
};

/// Parses a schedule spec: `kind` or `kind:key=value,key=value`. Fields:
///   constant       (none)
///   step           size (integer > 0, required), gamma (> 0, default 0.1)
///   exp            gamma (> 0, required)
///   cyclic         min (>= 0), max (>= min), size (integer > 0); all required
///   warmup-linear, warmup-cosine
///                  warmup (integer >= 0, required), total (integer > 0,
///                  >= warmup, required), min (>= 0, default 0)
/// `baseLr` (> 0, finite) is the LR the schedule scales (unused by cyclic).
/// Errors name the spec and the bad field, e.g.
///   lr schedule 'step:size=x': field 'size': 'x' is not an integer
Result<LrSchedule> parseLrSchedule(std::string_view spec, double baseLr);

/// One step of the LR range test.
struct LrFinderPoint {
  double lr;
  double loss;
  /// Bias-corrected exponential moving average of the losses so far.
  double smoothedLoss;
};

/// The LR range test. Usage:
///
///   auto finder = LrFinder::create(1e-7, 10, 200);
///   while (!finder->done()) {
///     setLearningRate(finder->currentLr());
///     finder->record(trainOneStep());
///   }
///   Result<double> lr = finder->suggestion();
///   finder->writeCsv("lr_find.csv");
///
/// Step i of n uses lr_i = startLr * (endLr / startLr)^(i / (n - 1)).
/// Smoothing: avg_i = beta avg_{i-1} + (1 - beta) loss_i (avg_{-1} = 0),
/// smoothed_i = avg_i / (1 - beta^(i + 1)). The run stops after a step whose
/// smoothed loss exceeds divergeFactor times the best smoothed loss so far,
/// after a non-finite loss (which is not recorded), or after n steps.
class LrFinder {
public:
  /// Errors unless 0 < startLr < endLr (finite), steps >= 2,
  /// 0 <= beta < 1 and divergeFactor > 1.
  static Result<LrFinder> create(double startLr, double endLr, int64_t steps,
                                 double beta = 0.98,
                                 double divergeFactor = 4.0);

  /// The LR of sweep step `i` (0 <= i < steps).
  double lrAt(int64_t i) const;
  /// The LR to train the next step with (the last LR once done()).
  double currentLr() const;
  /// Records the loss of the step just trained at currentLr(). Returns
  /// false when the sweep is over (then done() is true); calls after that
  /// are ignored and return false.
  bool record(double loss);
  bool done() const { return finished; }
  /// Whether the run stopped early because the loss diverged (or was
  /// non-finite).
  bool diverged() const { return blewUp; }

  const std::vector<LrFinderPoint> &points() const { return history; }
  double bestSmoothedLoss() const { return best; }

  /// The suggested LR: the LR of the point where the smoothed loss has its
  /// steepest descent in log(lr). Slopes are finite differences of the
  /// smoothed loss over ln(lr): central at interior points, one-sided at the
  /// two ends. The first `skipStart` = min(10, n / 10) points (where the
  /// average rests on few losses) and the last `skipEnd` = min(5, n / 10)
  /// points are not candidates; the most negative slope wins (the earliest
  /// on ties). Errors with fewer than 3 points or when no candidate slope is
  /// negative (the loss never fell). Note: the moving average lags the raw
  /// loss by about beta / (1 - beta) steps (49 for beta = 0.98), which moves
  /// the suggestion towards larger LRs by that many steps of the sweep; use
  /// enough steps (a few hundred) that this is small.
  Result<double> suggestion() const;

  /// Writes `lr,loss,smoothed_loss` and one row per point (shortest
  /// round-trip numbers).
  Status writeCsv(const std::string &path) const;

private:
  LrFinder() = default;
  double start = 0, end = 0, beta = 0.98, divergeFactor = 4;
  int64_t steps = 0;
  double average = 0;
  double betaPower = 1;
  double best = 0;
  bool finished = false;
  bool blewUp = false;
  std::vector<LrFinderPoint> history;
};

} // namespace loom

#endif // LOOM_SCHEDULE_H
