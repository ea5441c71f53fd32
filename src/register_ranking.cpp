// Bindings of the ranking-population store and its kernels.
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include "bindings.hpp"
#include "ranking_store.hpp"

namespace ualign::bind {

namespace {

std::shared_ptr<RankingStore> new_store(const py::array& a, const std::string& name) {
  require_ndim(a, 2, name);
  return std::make_shared<RankingStore>(a.shape(0), a.shape(1));
}

template <class Key>
std::shared_ptr<RankingStore> store_from_keys(const exact_array<Key>& keys, bool better_is_lower,
                                              const std::string& name) {
  auto store = new_store(keys, name);
  if constexpr (std::is_floating_point_v<Key>) {
    const Key* data = keys.data();
    for (py::ssize_t j = 0; j < keys.size(); ++j)
      if (std::isnan(data[j])) throw std::invalid_argument(name + ": NaN is not a rank or score");
  }
  {
    py::gil_scoped_release release;
    store->fill_from_keys(keys.data(), better_is_lower);
  }
  return store;
}

template <class Index>
std::shared_ptr<RankingStore> store_from_orders(const exact_array<Index>& orders) {
  auto store = new_store(orders, "orders");
  {
    py::gil_scoped_release release;
    store->fill_from_orders(orders.data());
  }
  return store;
}

template <class Key>
void def_from_keys(py::class_<RankingStore, std::shared_ptr<RankingStore>>& cls) {
  cls.def_static("from_ranks", [](const exact_array<Key>& a) { return store_from_keys<Key>(a, true, "ranks"); });
  cls.def_static("from_scores", [](const exact_array<Key>& a) { return store_from_keys<Key>(a, false, "scores"); });
}

template <class Index>
void def_from_orders(py::class_<RankingStore, std::shared_ptr<RankingStore>>& cls) {
  cls.def_static("from_orders", [](const exact_array<Index>& a) { return store_from_orders<Index>(a); });
}

py::array levels_view(const std::shared_ptr<RankingStore>& store) {
  // A read-only view on the store's own buffer; the store outlives it.
  py::object owner = py::cast(store);
  py::array view = std::visit(
      [&](const auto& levels) {
        using Level = typename std::decay_t<decltype(levels)>::value_type;
        return py::array(py::dtype::of<Level>(), {store->n(), store->m()}, levels.data(), owner);
      },
      store->storage());
  py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return view;
}

// Pickling (for multiprocessing and Dask): the dense levels and the normalised
// weights, restored bit for bit.
py::tuple store_state(const RankingStore& s) {
  py::array levels = std::visit(
      [&](const auto& v) {
        using Level = typename std::decay_t<decltype(v)>::value_type;
        return py::array(py::dtype::of<Level>(), {s.n(), s.m()}, v.data());  // a copy
      },
      s.storage());
  return py::make_tuple(levels, py::array_t<double>(s.n(), s.weights().data()));
}

template <class Level>
std::shared_ptr<RankingStore> store_from_dense(const py::array& array, const double* weights, int64_t n_weights) {
  const auto levels = array.cast<exact_array<Level>>();
  auto store = new_store(levels, "levels");
  if (n_weights != store->n()) throw std::invalid_argument("weights: need one weight per voter");
  int64_t bad;
  {
    py::gil_scoped_release release;
    bad = store->fill_from_dense(levels.data());
  }
  if (bad >= 0)
    throw std::invalid_argument("levels: row " + std::to_string(bad) + " is not dense (0..R-1 for some R <= m)");
  store->restore_normalised_weights(weights);
  return store;
}

void set_checked_weights(RankingStore& s, const array_of<double>& w) {
  require_ndim(w, 1, "weights");
  if (w.shape(0) != s.n()) throw std::invalid_argument("weights: need one weight per voter");
  const double* data = w.data();
  for (int64_t i = 0; i < s.n(); ++i)
    if (!std::isfinite(data[i]) || data[i] < 0.0) throw std::invalid_argument("weights: must be finite and >= 0");
  s.set_weights(data);
}

}  // namespace

// A store from dense levels (uint8, uint16 or uint32) and normalised weights, both
// kept bit for bit: how pickled and packed populations come back.
std::shared_ptr<RankingStore> store_from_levels(const py::array& levels, const py::array& weight_array) {
  const auto weights = weight_array.cast<array_of<double>>();
  require_ndim(weights, 1, "weights");
  const py::dtype dtype = levels.dtype();
  if (dtype.kind() == 'u' && dtype.itemsize() == 1)
    return store_from_dense<uint8_t>(levels, weights.data(), weights.shape(0));
  if (dtype.kind() == 'u' && dtype.itemsize() == 2)
    return store_from_dense<uint16_t>(levels, weights.data(), weights.shape(0));
  if (dtype.kind() == 'u' && dtype.itemsize() == 4)
    return store_from_dense<uint32_t>(levels, weights.data(), weights.shape(0));
  throw py::type_error("levels: expected uint8, uint16 or uint32 dense levels");
}

namespace {

std::shared_ptr<RankingStore> store_from_state(const py::tuple& state) {
  if (state.size() != 2) throw std::invalid_argument("RankingStore: malformed pickle state");
  return store_from_levels(state[0].cast<py::array>(), state[1].cast<py::array>());
}

}  // namespace

void register_ranking(py::module_& m) {
  py::class_<RankingStore, std::shared_ptr<RankingStore>> cls(
      m, "RankingStore",
      "Compact dense-level storage of a ranking population (private; use ualign.RankingPopulation).");

  // Exact-dtype overloads first (no copy), then one converting fallback.
  def_from_keys<int64_t>(cls);
  def_from_keys<int32_t>(cls);
  def_from_keys<uint16_t>(cls);
  def_from_keys<uint8_t>(cls);
  def_from_keys<double>(cls);
  def_from_orders<int64_t>(cls);
  def_from_orders<int32_t>(cls);
  def_from_orders<uint32_t>(cls);
  def_from_orders<uint16_t>(cls);
  def_from_orders<uint8_t>(cls);

  cls.def("set_weights", &set_checked_weights);
  cls.def(
      "reweighted",
      [](const RankingStore& s, const array_of<double>& w) {
        auto copy = std::make_shared<RankingStore>(s);  // shares the levels
        set_checked_weights(*copy, w);
        return copy;
      },
      py::arg("weights"), "A store with the same (shared, not copied) levels and these weights, normalised.");

  cls.def(py::pickle(&store_state, &store_from_state));
  cls.def_static("from_levels", &store_from_levels, py::arg("levels"), py::arg("weights"),
                 "A store from dense levels and normalised weights, kept bit for bit (unpickling).");

  cls.def_property_readonly("n", &RankingStore::n);
  cls.def_property_readonly("m", &RankingStore::m);
  cls.def_property_readonly("storage_bytes", &RankingStore::storage_bytes);
  cls.def_property_readonly("levels", &levels_view);
  cls.def_property_readonly("n_levels",
                            [](const RankingStore& s) { return py::array_t<int32_t>(s.n(), s.n_levels().data()); });
  cls.def_property_readonly("weights",
                            [](const RankingStore& s) { return py::array_t<double>(s.n(), s.weights().data()); });

  cls.def(
      "beat_probabilities",
      [](const RankingStore& s, const py::tuple& operand, int ties) {
        const Ties convention = ties_from_int(ties);
        const OperandArrays op(operand, s.m(), "operand");
        py::array_t<double> out(s.m());
        double* result = out.mutable_data();
        {
          py::gil_scoped_release release;
          s.visit([&](const auto& view) { beat_probabilities_kernel(view, op.view, convention, result); });
        }
        return out;
      },
      "out[y] = P[y > operand] for every response y.");

  cls.def(
      "utilities_vjp",
      [](const RankingStore& s, const array_of<double>& pi, const array_of<double>& q, int64_t k, int ties) {
        const Ties convention = ties_from_int(ties);
        require_ndim(pi, 1, "policy");
        require_ndim(q, 1, "q");
        if (pi.shape(0) != s.m() || q.shape(0) != s.m())
          throw std::invalid_argument("policy, q: need one entry per response");
        check_k(k, "k: ");
        for (int64_t y = 0; y < s.m(); ++y)
          if (!(pi.at(y) >= 0.0) || !std::isfinite(pi.at(y)) || !std::isfinite(q.at(y)))
            throw std::invalid_argument("policy, q: entries must be finite (policy >= 0)");
        py::array_t<double> out(2 * s.m());
        double* result = out.mutable_data();
        {
          py::gil_scoped_release release;
          s.visit([&](const auto& view) { utilities_vjp_kernel(view, pi.data(), q.data(), k, convention, result); });
        }
        return py::make_tuple(out[py::slice(0, s.m(), 1)], out[py::slice(s.m(), 2 * s.m(), 1)]);
      },
      "(u, g): u[y] = P[y > pi^(k)] and g = d/dpi sum_y q[y] u[y], in one pass.");

  cls.def(
      "win_rate",
      [](const RankingStore& s, const py::tuple& a, const py::tuple& b, int ties) {
        const Ties convention = ties_from_int(ties);
        const OperandArrays op_a(a, s.m(), "a"), op_b(b, s.m(), "b");
        py::gil_scoped_release release;
        return s.visit([&](const auto& view) { return win_rate_kernel(view, op_a.view, op_b.view, convention); });
      },
      "P[a > b].");

  cls.def(
      "strictly_better_matrix",
      [](const RankingStore& s) {
        py::array_t<double> out({s.m(), s.m()});
        double* result = out.mutable_data();
        {
          py::gil_scoped_release release;
          s.visit([&](const auto& view) { strictly_better_matrix_kernel(view, result); });
        }
        return out;
      },
      "S[y, z] = P_i[level(y) < level(z)] averaged over voters.");
}

}  // namespace ualign::bind
