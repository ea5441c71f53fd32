// The one compact copy of a ranking population: dense levels in the narrowest
// unsigned type that holds m - 1 (uint8 / uint16 / uint32), the number of levels
// of each voter, and the normalised weights. Built once, never converted again.
// Copies share the levels (immutable once filled) and own their weights: a
// reweighted population (a bootstrap replicate) costs n doubles, not n x m levels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "levels.hpp"
#include "pairwise_kernels.hpp"
#include "ranking_kernels.hpp"

namespace ualign {

class RankingStore {
 public:
  using Storage = std::variant<std::vector<uint8_t>, std::vector<uint16_t>, std::vector<uint32_t>>;

  RankingStore(int64_t n, int64_t m) : n_(n), m_(m) {
    if (n < 1) throw std::invalid_argument("ranks: need at least one voter");
    if (m < 1) throw std::invalid_argument("ranks: need at least one response");
    if (m <= 256)
      storage_ = std::make_shared<Storage>(std::vector<uint8_t>(static_cast<size_t>(n * m)));
    else if (m <= 65536)
      storage_ = std::make_shared<Storage>(std::vector<uint16_t>(static_cast<size_t>(n * m)));
    else
      storage_ = std::make_shared<Storage>(std::vector<uint32_t>(static_cast<size_t>(n * m)));
    n_levels_ = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(n));
    weights_.assign(static_cast<size_t>(n), 1.0 / static_cast<double>(n));
  }

  template <class Key>
  void fill_from_keys(const Key* keys, bool better_is_lower) {
    std::visit([&](auto& levels) { dense_levels(keys, n_, m_, better_is_lower, levels.data(), n_levels_->data()); },
               *storage_);
  }

  template <class Index>
  void fill_from_orders(const Index* orders) {
    const int64_t bad = std::visit(
        [&](auto& levels) { return levels_from_orders(orders, n_, m_, levels.data(), n_levels_->data()); }, *storage_);
    if (bad >= 0)
      throw std::invalid_argument("orders: row " + std::to_string(bad) + " is not a permutation of 0.." +
                                  std::to_string(m_ - 1));
  }

  // Weights are validated (finite, >= 0, positive sum) by the caller; stored normalised.
  void set_weights(const double* weights) {
    if (!(*std::max_element(weights, weights + n_) > 0.0)) throw std::invalid_argument("weights: must not all be zero");
    normalise_weights(weights, n_, weights_.data());
  }

  // Levels that are already dense (each row holds exactly 0..R-1, as in a pickled
  // store): checked and copied without ranking them again. Returns the first row
  // that is not dense, or -1.
  template <class Source>
  int64_t fill_from_dense(const Source* source) {
    return std::visit(
        [&](auto& levels) -> int64_t {
          using Level = typename std::decay_t<decltype(levels)>::value_type;
          std::vector<uint8_t> seen(static_cast<size_t>(m_));
          for (int64_t i = 0; i < n_; ++i) {
            const Source* row = source + i * m_;
            std::fill(seen.begin(), seen.end(), uint8_t{0});
            uint64_t top = 0;
            for (int64_t y = 0; y < m_; ++y) {
              const uint64_t level = static_cast<uint64_t>(row[y]);
              if (level >= static_cast<uint64_t>(m_)) return i;
              seen[static_cast<size_t>(level)] = 1;
              top = std::max(top, level);
              levels[static_cast<size_t>(i * m_ + y)] = static_cast<Level>(level);
            }
            for (uint64_t r = 0; r < top; ++r)
              if (!seen[static_cast<size_t>(r)]) return i;
            (*n_levels_)[static_cast<size_t>(i)] = static_cast<int32_t>(top + 1);
          }
          return -1;
        },
        *storage_);
  }

  // Weights that set_weights already normalised (an unpickled store): copied bit
  // for bit, so a population sent to another process computes identical results.
  void restore_normalised_weights(const double* weights) {
    for (int64_t i = 0; i < n_; ++i)
      if (!(weights[i] >= 0.0) || !std::isfinite(weights[i]))
        throw std::invalid_argument("weights: must be finite and >= 0");
    std::copy(weights, weights + n_, weights_.begin());
  }

  // Calls f(RankingView<Level>) with the stored level type.
  template <class F>
  decltype(auto) visit(F&& f) const {
    return std::visit(
        [&](const auto& levels) {
          using Level = typename std::decay_t<decltype(levels)>::value_type;
          const RankingView<Level> view{levels.data(), n_levels_->data(), weights_.data(), n_, m_};
          return f(view);
        },
        *storage_);
  }

  int64_t n() const { return n_; }
  int64_t m() const { return m_; }
  const Storage& storage() const { return *storage_; }
  const std::vector<int32_t>& n_levels() const { return *n_levels_; }
  const std::vector<double>& weights() const { return weights_; }
  size_t storage_bytes() const {
    return std::visit([](const auto& v) { return v.size() * sizeof(v[0]); }, *storage_);
  }

 private:
  int64_t n_, m_;
  std::shared_ptr<Storage> storage_;
  std::shared_ptr<std::vector<int32_t>> n_levels_;
  std::vector<double> weights_;
};

}  // namespace ualign
