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
#include <cmath>
#include <cstdint>
#include <vector>

#ifdef UALIGN_HAS_OPENMP
#include <omp.h>
#endif

namespace ualign {

inline constexpr int64_t kChunk = 256;        // voters per plain-summed chunk
inline constexpr int64_t kMaxLanes = 64;      // upper bound on parallelism
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

// out[0..width) = sum over voters of the contributions that `worker(begin, end,
// acc)` adds into acc[0..width) for the voters [begin, end) (at most kChunk of
// them). `make_worker()` is called once per thread and returns an object owning
// that thread's scratch space.
template <class MakeWorker>
void sum_over_voter_ranges(int64_t n, int64_t width, double* out, MakeWorker make_worker) {
  const VoterPartition part(n, width);
  std::vector<double> lane_sum(static_cast<size_t>(part.lanes * width), 0.0);
  std::vector<double> lane_comp(static_cast<size_t>(part.lanes * width), 0.0);

#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel if (part.lanes > 1 && !in_parallel_region())
#endif
  {
    auto worker = make_worker();
    std::vector<double> chunk(static_cast<size_t>(width));
#ifdef UALIGN_HAS_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (int64_t lane = 0; lane < part.lanes; ++lane) {
      double* sum = lane_sum.data() + lane * width;
      double* comp = lane_comp.data() + lane * width;
      for (int64_t c0 = part.begin(lane); c0 < part.end(lane); c0 += kChunk) {
        const int64_t c1 = std::min(c0 + kChunk, part.end(lane));
        std::fill(chunk.begin(), chunk.end(), 0.0);
        worker(c0, c1, chunk.data());
        for (int64_t j = 0; j < width; ++j) neumaier_add(sum[j], comp[j], chunk[static_cast<size_t>(j)]);
      }
    }
  }

  for (int64_t j = 0; j < width; ++j) {
    double s = 0.0, c = 0.0;
    for (int64_t lane = 0; lane < part.lanes; ++lane) {
      neumaier_add(s, c, lane_sum[static_cast<size_t>(lane * width + j)]);
      neumaier_add(s, c, lane_comp[static_cast<size_t>(lane * width + j)]);
    }
    out[j] = s + c;
  }
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
