// Bindings of the exact committee pricing (branch and bound, committee_pricing.hpp).
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "bindings.hpp"
#include "committee_pricing.hpp"

namespace ualign::bind {

namespace {

std::vector<int64_t> members(const array_of<int64_t>& start, int64_t m) {
  require_ndim(start, 1, "start");
  std::vector<int64_t> out(start.data(), start.data() + start.shape(0));
  for (int64_t z : out)
    if (z < 0 || z >= m) throw std::invalid_argument("start: members must be responses 0..m-1");
  return out;
}

py::tuple solve(const PricingProblem& p, const std::vector<int64_t>& start, int64_t keep, double target,
                int64_t max_nodes, double seconds) {
  if (keep < 1) throw std::invalid_argument("keep: expected a positive count");
  if (max_nodes < 1) throw std::invalid_argument("max_nodes: expected a positive count");
  if (!(seconds >= 0.0)) throw std::invalid_argument("seconds: expected a non-negative time");
  PricingOutcome out;
  {
    py::gil_scoped_release release;
    out = price_committee(p, start, keep, target, max_nodes, seconds);
  }
  py::list committees, values;
  for (size_t c = 0; c < out.committees.size(); ++c) {
    py::tuple S(out.committees[c].size());
    for (size_t j = 0; j < out.committees[c].size(); ++j) S[j] = py::int_(out.committees[c][j]);
    committees.append(S);
    values.append(py::float_(out.values[c]));
  }
  return py::make_tuple(committees, values, out.bound, out.finished, out.nodes);
}

}  // namespace

void register_committee(py::module_& m) {
  m.def(
      "price_set_committee",
      [](const array_of<double>& single, int64_t size, const array_of<int64_t>& start, int64_t keep, double target,
         int64_t max_nodes, double seconds) {
        require_ndim(single, 2, "single");
        PricingProblem p;
        p.m = single.shape(0), p.n = single.shape(1), p.size = size, p.single = single.data();
        if (size < 1 || size > p.m) throw std::invalid_argument("size: expected 1..m distinct members");
        return solve(p, members(start, p.m), keep, target, max_nodes, seconds);
      },
      "Branch and bound: max over sets S of `size` responses of sum_i max_{z in S} single[z, i]. "
      "Returns (the `keep` best committees found, their values, upper bound, finished, nodes).");
  m.def(
      "price_multiset_committee",
      [](const array_of<double>& below, const array_of<double>& tied, const array_of<int64_t>& level, int64_t size,
         const array_of<int64_t>& start, int64_t keep, double target, int64_t max_nodes, double seconds) {
        require_ndim(below, 2, "below");
        require_ndim(tied, 2, "tied");
        require_ndim(level, 2, "level");
        PricingProblem p;
        p.m = below.shape(0), p.n = below.shape(1), p.size = size, p.multiset = true;
        if (tied.shape(0) != p.m || tied.shape(1) != p.n || level.shape(0) != p.m || level.shape(1) != p.n)
          throw std::invalid_argument("tied: below, tied and level must have the same shape");
        if (size < 1) throw std::invalid_argument("size: expected a positive number of members");
        p.below = below.data(), p.tied = tied.data(), p.level = level.data();
        return solve(p, members(start, p.m), keep, target, max_nodes, seconds);
      },
      "Branch and bound: max over multisets S of `size` responses of sum_i (below + c/(c+1) tied) at S's best "
      "level in voter i's ranking (c: members of S there). Returns (the `keep` best committees found, their values, "
      "upper bound, finished, nodes).");
}

}  // namespace ualign::bind
