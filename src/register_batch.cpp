// Bindings of the batch (many-prompt) audit kernels.
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_kernels.hpp"
#include "bindings.hpp"

namespace ualign::bind {

namespace {

py::dict audit_policies(const py::list& models, const py::object& policies, const py::object& offsets,
                        const array_of<int64_t>& ks, int ties) {
  const Ties convention = ties_from_int(ties);
  const int64_t n_prompts = static_cast<int64_t>(models.size());
  std::vector<std::shared_ptr<RankingStore>> owners;  // keep the stores alive without the GIL
  std::vector<const RankingStore*> stores;
  owners.reserve(static_cast<size_t>(n_prompts));
  for (int64_t p = 0; p < n_prompts; ++p) {
    py::handle item = models[static_cast<size_t>(p)];
    if (!py::isinstance<RankingStore>(item))
      throw py::type_error("models[" + std::to_string(p) + "]: expected a RankingStore");
    owners.push_back(item.cast<std::shared_ptr<RankingStore>>());
    stores.push_back(owners.back().get());
  }
  require_ndim(ks, 1, "ks");
  const int64_t n_ks = ks.shape(0);
  if (n_ks < 1) throw std::invalid_argument("ks: needs at least one k");
  for (int64_t j = 0; j < n_ks; ++j)
    if (ks.at(j) < 1) throw std::invalid_argument("ks: every k must be >= 1");

  // Policies: None (the uniform policy of each prompt) or all prompts' policies
  // concatenated, prompt p at [offsets[p], offsets[p+1]).
  std::vector<const double*> rows(static_cast<size_t>(n_prompts), nullptr);
  array_of<double> flat;
  array_of<int64_t> starts;
  if (!policies.is_none()) {
    flat = policies.cast<array_of<double>>();
    starts = offsets.cast<array_of<int64_t>>();
    require_ndim(flat, 1, "policies");
    require_ndim(starts, 1, "offsets");
    if (starts.shape(0) != n_prompts + 1 || starts.at(0) != 0 || starts.at(n_prompts) != flat.shape(0))
      throw std::invalid_argument("offsets: need one start per prompt plus the total length");
    for (int64_t p = 0; p < n_prompts; ++p) {
      if (starts.at(p + 1) - starts.at(p) != stores[static_cast<size_t>(p)]->m())
        throw std::invalid_argument("policies[" + std::to_string(p) + "]: expected " +
                                    std::to_string(stores[static_cast<size_t>(p)]->m()) + " entries");
      rows[static_cast<size_t>(p)] = flat.data() + starts.at(p);
    }
    const double* data = flat.data();
    for (int64_t j = 0; j < flat.shape(0); ++j)
      if (!(data[j] >= 0.0) || !std::isfinite(data[j]))
        throw std::invalid_argument("policies: entries must be finite and >= 0");
  } else if (!offsets.is_none()) {
    throw std::invalid_argument("offsets: only with policies");
  }

  py::array_t<double> level({n_prompts, n_ks}), best_utility({n_prompts, n_ks}), exploitability({n_prompts, n_ks});
  py::array_t<int64_t> opponent({n_prompts, n_ks}), best_response({n_prompts, n_ks});
  const PolicyAuditOut out{level.mutable_data(), opponent.mutable_data(), best_response.mutable_data(),
                           best_utility.mutable_data(), exploitability.mutable_data()};
  {
    py::gil_scoped_release release;
    audit_policy_batch(stores, rows, ks.data(), n_ks, convention, out);
  }
  py::dict result;
  result["robust_level"] = level;
  result["opponent"] = opponent;
  result["best_response"] = best_response;
  result["best_utility"] = best_utility;
  result["exploitability"] = exploitability;
  return result;
}

}  // namespace

void register_batch(py::module_& m) {
  m.def("audit_policies", &audit_policies, py::arg("models"), py::arg("policies"), py::arg("offsets"),
        py::arg("ks"), py::arg("ties"),
        "Batch audit of single-output policies on many ranking stores (one per prompt): a dict of\n"
        "(n_prompts, n_ks) arrays robust_level, opponent, best_response, best_utility, exploitability.\n"
        "policies=None audits each prompt's uniform policy.");

  m.def("exact_sum", [](const array_of<double>& x) {
    require_ndim(x, 1, "x");
    for (int64_t j = 0; j < x.shape(0); ++j)
      if (!std::isfinite(x.at(j))) throw std::invalid_argument("x: entries must be finite");
    std::vector<double> partials;
    return exact_sum(x.data(), x.shape(0), partials);
  }, "Correctly rounded sum of a finite float64 vector (equals math.fsum).");
}

}  // namespace ualign::bind
