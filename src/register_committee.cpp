// Bindings of the exact committee pricing (branch and bound, committee_pricing.hpp).
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "committee_pricing.hpp"
#include "opponent_tables.hpp"
#include "ranking_store.hpp"

namespace ualign::bind {

namespace {

std::vector<int64_t> members(const array_of<int64_t>& start, int64_t m, const std::string& name = "start") {
  require_ndim(start, 1, name);
  std::vector<int64_t> out(start.data(), start.data() + start.shape(0));
  for (int64_t z : out)
    if (z < 0 || z >= m) throw std::invalid_argument(name + ": members must be responses 0..m-1");
  return out;
}

py::tuple solve(const PricingProblem& p, const std::vector<int64_t>& start, int64_t keep, double target,
                int64_t max_nodes, double seconds, bool enough) {
  if (keep < 1) throw std::invalid_argument("keep: expected a positive count");
  if (max_nodes < 1) throw std::invalid_argument("max_nodes: expected a positive count");
  if (!(seconds >= 0.0)) throw std::invalid_argument("seconds: expected a non-negative time");
  PricingOutcome out;
  {
    py::gil_scoped_release release;
    out = price_committee(p, start, keep, target, max_nodes, seconds, enough);
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

// The best multiset of `size` responses against the operand, max_M P[M > operand]
// under `ties`: a multiset search over the tabulated values under "uniform" ties,
// else a set search over min(size, m) distinct responses (a repeat adds nothing
// there), whose value table is the c = 1 column. It serves both sides of the
// game: the worst opponent Y of a policy (ties mirrored), and the pricing of
// committee columns against the master LP's dual mixture of opponent multisets.
// Nodes that cannot beat `target` are pruned (values are probabilities, so a
// negative target prunes nothing).
py::tuple price_opponent(const RankingStore& s, const py::tuple& operand, int ties, int64_t size,
                         const array_of<int64_t>& start, int64_t keep, int64_t max_nodes, double seconds,
                         double target) {
  const Ties convention = ties_from_int(ties);
  const OperandArrays x(operand, s.m(), "operand");
  if (size < 1) throw std::invalid_argument("size: expected a positive number of members");
  const bool multiset = convention == Ties::uniform;
  const int64_t n = s.n(), m = s.m(), columns = multiset ? size : 1;
  const std::vector<int64_t> first = members(start, m);
  const int64_t members_needed = multiset ? size : std::min(size, m);
  if (!first.empty() && int64_t(first.size()) != members_needed)
    throw std::invalid_argument("start: expected " + std::to_string(members_needed) + " members or none");
  std::vector<double> table;
  std::vector<int64_t> level;
  {
    py::gil_scoped_release release;
    table.resize(size_t(n * m * columns));
    s.visit([&](const auto& view) { multiset_value_table(view, x.view, convention, columns, table.data()); });
    if (multiset) {
      level.resize(size_t(n * m));
      s.visit([&](const auto& view) {
        for (int64_t i = 0; i < n; ++i)
          for (int64_t z = 0; z < m; ++z) level[z * n + i] = view.row(i)[z];
      });
    }
  }
  PricingProblem p;
  p.n = n, p.m = m, p.size = members_needed, p.multiset = multiset;
  if (multiset)
    p.by_count = table.data(), p.level = level.data();
  else
    p.single = table.data();
  return solve(p, first, keep, target, max_nodes, seconds, false);
}

}  // namespace

void register_committee(py::module_& m) {
  m.def(
      "price_set_committee",
      [](const array_of<double>& single, int64_t size, const array_of<int64_t>& start, int64_t keep, double target,
         int64_t max_nodes, double seconds, bool enough) {
        require_ndim(single, 2, "single");
        PricingProblem p;
        p.m = single.shape(0), p.n = single.shape(1), p.size = size, p.single = single.data();
        if (size < 1 || size > p.m) throw std::invalid_argument("size: expected 1..m distinct members");
        return solve(p, members(start, p.m), keep, target, max_nodes, seconds, enough);
      },
      "Branch and bound: max over sets S of `size` responses of sum_i max_{z in S} single[z, i]. "
      "Returns (the `keep` best committees found, their values, upper bound, finished, nodes); with `enough`, "
      "stops once `keep` committees beat `target`.");
  m.def(
      "price_multiset_committee",
      [](const array_of<double>& below, const array_of<double>& tied, const array_of<int64_t>& level, int64_t size,
         const array_of<int64_t>& start, int64_t keep, double target, int64_t max_nodes, double seconds, bool enough) {
        require_ndim(below, 2, "below");
        require_ndim(tied, 2, "tied");
        require_ndim(level, 2, "level");
        PricingProblem p;
        p.m = below.shape(0), p.n = below.shape(1), p.size = size, p.multiset = true;
        if (tied.shape(0) != p.m || tied.shape(1) != p.n || level.shape(0) != p.m || level.shape(1) != p.n)
          throw std::invalid_argument("tied: below, tied and level must have the same shape");
        if (size < 1) throw std::invalid_argument("size: expected a positive number of members");
        p.below = below.data(), p.tied = tied.data(), p.level = level.data();
        return solve(p, members(start, p.m), keep, target, max_nodes, seconds, enough);
      },
      "Branch and bound: max over multisets S of `size` responses of sum_i (below + c/(c+1) tied) at S's best "
      "level in voter i's ranking (c: members of S there). Returns (the `keep` best committees found, their values, "
      "upper bound, finished, nodes); with `enough`, stops once `keep` committees beat `target`.");
  m.def(
      "committee_add_values",
      [](const array_of<double>& level, const array_of<double>& alone, const array_of<double>& best,
         const array_of<double>& same, const array_of<double>& old, const array_of<double>& w) {
        require_ndim(level, 2, "level");
        const int64_t n = level.shape(0), m = level.shape(1);
        require_ndim(alone, 2, "alone");
        if (alone.shape(0) != n || alone.shape(1) != m) throw std::invalid_argument("alone: need the shape of level");
        require_ndim(best, 1, "best");
        require_ndim(same, 1, "same");
        require_ndim(old, 1, "old");
        require_ndim(w, 1, "w");
        if (best.shape(0) != n || same.shape(0) != n || old.shape(0) != n || w.shape(0) != n)
          throw std::invalid_argument("best, same, old, w: need one entry per voter");
        py::array_t<double> out(m);
        {
          py::gil_scoped_release release;
          committee_add_values(n, m, level.data(), alone.data(), best.data(), same.data(), old.data(), w.data(),
                               out.mutable_data());
        }
        return out;
      },
      py::arg("level"), py::arg("alone"), py::arg("best"), py::arg("same"), py::arg("old"), py::arg("w"),
      "The pricing value of S + {z} for every response z (the committee heuristics' step): sum_i w[i] * "
      "(alone[i, z] if level[i, z] < best[i], same[i] if equal, old[i] if worse).");
  m.def("price_opponent", &price_opponent, py::arg("store"), py::arg("operand"), py::arg("ties"), py::arg("size"),
        py::arg("start"), py::arg("keep"), py::arg("max_nodes"), py::arg("seconds"), py::arg("target") = -1.0,
        "Branch and bound: max over multisets Y of `size` responses of P[Y > operand] under `ties` (exactly; the "
        "same as the committee searches), pruning nodes that cannot beat `target`. Returns (the `keep` best "
        "multisets found, their values, upper bound, finished, nodes); under ties other than 'uniform' the "
        "multisets are sets of min(size, m) responses.");
  m.def(
      "opponent_gradient",
      [](const RankingStore& s, const array_of<int64_t>& multiset, const array_of<double>& pi, int64_t k, int ties) {
        const Ties convention = ties_from_int(ties);
        const std::vector<int64_t> Y = members(multiset, s.m(), "multiset");
        if (Y.empty()) throw std::invalid_argument("multiset: expected at least one member");
        require_ndim(pi, 1, "policy");
        if (pi.shape(0) != s.m()) throw std::invalid_argument("policy: need one entry per response");
        double total = 0.0;
        for (int64_t y = 0; y < s.m(); ++y) {
          if (!(pi.at(y) >= 0.0) || !std::isfinite(pi.at(y)))
            throw std::invalid_argument("policy: entries must be finite and >= 0");
          total += pi.at(y);
        }
        if (!(total > 0.0)) throw std::invalid_argument("policy: must have a positive total mass");
        check_k(k, "k: ");
        py::array_t<double> out(s.m() + 1);
        double* result = out.mutable_data();
        {
          py::gil_scoped_release release;
          s.visit([&](const auto& view) { multiset_product_gradient(view, Y, pi.data(), k, convention, result); });
        }
        return py::make_tuple(result[0], out[py::slice(1, s.m() + 1, 1)]);
      },
      py::arg("store"), py::arg("multiset"), py::arg("policy"), py::arg("k"), py::arg("ties"),
      "(P[Y > pi^(k)], its gradient in pi) for a multiset Y, pi extended as a homogeneous polynomial of degree k.");
}

}  // namespace ualign::bind
