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

// work(p, scratch, serial) for p < n_prompts. voters[p] and widths[p] (the reduction
// width of the prompt's kernel) decide which prompts are large: those run one after
// the other with serial = false (their kernels open their own team); the small ones
// are spread over the threads with serial = true (their kernels sum on the calling
// thread). `scratch` is a Scratch owned by the calling thread, reused from prompt to
// prompt. The work of the small prompts sizes the parallel region.
template <class Scratch, class Work>
void for_each_prompt(const std::vector<int64_t>& voters, const std::vector<int64_t>& widths, Work&& work) {
  const int64_t n_prompts = static_cast<int64_t>(voters.size());
  std::vector<int64_t> small;
  int64_t small_work = 0;
  ExceptionTrap error;  // none may escape the parallel region
  for (int64_t p = 0; p < n_prompts; ++p) {
    const size_t j = static_cast<size_t>(p);
    if (VoterPartition(voters[j], widths[j]).lanes > 1) {
      error.run([&] {
        Scratch scratch;
        work(p, scratch, false);
      });
    } else {
      small.push_back(p);
      small_work += voters[j] * widths[j];
    }
  }
  const int64_t n_small = static_cast<int64_t>(small.size());
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel if (n_small > 1 && small_work >= kParallelMinWork)
#endif
  {
    Scratch scratch;
#ifdef UALIGN_HAS_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (int64_t j = 0; j < n_small; ++j) {
      const int64_t p = small[static_cast<size_t>(j)];
      if (!error.failed()) error.run([&] { work(p, scratch, true); });
    }
  }
  error.rethrow();
}

}  // namespace ualign
