// Gauss-Legendre rules on [0, 1]; a q-node rule integrates polynomials of degree
// <= 2q - 1 exactly, which is how tie shares c/(c+d) = int_0^1 c t^(c+d-1) dt are
// evaluated without enumerating counts.
#pragma once

#include <cmath>
#include <utility>
#include <vector>

namespace ualign {

struct GaussLegendre {
  std::vector<double> nodes;    // in (0, 1)
  std::vector<double> weights;  // sum to 1

  explicit GaussLegendre(int q) : nodes(static_cast<size_t>(q)), weights(static_cast<size_t>(q)) {
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < q; ++i) {
      // Newton on P_q from the Tricomi initial guess converges quadratically: a
      // few steps reach the rounding floor, where |dx| stalls around eps.
      double x = std::cos(pi * (i + 0.75) / (q + 0.5));
      for (int it = 0; it < 12; ++it) {
        const auto [p, dp] = legendre(q, x);
        const double dx = p / dp;
        x -= dx;
        if (std::fabs(dx) <= 4e-16) break;
      }
      const double dp = legendre(q, x).second;
      nodes[static_cast<size_t>(i)] = 0.5 * (1.0 - x);
      weights[static_cast<size_t>(i)] = 1.0 / ((1.0 - x * x) * dp * dp);  // 2/((1-x^2)P'^2), halved
    }
  }
  int size() const { return static_cast<int>(nodes.size()); }

 private:
  // (P_q(x), P_q'(x)) by the three-term recurrence.
  static std::pair<double, double> legendre(int q, double x) {
    double p0 = 1.0, p1 = x;
    for (int j = 2; j <= q; ++j) {
      const double p2 = ((2.0 * j - 1.0) * x * p1 - (j - 1.0) * p0) / j;
      p0 = p1;
      p1 = p2;
    }
    return {p1, q * (x * p1 - p0) / (x * x - 1.0)};
  }
};

}  // namespace ualign
