// Kernels over a batch of prompts (independent populations of ragged sizes), the
// unit every solver iterates on: a single prompt is a batch of one.
//
// Each prompt is computed with the per-prompt kernel and its fixed voter
// partition, so every value has the bits of the per-prompt call for any number of
// threads. Small prompts are spread over the threads (their kernels then run on the
// calling thread: see in_parallel_region); a prompt large enough to split its
// voters into several lanes runs alone with the threads of its own kernel.
#pragma once

#include <cstdint>
#include <vector>

#include "parallel.hpp"
#include "ranking_kernels.hpp"

namespace ualign {

// work(p) for p < n_prompts. voters[p] and widths[p] (the reduction width of the
// prompt's kernel) decide which prompts are large; work_per_prompt[p] sizes the
// parallel region.
template <class Work>
void for_each_prompt(const std::vector<int64_t>& voters, const std::vector<int64_t>& widths, Work&& work) {
  const int64_t n_prompts = static_cast<int64_t>(voters.size());
  std::vector<int64_t> small;
  int64_t small_work = 0;
  ExceptionTrap error;  // none may escape the parallel region
  for (int64_t p = 0; p < n_prompts; ++p) {
    const size_t j = static_cast<size_t>(p);
    if (VoterPartition(voters[j], widths[j]).lanes > 1) {
      error.run([&] { work(p); });  // with the threads of its own kernel
    } else {
      small.push_back(p);
      small_work += voters[j] * widths[j];
    }
  }
  const int64_t n_small = static_cast<int64_t>(small.size());
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (n_small > 1 && small_work >= kParallelMinWork)
#endif
  for (int64_t j = 0; j < n_small; ++j) {
    const int64_t p = small[static_cast<size_t>(j)];
    if (!error.failed()) error.run([&] { work(p); });
  }
  error.rethrow();
}

}  // namespace ualign
