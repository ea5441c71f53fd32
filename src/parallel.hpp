// Deterministic reductions over voters.
//
// Voters are split into "lanes" whose number depends only on (n, width), never on
// the thread count; each lane is summed serially and the lanes are combined
// serially in a fixed order, so 1 and N threads produce identical bits.
// Within a lane, voters are added in chunks of kChunk into a plain buffer which is
// then folded into the lane total with Neumaier compensation: the rounding error
// is O(kChunk * eps) instead of O(n * eps), which keeps 10^7 voters within 1e-12.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <optional>
#include <vector>

#ifdef UALIGN_HAS_OPENMP
#include <omp.h>
#endif

namespace ualign {

inline constexpr int64_t kChunk = 256;                    // voters per plain-summed chunk
inline constexpr int64_t kMaxLanes = 64;                  // upper bound on parallelism
inline constexpr int64_t kLaneBudget = int64_t(1) << 21;  // lanes * width doubles

struct VoterPartition {
  int64_t n;
  int64_t lanes;

  VoterPartition(int64_t n_voters, int64_t width) : n(n_voters) {
    const int64_t by_voters = std::max<int64_t>(1, (n + 4 * kChunk - 1) / (4 * kChunk));
    const int64_t by_memory = std::max<int64_t>(1, kLaneBudget / std::max<int64_t>(1, width));
    lanes = std::min({kMaxLanes, by_voters, by_memory});
  }
  int64_t begin(int64_t lane) const { return n * lane / lanes; }
  int64_t end(int64_t lane) const { return n * (lane + 1) / lanes; }
};

// Neumaier-compensated accumulation of `x` into (sum, comp).
inline void neumaier_add(double& sum, double& comp, double x) {
  const double t = sum + x;
  if (std::fabs(sum) >= std::fabs(x)) {
    comp += (sum - t) + x;
  } else {
    comp += (x - t) + sum;
  }
  sum = t;
}

// Parallel regions below this many elements of work run on one thread: waking
// a team costs more than it saves (and much more when the cores are busy).
inline constexpr int64_t kParallelMinWork = int64_t(1) << 16;

// out[i] = weights[i] / sum(weights), for finite weights >= 0 with a positive
// maximum (checked by the caller). Scaled by the largest weight first, so that
// huge finite weights cannot overflow the sum; the sum is compensated.
inline void normalise_weights(const double* weights, int64_t n, double* out) {
  double largest = 0.0;
  for (int64_t i = 0; i < n; ++i) largest = std::max(largest, weights[i]);
  double sum = 0.0, comp = 0.0;
  for (int64_t i = 0; i < n; ++i) neumaier_add(sum, comp, weights[i] / largest);
  sum += comp;
  for (int64_t i = 0; i < n; ++i) out[i] = (weights[i] / largest) / sum;
}

inline int max_threads() {
#ifdef UALIGN_HAS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// True inside an active (multi-threaded) OpenMP region: a kernel called from a
// loop that is already parallel (e.g. over the prompts of a batch audit) then
// runs its voters on the calling thread instead of nesting a second team. The
// lane partition, hence every bit of the result, is the same either way.
inline bool in_parallel_region() {
#ifdef UALIGN_HAS_OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

// An exception thrown inside an OpenMP region must not leave it (the process
// would terminate): every throwing step of a region runs through run(), which
// keeps the first exception caught; the region then skips its remaining work
// (failed()) and rethrow() raises that exception after the region.
class ExceptionTrap {
 public:
  template <class F>
  void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
#ifdef UALIGN_HAS_OPENMP
#pragma omp critical(ualign_exception_trap)
#endif
      {
        if (!error_) error_ = std::current_exception();
      }
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
  std::atomic<bool> failed_{false};
};

namespace detail {

// Sums lane `lane` of `part` into (sum, comp): chunks of kChunk voters added
// plainly into `chunk`, each chunk folded in with Neumaier compensation.
template <class Worker>
void sum_lane(const VoterPartition& part, int64_t lane, int64_t width, Worker& worker, double* chunk, double* sum,
              double* comp) {
  for (int64_t c0 = part.begin(lane); c0 < part.end(lane); c0 += kChunk) {
    const int64_t c1 = std::min(c0 + kChunk, part.end(lane));
    std::fill(chunk, chunk + width, 0.0);
    worker(c0, c1, chunk);
    for (int64_t j = 0; j < width; ++j) neumaier_add(sum[j], comp[j], chunk[j]);
  }
}

// out[j] = the lanes' totals combined serially, in lane order.
inline void combine_lanes(const VoterPartition& part, int64_t width, const double* lane_sum, const double* lane_comp,
                          double* out) {
  for (int64_t j = 0; j < width; ++j) {
    double s = 0.0, c = 0.0;
    for (int64_t lane = 0; lane < part.lanes; ++lane) {
      neumaier_add(s, c, lane_sum[lane * width + j]);
      neumaier_add(s, c, lane_comp[lane * width + j]);
    }
    out[j] = s + c;
  }
}

}  // namespace detail

// out[0..width) = sum over voters of the contributions that `worker(begin, end,
// acc)` adds into acc[0..width) for the voters [begin, end) (at most kChunk of
// them). `make_worker()` is called once per thread and returns an object owning
// that thread's scratch space.
template <class MakeWorker>
void sum_over_voter_ranges(int64_t n, int64_t width, double* out, MakeWorker make_worker) {
  const VoterPartition part(n, width);
  std::vector<double> lane_sum(static_cast<size_t>(part.lanes * width), 0.0);
  std::vector<double> lane_comp(static_cast<size_t>(part.lanes * width), 0.0);
  ExceptionTrap trap;

#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel if (part.lanes > 1 && !in_parallel_region())
#endif
  {
    // Every thread reaches the loop (a worksharing loop skipped by one thread
    // would hang the others); a thread whose set-up failed has set failed().
    std::optional<decltype(make_worker())> worker;
    std::vector<double> chunk;
    trap.run([&] {
      worker.emplace(make_worker());
      chunk.resize(static_cast<size_t>(width));
    });
#ifdef UALIGN_HAS_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (int64_t lane = 0; lane < part.lanes; ++lane) {
      if (trap.failed()) continue;
      trap.run([&] {
        detail::sum_lane(part, lane, width, *worker, chunk.data(), lane_sum.data() + lane * width,
                         lane_comp.data() + lane * width);
      });
    }
  }
  trap.rethrow();
  detail::combine_lanes(part, width, lane_sum.data(), lane_comp.data(), out);
}

// sum_over_voter_ranges on the calling thread, with caller-owned scratch that can be
// reused from call to call (no team, no allocation once warm): the same lanes,
// chunks and order of additions, hence the same bits. For callers that are already
// parallel over independent problems (the batch audit's loop over prompts).
struct SerialSumScratch {
  std::vector<double> lane_sum, lane_comp, chunk;
};

template <class Worker>
void sum_over_voter_ranges_serial(int64_t n, int64_t width, double* out, Worker& worker, SerialSumScratch& s) {
  const VoterPartition part(n, width);
  s.lane_sum.assign(static_cast<size_t>(part.lanes * width), 0.0);
  s.lane_comp.assign(static_cast<size_t>(part.lanes * width), 0.0);
  s.chunk.resize(static_cast<size_t>(width));
  for (int64_t lane = 0; lane < part.lanes; ++lane) {
    detail::sum_lane(part, lane, width, worker, s.chunk.data(), s.lane_sum.data() + lane * width,
                     s.lane_comp.data() + lane * width);
  }
  detail::combine_lanes(part, width, s.lane_sum.data(), s.lane_comp.data(), out);
}

// The same with a per-voter worker: `worker(i, acc)` adds voter i's contribution.
template <class MakeWorker>
void sum_over_voters(int64_t n, int64_t width, double* out, MakeWorker make_worker) {
  sum_over_voter_ranges(n, width, out, [&make_worker]() {
    return [worker = make_worker()](int64_t begin, int64_t end, double* acc) mutable {
      for (int64_t i = begin; i < end; ++i) worker(i, acc);
    };
  });
}

}  // namespace ualign
