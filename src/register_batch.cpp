// Bindings of the batch (many-prompt) audit kernels.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_kernels.hpp"
#include "bindings.hpp"
#include "pairwise_kernels.hpp"
#include "prompt_batch.hpp"
#include "replicate_kernels.hpp"

namespace ualign::bind {

namespace {

// Policies: None (the uniform policy of each prompt) or all prompts' policies
// concatenated, prompt p at [offsets[p], offsets[p+1]); m_of(p) is its size.
struct Policies {
  array_of<double> flat;
  array_of<int64_t> starts;
  std::vector<const double*> rows;

  template <class SizeOf>
  Policies(const py::object& policies, const py::object& offsets, int64_t n_prompts, SizeOf m_of)
      : rows(static_cast<size_t>(n_prompts), nullptr) {
    if (policies.is_none()) {
      if (!offsets.is_none()) throw std::invalid_argument("offsets: only with policies");
      return;
    }
    flat = policies.cast<array_of<double>>();
    starts = offsets.cast<array_of<int64_t>>();
    require_ndim(flat, 1, "policies");
    require_ndim(starts, 1, "offsets");
    if (starts.shape(0) != n_prompts + 1 || starts.at(0) != 0 || starts.at(n_prompts) != flat.shape(0))
      throw std::invalid_argument("offsets: need one start per prompt plus the total length");
    for (int64_t p = 0; p < n_prompts; ++p) {
      if (starts.at(p + 1) - starts.at(p) != m_of(p))
        throw std::invalid_argument("policies[" + std::to_string(p) + "]: expected " + std::to_string(m_of(p)) +
                                    " entries");
      rows[static_cast<size_t>(p)] = flat.data() + starts.at(p);
    }
    const double* data = flat.data();
    for (int64_t j = 0; j < flat.shape(0); ++j)
      if (!(data[j] >= 0.0) || !std::isfinite(data[j]))
        throw std::invalid_argument("policies: entries must be finite and >= 0");
  }
};

// Offsets of rows in an array of `length` entries: from 0 to length, nondecreasing.
void check_row_offsets(const array_of<int64_t>& offsets, int64_t length) {
  require_ndim(offsets, 1, "offsets");
  const int64_t n = offsets.shape(0);
  if (n < 1 || offsets.at(0) != 0 || offsets.at(n - 1) != length)
    throw std::invalid_argument("offsets: must run from 0 to the number of entries");
  for (int64_t p = 0; p + 1 < n; ++p)
    if (offsets.at(p + 1) < offsets.at(p)) throw std::invalid_argument("offsets: must be nondecreasing");
}

void check_finite(const array_of<double>& x, const std::string& name) {
  require_ndim(x, 1, name);
  for (int64_t j = 0; j < x.shape(0); ++j)
    if (!std::isfinite(x.at(j))) throw std::invalid_argument(name + ": entries must be finite");
}

std::vector<int64_t> checked_ks(const array_of<int64_t>& ks) {
  require_ndim(ks, 1, "ks");
  if (ks.shape(0) < 1) throw std::invalid_argument("ks: needs at least one k");
  std::vector<int64_t> values(static_cast<size_t>(ks.shape(0)));
  for (int64_t j = 0; j < ks.shape(0); ++j) {
    check_k(ks.at(j), "ks[" + std::to_string(j) + "]: ");
    values[static_cast<size_t>(j)] = ks.at(j);
  }
  return values;
}

// The (rows, n_ks) result arrays of a batch audit and the kernel's view of them.
struct AuditArrays {
  py::array_t<double> level, best_utility, exploitability;
  py::array_t<int64_t> opponent, best_response;

  AuditArrays(int64_t rows, int64_t n_ks)
      : level({rows, n_ks}),
        best_utility({rows, n_ks}),
        exploitability({rows, n_ks}),
        opponent({rows, n_ks}),
        best_response({rows, n_ks}) {}
  PolicyAuditOut out() {
    return {level.mutable_data(), opponent.mutable_data(), best_response.mutable_data(), best_utility.mutable_data(),
            exploitability.mutable_data()};
  }
  py::dict dict() const {
    py::dict result;
    result["robust_level"] = level;
    result["opponent"] = opponent;
    result["best_response"] = best_response;
    result["best_utility"] = best_utility;
    result["exploitability"] = exploitability;
    return result;
  }
};

// Runs the batch audit on `prompts` and returns the (n_prompts, n_ks) result arrays.
template <class Prompt>
py::dict run_audit(const std::vector<const Prompt*>& prompts, const Policies& policies, const std::vector<int64_t>& ks,
                   Ties ties) {
  AuditArrays arrays(static_cast<int64_t>(prompts.size()), static_cast<int64_t>(ks.size()));
  const PolicyAuditOut out = arrays.out();
  {
    py::gil_scoped_release release;
    audit_policy_batch(prompts, policies.rows, ks.data(), static_cast<int64_t>(ks.size()), ties, out);
  }
  return arrays.dict();
}

// The ranking stores of a list of models, kept alive while kernels run without the GIL.
struct StoreList {
  std::vector<std::shared_ptr<RankingStore>> owners;
  std::vector<const RankingStore*> stores;

  explicit StoreList(const py::list& models) {
    const size_t n_prompts = models.size();
    owners.reserve(n_prompts);
    for (size_t p = 0; p < n_prompts; ++p) {
      py::handle item = models[p];
      if (!py::isinstance<RankingStore>(item))
        throw py::type_error("models[" + std::to_string(p) + "]: expected a RankingStore");
      owners.push_back(item.cast<std::shared_ptr<RankingStore>>());
      stores.push_back(owners.back().get());
    }
  }
  int64_t size() const { return static_cast<int64_t>(stores.size()); }
  const RankingStore& operator[](int64_t p) const { return *stores[static_cast<size_t>(p)]; }
  int64_t m(int64_t p) const { return (*this)[p].m(); }
};

py::array_t<double> zeros(const std::vector<py::ssize_t>& shape) {
  py::array_t<double> out(shape);
  std::fill(out.mutable_data(), out.mutable_data() + out.size(), 0.0);
  return out;
}

py::dict audit_policies(const py::list& models, const py::object& policies, const py::object& offsets,
                        const array_of<int64_t>& ks, int ties) {
  const Ties convention = ties_from_int(ties);
  const StoreList stores(models);
  const std::vector<int64_t> k_values = checked_ks(ks);
  const Policies rows(policies, offsets, stores.size(), [&](int64_t p) { return stores.m(p); });
  return run_audit(stores.stores, rows, k_values, convention);
}

// Rows of padded per-prompt arrays: row j belongs to prompt index[j] of a StoreList
// and holds its m entries first; the padding (up to the width) is never read, and
// results are zero there.
struct PaddedRows {
  const StoreList& stores;
  std::vector<int64_t> index;
  int64_t width = 0;

  PaddedRows(const StoreList& list, const array_of<int64_t>& rows, int64_t padded_width)
      : stores(list), width(padded_width) {
    require_ndim(rows, 1, "rows");
    for (int64_t j = 0; j < rows.shape(0); ++j) {
      const int64_t p = rows.at(j);
      if (p < 0 || p >= stores.size()) throw std::invalid_argument("rows: prompt index out of range");
      if (stores.m(p) > width) throw std::invalid_argument("rows: a prompt has more responses than the arrays' width");
      index.push_back(p);
    }
  }
  // The rows of padded policies pi (finite and >= 0 where read): the width is pi's.
  static PaddedRows of_policies(const StoreList& list, const array_of<int64_t>& rows, const array_of<double>& pi) {
    require_ndim(pi, 2, "policies");
    PaddedRows out(list, rows, pi.shape(1));
    out.check(pi, "policies", true);
    return out;
  }
  int64_t size() const { return static_cast<int64_t>(index.size()); }
  const RankingStore& operator[](int64_t j) const { return stores[index[static_cast<size_t>(j)]]; }
  int64_t m(int64_t j) const { return (*this)[j].m(); }

  // A (rows, width) array whose entries are finite (and >= 0 with `nonnegative`) where they are read.
  void check(const array_of<double>& array, const char* name, bool nonnegative) const {
    require_ndim(array, 2, name);
    if (array.shape(0) != size() || array.shape(1) != width)
      throw std::invalid_argument(std::string(name) + ": need one padded row per prompt");
    for (int64_t j = 0; j < size(); ++j)
      for (int64_t y = 0; y < m(j); ++y) {
        const double x = array.at(j, y);
        if (!std::isfinite(x)) throw std::invalid_argument(std::string(name) + ": entries must be finite");
        if (nonnegative && x < 0.0) throw std::invalid_argument(std::string(name) + ": entries must be >= 0");
      }
  }

  // One k per row, each >= 1.
  std::vector<int64_t> ks(const array_of<int64_t>& values) const {
    require_ndim(values, 1, "ks");
    if (values.shape(0) != size()) throw std::invalid_argument("ks: need one k per prompt");
    std::vector<int64_t> out;
    for (int64_t j = 0; j < size(); ++j) {
      check_k(values.at(j), "ks[" + std::to_string(j) + "]: ");
      out.push_back(values.at(j));
    }
    return out;
  }

  // work(j, view, scratch, serial) for every row with the GIL released (for_each_prompt);
  // width_of(j) is the reduction width of the row's kernel.
  template <class Scratch, class Width, class Work>
  void run(Width width_of, Work work) const {
    std::vector<int64_t> voters, widths;
    for (int64_t j = 0; j < size(); ++j) {
      voters.push_back((*this)[j].n());
      widths.push_back(width_of(j));
    }
    py::gil_scoped_release release;
    for_each_prompt<Scratch>(voters, widths, [&](int64_t j, Scratch& scratch, bool serial) {
      (*this)[j].visit([&](const auto& view) { work(j, view, scratch, serial); });
    });
  }
};

// u[j, y] = P[y > pi_j^(k_j)] of prompt rows[j] (padded rows).
py::array_t<double> batch_utilities(const StoreList& stores, const array_of<int64_t>& rows, const array_of<double>& pi,
                                    const array_of<int64_t>& ks, int ties) {
  const Ties convention = ties_from_int(ties);
  const PaddedRows prompts = PaddedRows::of_policies(stores, rows, pi);
  const int64_t width = prompts.width;
  const std::vector<int64_t> k_values = prompts.ks(ks);
  py::array_t<double> out = zeros({prompts.size(), width});
  double* u = out.mutable_data();
  prompts.run<MultiKScratch>([&](int64_t j) { return prompts.m(j); },
                             [&](int64_t j, const auto& view, MultiKScratch& scratch, bool serial) {
                               const size_t i = static_cast<size_t>(j);
                               const double* row = pi.data() + j * width;
                               if (four_voter_path(k_values[i])) {
                                 product_beats(view, row, k_values[i], convention, u + j * width, scratch, serial);
                               } else {
                                 beat_probabilities_kernel(view, product_operand(view.m, row, &k_values[i]), convention,
                                                           u + j * width);
                               }
                             });
  return out;
}

// (u, g) of prompt rows[j]: the utilities and g = d/dpi sum_y q[y] u_y (padded rows).
py::tuple batch_utilities_vjp(const StoreList& stores, const array_of<int64_t>& rows, const array_of<double>& pi,
                              const array_of<double>& q, const array_of<int64_t>& ks, int ties) {
  const Ties convention = ties_from_int(ties);
  const PaddedRows prompts = PaddedRows::of_policies(stores, rows, pi);
  const int64_t width = prompts.width;
  prompts.check(q, "q", false);
  const std::vector<int64_t> k_values = prompts.ks(ks);
  py::array_t<double> u_out = zeros({prompts.size(), width}), g_out = zeros({prompts.size(), width});
  double* u = u_out.mutable_data();
  double* g = g_out.mutable_data();
  prompts.run<std::vector<double>>([&](int64_t j) { return 2 * prompts.m(j); },
                                   [&](int64_t j, const auto& view, std::vector<double>& both, bool) {
                                     both.resize(static_cast<size_t>(2 * view.m));
                                     utilities_vjp_kernel(view, pi.data() + j * width, q.data() + j * width,
                                                          k_values[static_cast<size_t>(j)], convention, both.data());
                                     std::copy(both.begin(), both.begin() + view.m, u + j * width);
                                     std::copy(both.begin() + view.m, both.end(), g + j * width);
                                   });
  return py::make_tuple(u_out, g_out);
}

// Jacobian blocks: for row j the responses y with selected[j, y] (in index order, at
// most `depth` = the largest count); out[j, a, b] = d u_y / d pi_z for the a-th selected
// y and the b-th selected z (square) or z = b (not square), zero past the selection.
py::array_t<double> batch_jacobian(const StoreList& stores, const array_of<int64_t>& rows, const array_of<double>& pi,
                                   const array_of<bool>& selected, const array_of<int64_t>& ks, int ties, bool square) {
  const Ties convention = ties_from_int(ties);
  const PaddedRows prompts = PaddedRows::of_policies(stores, rows, pi);
  const int64_t width = prompts.width;
  const std::vector<int64_t> k_values = prompts.ks(ks);
  require_ndim(selected, 2, "selected");
  if (selected.shape(0) != prompts.size() || selected.shape(1) != width)
    throw std::invalid_argument("selected: need the shape of policies");
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(prompts.size()));
  int64_t depth = 0;
  for (int64_t j = 0; j < prompts.size(); ++j) {
    for (int64_t y = 0; y < width; ++y) {
      if (!selected.at(j, y)) continue;
      if (y >= prompts.m(j)) throw std::invalid_argument("selected: a response past the prompt's responses");
      members[static_cast<size_t>(j)].push_back(y);
    }
    depth = std::max(depth, static_cast<int64_t>(members[static_cast<size_t>(j)].size()));
  }
  std::vector<int64_t> every(static_cast<size_t>(width));
  for (int64_t z = 0; z < width; ++z) every[static_cast<size_t>(z)] = z;
  const int64_t n_cols = square ? depth : width;
  py::array_t<double> out = zeros({prompts.size(), depth, n_cols});
  double* J = out.mutable_data();
  prompts.run<std::vector<double>>(
      [&](int64_t j) {
        const int64_t count = static_cast<int64_t>(members[static_cast<size_t>(j)].size());
        return count * (square ? count : prompts.m(j));
      },
      [&](int64_t j, const auto& view, std::vector<double>& block, bool) {
        const std::vector<int64_t>& chosen = members[static_cast<size_t>(j)];
        const int64_t count = static_cast<int64_t>(chosen.size());
        if (count == 0) return;
        const int64_t cols = square ? count : view.m;
        block.resize(static_cast<size_t>(count * cols));
        jacobian_block_kernel(view, pi.data() + j * width, k_values[static_cast<size_t>(j)], convention, chosen.data(),
                              count, square ? chosen.data() : every.data(), cols, block.data());
        for (int64_t a = 0; a < count; ++a)
          std::copy(block.begin() + a * cols, block.begin() + (a + 1) * cols, J + (j * depth + a) * n_cols);
      });
  return out;
}

// S[j, y, z] = P_i[level(y) < level(z)] of prompt rows[j] (its strictly-better matrix),
// zero past its responses: (prompts, width, width).
py::array_t<double> batch_strictly_better(const StoreList& stores, const array_of<int64_t>& rows, int64_t width) {
  if (width < 1) throw std::invalid_argument("width: expected a positive number of responses");
  const PaddedRows prompts(stores, rows, width);
  py::array_t<double> out = zeros({prompts.size(), width, width});
  double* S = out.mutable_data();
  prompts.run<std::vector<double>>([&](int64_t j) { return prompts.m(j) * prompts.m(j); },
                                   [&](int64_t j, const auto& view, std::vector<double>& block, bool) {
                                     const int64_t m = view.m;
                                     block.resize(static_cast<size_t>(m * m));
                                     strictly_better_matrix_kernel(view, block.data());
                                     for (int64_t y = 0; y < m; ++y)
                                       std::copy(block.begin() + y * m, block.begin() + (y + 1) * m,
                                                 S + (j * width + y) * width);
                                   });
  return out;
}

// Prompts packed as Dask chunks carry them: levels of every voter of every prompt
// concatenated, shapes[p] = (n_p, m_p), the number of levels and the (already
// normalised) weight of every voter. Checked so that no kernel can index out of
// bounds: 1 <= n_levels <= m and every level < its voter's n_levels.
template <class Level>
py::dict audit_packed_typed(const py::array& level_array, const array_of<int64_t>& shapes,
                            const array_of<int32_t>& n_levels, const array_of<double>& weights,
                            const py::object& policies, const py::object& offsets, const array_of<int64_t>& ks,
                            int ties) {
  const Ties convention = ties_from_int(ties);
  const auto levels = level_array.cast<exact_array<Level>>();
  require_ndim(levels, 1, "levels");
  require_ndim(shapes, 2, "shapes");
  require_ndim(n_levels, 1, "n_levels");
  require_ndim(weights, 1, "weights");
  if (shapes.shape(1) != 2) throw std::invalid_argument("shapes: expected (n_prompts, 2)");
  const int64_t n_prompts = shapes.shape(0);
  std::vector<PackedPrompt<Level>> packed(static_cast<size_t>(n_prompts));
  int64_t cells = 0, voters = 0;
  for (int64_t p = 0; p < n_prompts; ++p) {
    const int64_t n = shapes.at(p, 0), m = shapes.at(p, 1);
    if (n < 1 || m < 1) throw std::invalid_argument("shapes: every prompt needs voters and responses");
    if (cells + n * m > levels.shape(0) || voters + n > n_levels.shape(0) || voters + n > weights.shape(0))
      throw std::invalid_argument("shapes: more cells or voters than the arrays hold");
    const Level* rows = levels.data() + cells;
    const int32_t* counts = n_levels.data() + voters;
    const double* w = weights.data() + voters;
    for (int64_t i = 0; i < n; ++i) {
      if (counts[i] < 1 || counts[i] > m) throw std::invalid_argument("n_levels: out of range");
      if (!(w[i] >= 0.0) || !std::isfinite(w[i])) throw std::invalid_argument("weights: must be finite and >= 0");
      for (int64_t y = 0; y < m; ++y)
        if (static_cast<int64_t>(rows[i * m + y]) >= counts[i])
          throw std::invalid_argument("levels: a level is not below its voter's number of levels");
    }
    packed[static_cast<size_t>(p)].view = RankingView<Level>{rows, counts, w, n, m};
    cells += n * m;
    voters += n;
  }
  if (cells != levels.shape(0) || voters != n_levels.shape(0) || voters != weights.shape(0))
    throw std::invalid_argument("shapes: the arrays hold more cells or voters than the shapes");
  std::vector<const PackedPrompt<Level>*> prompts;
  prompts.reserve(packed.size());
  for (const auto& prompt : packed) prompts.push_back(&prompt);
  const std::vector<int64_t> k_values = checked_ks(ks);
  const Policies rows(policies, offsets, n_prompts, [&](int64_t p) { return shapes.at(p, 1); });
  return run_audit(prompts, rows, k_values, convention);
}

py::dict audit_packed(const py::array& levels, const array_of<int64_t>& shapes, const array_of<int32_t>& n_levels,
                      const array_of<double>& weights, const py::object& policies, const py::object& offsets,
                      const array_of<int64_t>& ks, int ties) {
  const py::dtype dtype = levels.dtype();
  if (dtype.kind() == 'u' && dtype.itemsize() == 1)
    return audit_packed_typed<uint8_t>(levels, shapes, n_levels, weights, policies, offsets, ks, ties);
  if (dtype.kind() == 'u' && dtype.itemsize() == 2)
    return audit_packed_typed<uint16_t>(levels, shapes, n_levels, weights, policies, offsets, ks, ties);
  if (dtype.kind() == 'u' && dtype.itemsize() == 4)
    return audit_packed_typed<uint32_t>(levels, shapes, n_levels, weights, policies, offsets, ks, ties);
  throw py::type_error("levels: expected uint8, uint16 or uint32 dense levels");
}

// The views a replicate audit runs on: the dense levels of a store of rankings, or
// the rewards of a Plackett-Luce store.
template <class F>
void with_view(const RankingStore& store, F&& f) {
  store.visit(f);
}
template <class F>
void with_view(const pl::PLStore& store, F&& f) {
  f(store.view());
}

// Audits of one policy (None: uniform) on reweightings of one store (of rankings or
// of Plackett-Luce types): counts[b] are replicate b's voter (type) weights (finite,
// >= 0, not all zero), normalised as a store normalises its weights. (n_boot, n_ks)
// result arrays, as audit_policies.
template <class Store>
py::dict audit_replicates(const std::shared_ptr<Store>& model, const py::object& policy, const array_of<double>& counts,
                          const array_of<int64_t>& ks, int ties) {
  const Ties convention = ties_from_int(ties);
  if (!model) throw py::type_error("model: expected a RankingStore or a PLStore");
  const int64_t n = model->n(), m = model->m();
  require_ndim(counts, 2, "counts");
  if (counts.shape(1) != n) throw std::invalid_argument("counts: need one weight per voter in every row");
  const int64_t n_boot = counts.shape(0);
  std::vector<double> weights(static_cast<size_t>(n_boot * n));
  const double* c = counts.data();
  for (int64_t b = 0; b < n_boot; ++b) {
    const double* row = c + b * n;
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(row[i]) || row[i] < 0.0) throw std::invalid_argument("counts: must be finite and >= 0");
    if (!(*std::max_element(row, row + n) > 0.0))
      throw std::invalid_argument("counts: row " + std::to_string(b) + " gives every voter weight zero");
    normalise_weights(row, n, weights.data() + b * n);
  }
  const std::vector<int64_t> k_values = checked_ks(ks);
  py::array_t<int64_t> offsets(2);
  offsets.mutable_at(0) = 0;
  offsets.mutable_at(1) = m;
  const Policies rows(policy, policy.is_none() ? py::object(py::none()) : py::object(offsets), 1,
                      [&](int64_t) { return m; });
  AuditArrays arrays(n_boot, static_cast<int64_t>(k_values.size()));
  const PolicyAuditOut out = arrays.out();
  {
    py::gil_scoped_release release;
    with_view(*model, [&](const auto& view) {
      ualign::audit_replicates(view, rows.rows[0], weights.data(), n_boot, k_values.data(),
                               static_cast<int64_t>(k_values.size()), convention, out);
    });
  }
  return arrays.dict();
}

// The audits of rows of padded utilities: row p's first sizes[p] entries of u, loss
// (and policy, unless None) are one policy's, as audit_from_utilities takes them.
py::tuple audit_utilities(const array_of<double>& u, const array_of<double>& loss, const py::object& policy,
                          const array_of<int64_t>& sizes) {
  require_ndim(u, 2, "u");
  require_ndim(loss, 2, "loss");
  require_ndim(sizes, 1, "sizes");
  const int64_t n_rows = u.shape(0), width = u.shape(1);
  if (loss.shape(0) != n_rows || loss.shape(1) != width) throw std::invalid_argument("loss: need the shape of u");
  if (sizes.shape(0) != n_rows) throw std::invalid_argument("sizes: need one size per row of u");
  const bool has_policy = !policy.is_none();
  array_of<double> pi;
  if (has_policy) {
    pi = policy.cast<array_of<double>>();
    if (pi.ndim() != 2 || pi.shape(0) != n_rows || pi.shape(1) != width)
      throw std::invalid_argument("policy: need the shape of u");
  }
  for (int64_t p = 0; p < n_rows; ++p) {
    const int64_t m = sizes.at(p);
    if (m < 1 || m > width) throw std::invalid_argument("sizes: each must be in 1 .. the width of u");
    for (int64_t y = 0; y < m; ++y)
      if (!std::isfinite(u.at(p, y)) || !std::isfinite(loss.at(p, y)) || (has_policy && !std::isfinite(pi.at(p, y))))
        throw std::invalid_argument("u, loss, policy: entries must be finite");
  }
  py::array_t<double> level(n_rows), best_utility(n_rows), exploitability(n_rows), mean_utility(n_rows);
  py::array_t<int64_t> opponent(n_rows), best_response(n_rows);
  const PolicyAuditOut out{level.mutable_data(), opponent.mutable_data(), best_response.mutable_data(),
                           best_utility.mutable_data(), exploitability.mutable_data()};
  double* mean = mean_utility.mutable_data();
  const int64_t* row_sizes = sizes.data();
  {
    py::gil_scoped_release release;
    std::vector<double> products, partials;
    for (int64_t p = 0; p < n_rows; ++p) {
      const PolicyAudit audit =
          audit_from_utilities(u.data() + p * width, loss.data() + p * width,
                               has_policy ? pi.data() + p * width : nullptr, row_sizes[p], products, partials);
      out.store(p, audit);
      mean[p] = audit.mean_utility;
    }
  }
  return py::make_tuple(level, opponent, best_response, best_utility, exploitability, mean_utility);
}

}  // namespace

void register_batch(py::module_& m) {
  m.def("audit_policies", &audit_policies, py::arg("models"), py::arg("policies"), py::arg("offsets"), py::arg("ks"),
        py::arg("ties"),
        "Batch audit of single-output policies on many ranking stores (one per prompt): a dict of\n"
        "(n_prompts, n_ks) arrays robust_level, opponent, best_response, best_utility, exploitability.\n"
        "policies=None audits each prompt's uniform policy.");

  m.def("audit_packed", &audit_packed, py::arg("levels"), py::arg("shapes"), py::arg("n_levels"), py::arg("weights"),
        py::arg("policies"), py::arg("offsets"), py::arg("ks"), py::arg("ties"),
        "audit_policies on packed prompts (concatenated dense levels, (n, m) per prompt, levels and\n"
        "normalised weight per voter), without building a store per prompt.");

  py::class_<StoreList>(m, "StoreList",
                        "The ranking stores of a batch's prompts, listed once; the batch kernels name\n"
                        "the prompts they compute by their index in it.")
      .def(py::init<const py::list&>(), py::arg("models"))
      .def("__len__", &StoreList::size);
  m.def("batch_utilities", &batch_utilities, py::arg("stores"), py::arg("rows"), py::arg("policies"), py::arg("ks"),
        py::arg("ties"),
        "Utilities P[y > pi_j^(k_j)] of prompt rows[j] of a StoreList, for padded policy rows (j, y):\n"
        "the bits of RankingStore.beats for each prompt alone; zero in the padding.");
  m.def("batch_utilities_vjp", &batch_utilities_vjp, py::arg("stores"), py::arg("rows"), py::arg("policies"),
        py::arg("q"), py::arg("ks"), py::arg("ties"),
        "(u, g) of prompt rows[j]: utilities and the gradient of sum_y q[y] u_y, padded rows.");
  m.def("batch_jacobian", &batch_jacobian, py::arg("stores"), py::arg("rows"), py::arg("policies"), py::arg("selected"),
        py::arg("ks"), py::arg("ties"), py::arg("square"),
        "Blocks of the Jacobian d u_y / d pi_z of prompt rows[j]: rows y where selected[j, y] (in order),\n"
        "columns the same responses (square) or all of them; (prompts, depth, depth or width), zero-padded.");

  m.def("batch_strictly_better", &batch_strictly_better, py::arg("stores"), py::arg("rows"), py::arg("width"),
        "Strictly-better matrices S[y, z] = P_i[level(y) < level(z)] of prompt rows[j] of a StoreList,\n"
        "(prompts, width, width), zero past each prompt's responses.");

  constexpr const char* replicates_doc =
      "Audits of one single-output policy (None: uniform) on the reweightings counts[b] of one\n"
      "RankingStore or PLStore (bootstrap replicates), per-voter (per-type) values computed once and\n"
      "summed per replicate: a dict of (n_boot, n_ks) arrays as audit_policies.";
  m.def("audit_replicates", &audit_replicates<RankingStore>, py::arg("model"), py::arg("policy"), py::arg("counts"),
        py::arg("ks"), py::arg("ties"), replicates_doc);
  m.def("audit_replicates", &audit_replicates<pl::PLStore>, py::arg("model"), py::arg("policy"), py::arg("counts"),
        py::arg("ks"), py::arg("ties"), replicates_doc);

  m.def("audit_utilities", &audit_utilities, py::arg("u"), py::arg("loss"), py::arg("policy"), py::arg("sizes"),
        "Arrays (robust_level, opponent, best_response, best_utility, exploitability, mean_utility), one\n"
        "entry per row: the audit of a policy from its utilities u and mirrored losses, padded rows of\n"
        "sizes[p] entries (policy None: multi-output policies, NaN exploitability).");

  m.def(
      "exact_sums",
      [](const array_of<double>& x, const array_of<int64_t>& offsets) {
        check_finite(x, "x");
        check_row_offsets(offsets, x.shape(0));
        const int64_t n_rows = offsets.shape(0) - 1;
        py::array_t<double> sums(n_rows);
        double* out = sums.mutable_data();
        std::vector<double> partials;
        for (int64_t p = 0; p < n_rows; ++p)
          out[p] = exact_sum(x.data() + offsets.at(p), offsets.at(p + 1) - offsets.at(p), partials);
        return sums;
      },
      py::arg("x"), py::arg("offsets"),
      "The correctly rounded sum (math.fsum) of each row x[offsets[p]:offsets[p+1]].");

  m.def(
      "renormalise_rows",
      [](exact_array<double>& flat, const array_of<int64_t>& offsets, const array_of<double>& totals) {
        require_ndim(flat, 1, "flat");
        check_row_offsets(offsets, flat.shape(0));
        check_finite(totals, "totals");
        if (totals.shape(0) != offsets.shape(0) - 1) throw std::invalid_argument("totals: need one per row");
        for (int64_t p = 0; p < totals.shape(0); ++p)
          if (!(totals.at(p) > 0.0)) throw std::invalid_argument("totals: must be > 0");
        double* data = flat.mutable_data();
        for (int64_t j = 0; j < flat.shape(0); ++j)
          if (!(data[j] >= 0.0) || !std::isfinite(data[j]))
            throw std::invalid_argument("flat: entries must be finite and >= 0");
        renormalise_rows(data, offsets.data(), totals.shape(0), totals.data());
      },
      py::arg("flat"), py::arg("offsets"), py::arg("totals"),
      "Renormalises in place each row of flat whose correctly rounded sum totals[p] is not 1\n"
      "(divided by it, the largest entry then set to the correctly rounded 1 - the others).");
}

}  // namespace ualign::bind
