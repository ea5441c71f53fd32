// A comparison operand in kernel form: a finite mixture of product policies
// pi^(k) and of fixed multisets. A response y is the multiset {y}; a Product is
// one product term; a MultisetPolicy is a list of multiset terms; a self-play
// average is a list of product terms.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ualign {

// The largest supported number of draws k (ualign._validate.K_MAX): 2^53 - 1, so
// that k and k + 1 are exact doubles and no count arithmetic can overflow.
inline constexpr int64_t kMaxK = (int64_t(1) << 53) - 1;

// A number of draws checked against [1, kMaxK]; the message starts with `what`
// ("k: ", "ks[2]: ", "a: k ").
inline void check_k(int64_t k, const std::string& what) {
  if (k < 1 || k > kMaxK)
    throw std::invalid_argument(what + "must be in [1, 2**53 - 1 = " + std::to_string(kMaxK) + "], got " +
                                std::to_string(k));
}

struct Operand {
  int64_t m = 0;  // number of responses

  int64_t n_products = 0;
  const double* policies = nullptr;       // n_products x m
  const double* product_probs = nullptr;  // n_products
  const int64_t* ks = nullptr;            // n_products, each in [1, kMaxK]

  int64_t n_multisets = 0;
  const int64_t* items = nullptr;          // concatenated members
  const int64_t* offsets = nullptr;        // n_multisets + 1
  const double* multiset_probs = nullptr;  // n_multisets

  // Largest number of draws of any term: the degree of its count polynomial.
  int64_t max_size() const {
    int64_t s = 0;
    for (int64_t t = 0; t < n_products; ++t) s = std::max(s, ks[t]);
    for (int64_t t = 0; t < n_multisets; ++t) s = std::max(s, offsets[t + 1] - offsets[t]);
    return s;
  }

  // The safety net under the Python validation: nothing a kernel indexes with is
  // trusted without this check.
  void check(const std::string& name) const {
    for (int64_t t = 0; t < n_products; ++t) {
      check_k(ks[t], name + ": k ");
      if (!(product_probs[t] >= 0.0) || !std::isfinite(product_probs[t]))
        throw std::invalid_argument(name + ": mixture probabilities must be finite and >= 0");
      double total = 0.0;
      for (int64_t y = 0; y < m; ++y) {
        const double p = policies[t * m + y];
        if (!(p >= 0.0) || !std::isfinite(p))
          throw std::invalid_argument(name + ": policy entries must be finite and >= 0");
        total += p;
      }
      // The large-k closed forms measure level masses as fractions of this total.
      if (!(total > 0.0)) throw std::invalid_argument(name + ": a policy must have a positive total mass");
    }
    if (n_multisets > 0 && offsets[0] != 0) throw std::invalid_argument(name + ": offsets must start at 0");
    for (int64_t t = 0; t < n_multisets; ++t) {
      if (offsets[t + 1] < offsets[t]) throw std::invalid_argument(name + ": offsets must be nondecreasing");
      if (!(multiset_probs[t] >= 0.0) || !std::isfinite(multiset_probs[t]))
        throw std::invalid_argument(name + ": multiset probabilities must be finite and >= 0");
    }
    const int64_t total = n_multisets > 0 ? offsets[n_multisets] : 0;
    for (int64_t j = 0; j < total; ++j) {
      if (items[j] < 0 || items[j] >= m)
        throw std::invalid_argument(name + ": response index out of range [0, " + std::to_string(m) + ")");
    }
  }
};

// pi^(k) as an operand: one product term of probability 1 (`k` must outlive it).
inline Operand product_operand(int64_t m, const double* pi, const int64_t* k) {
  static constexpr double kOne = 1.0;
  static constexpr int64_t kNoMultisets = 0;
  Operand op;
  op.m = m;
  op.n_products = 1;
  op.policies = pi;
  op.product_probs = &kOne;
  op.ks = k;
  op.offsets = &kNoMultisets;
  return op;
}

}  // namespace ualign
