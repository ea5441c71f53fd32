// Bindings of the Plackett-Luce store and its kernels.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "bindings.hpp"
#include "pl_kernels.hpp"
#include "ties.hpp"

namespace ualign::bind {

namespace {

using pl::PLStore;

std::shared_ptr<PLStore> store_from_rewards(const array_of<double>& rewards) {
  require_ndim(rewards, 2, "rewards");
  const int64_t n = rewards.shape(0), m = rewards.shape(1);
  if (n < 1 || m < 1) throw std::invalid_argument("rewards: need at least one type and one response");
  const double* data = rewards.data();
  for (int64_t j = 0; j < n * m; ++j)
    if (!std::isfinite(data[j]))
      throw std::invalid_argument("rewards: must be finite (row " + std::to_string(j / m) + " has " +
                                  (std::isnan(data[j]) ? "NaN" : "an infinite value") + ")");
  std::shared_ptr<PLStore> store;
  {
    py::gil_scoped_release release;
    store = std::make_shared<PLStore>(data, n, m);
  }
  return store;
}

// The rewards with each row shifted so that its maximum is 0 (a read-only copy:
// the store keeps the rewards as given).
py::array shifted_rewards(const PLStore& store) {
  py::array_t<double> out({store.n(), store.m()});
  store.shifted_rewards(out.mutable_data());
  py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return std::move(out);
}

// Pickle state: the rewards as given and the normalised weights; both come back
// bit for bit.
py::tuple store_state(const PLStore& s) {
  py::array_t<double> rewards({s.n(), s.m()});
  std::copy(s.rewards().begin(), s.rewards().end(), rewards.mutable_data());
  return py::make_tuple(rewards, py::array_t<double>(s.n(), s.weights().data()));
}

std::shared_ptr<PLStore> store_from_state(const py::tuple& state) {
  if (state.size() != 2) throw std::invalid_argument("PLStore: malformed pickle state");
  auto store = store_from_rewards(state[0].cast<array_of<double>>());
  const auto weights = state[1].cast<array_of<double>>();
  require_ndim(weights, 1, "weights");
  if (weights.shape(0) != store->n()) throw std::invalid_argument("weights: need one weight per type");
  for (int64_t i = 0; i < store->n(); ++i)
    if (!std::isfinite(weights.at(i)) || weights.at(i) < 0.0)
      throw std::invalid_argument("weights: must be finite and >= 0");
  store->restore_weights(weights.data());
  return store;
}

void set_checked_weights(PLStore& s, const array_of<double>& w) {
  require_ndim(w, 1, "weights");
  if (w.shape(0) != s.n()) throw std::invalid_argument("weights: need one weight per type");
  const double* data = w.data();
  for (int64_t i = 0; i < s.n(); ++i)
    if (!std::isfinite(data[i]) || data[i] < 0.0) throw std::invalid_argument("weights: must be finite and >= 0");
  s.set_weights(data);
}

}  // namespace

void register_pl(py::module_& m) {
  py::class_<PLStore, std::shared_ptr<PLStore>> cls(m, "PLStore",
                                                    "Rewards of a mixture of Plackett-Luce types, kept as given "
                                                    "(private; use ualign.PlackettLuceMixture).");

  cls.def_static("from_rewards", &store_from_rewards);
  cls.def(py::pickle(&store_state, &store_from_state));

  cls.def("set_weights", &set_checked_weights);
  cls.def(
      "reweighted",
      [](const PLStore& s, const array_of<double>& w) {
        auto copy = std::make_shared<PLStore>(s);  // the types' rewards: n x m doubles
        set_checked_weights(*copy, w);
        return copy;
      },
      py::arg("weights"), "A store with the same rewards and these type weights, normalised.");

  cls.def_property_readonly("n", &PLStore::n);
  cls.def_property_readonly("m", &PLStore::m);
  cls.def_property_readonly("rewards", &shifted_rewards);
  cls.def_property_readonly("weights", [](const PLStore& s) { return py::array_t<double>(s.n(), s.weights().data()); });

  cls.def(
      "beat_probabilities",
      [](const PLStore& s, const py::tuple& operand, int ties) {
        ties_from_int(ties);  // validated; there are no ties in this model
        const OperandArrays op(operand, s.m(), "operand");
        py::array_t<double> out(s.m());
        double* result = out.mutable_data();
        {
          py::gil_scoped_release release;
          pl::beat_probabilities_kernel(s.view(), op.view, result);
        }
        return out;
      },
      "out[y] = P[y > operand] for every response y.");

  cls.def(
      "win_rate",
      [](const PLStore& s, const py::tuple& a, const py::tuple& b, int ties) {
        ties_from_int(ties);
        const OperandArrays op_a(a, s.m(), "a"), op_b(b, s.m(), "b");
        py::gil_scoped_release release;
        return pl::win_rate_kernel(s.view(), op_a.view, op_b.view);
      },
      "P[a > b].");

  cls.def(
      "utilities_vjp",
      [](const PLStore& s, const array_of<double>& pi, const array_of<double>& q, int64_t k, int ties) {
        ties_from_int(ties);
        require_ndim(pi, 1, "policy");
        if (q.ndim() != 1 && q.ndim() != 2) throw std::invalid_argument("q: expected a 1-d or 2-d array");
        const int64_t m = s.m(), rows = q.ndim() == 2 ? q.shape(0) : 1;
        if (pi.shape(0) != m || q.shape(q.ndim() - 1) != m)
          throw std::invalid_argument("policy, q: need one entry per response");
        if (k < 1) throw std::invalid_argument("k: must be >= 1");
        double total = 0.0;
        for (int64_t y = 0; y < m; ++y) {
          if (!(pi.at(y) >= 0.0) || !std::isfinite(pi.at(y)))
            throw std::invalid_argument("policy: entries must be finite and >= 0");
          total += pi.at(y);
        }
        for (int64_t e = 0; e < rows * m; ++e)
          if (!std::isfinite(q.data()[e])) throw std::invalid_argument("q: entries must be finite");
        if (!(total > 0.0)) throw std::invalid_argument("policy: must not be all zero");
        py::array_t<double> u(m);
        py::array_t<double> g = q.ndim() == 2 ? py::array_t<double>({rows, m}) : py::array_t<double>(m);
        std::vector<double> result(static_cast<size_t>((1 + rows) * m));
        {
          py::gil_scoped_release release;
          pl::utilities_vjp_kernel(s.view(), pi.data(), q.data(), rows, k, result.data());
        }
        std::copy(result.begin(), result.begin() + m, u.mutable_data());
        std::copy(result.begin() + m, result.end(), g.mutable_data());
        return py::make_tuple(u, g);
      },
      "(u, g): u[y] = P[y > pi^(k)] and g = d/dpi sum_y q[y] u[y], in one pass; with q of\n"
      "shape (r, m), g has one such row per row of q (the sweep over the nodes is shared).");

  cls.def(
      "pairwise",
      [](const PLStore& s, int ties) {
        ties_from_int(ties);
        py::array_t<double> out({s.m(), s.m()});
        double* result = out.mutable_data();
        {
          py::gil_scoped_release release;
          pl::pairwise_kernel(s.view(), result);
        }
        return out;
      },
      "M[y, z] = P[y > z].");
}

}  // namespace ualign::bind
