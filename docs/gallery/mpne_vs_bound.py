"""The MPNE of a Plackett-Luce mixture reaches k/(k+1); NLHF sampled k times does not."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import ualign as ua  # noqa: E402

rng = np.random.default_rng(7)
rewards = rng.normal(scale=2.0, size=(3, 10))          # three types, ten responses
model = ua.PlackettLuceMixture(rewards, weights=[0.5, 0.3, 0.2])

ks = np.arange(1, 13)
nlhf = ua.solve_nlhf(model).policy
mpne_levels, shortfalls, nlhf_levels = [], [], []
for k in ks:
    mpne = ua.solve_mpne(model, int(k))
    mpne_levels.append(mpne.robust_level)
    shortfalls.append(k / (k + 1) - mpne.robust_level)
    nlhf_levels.append(ua.robust_level(model, nlhf, int(k)))

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
left.plot(ks, ks / (ks + 1), "k--", lw=1.2, zorder=5, label="k/(k+1)")
left.plot(ks, mpne_levels, "o", label="MPNE_k")
left.plot(ks, nlhf_levels, "s-", label="NLHF, k samples")
left.set_xlabel("k")
left.set_ylabel("robust level f(pi, k)")
left.legend()
left.grid(alpha=0.3)
right.semilogy(ks, np.maximum(shortfalls, 1e-17), "o-")
right.axhline(1e-8, color="grey", lw=1, ls=":", label="solver tolerance 1e-8")
right.set_xlabel("k")
right.set_ylabel("k/(k+1) - level (= exploitability)")
right.legend()
right.grid(alpha=0.3)
fig.suptitle("Plackett-Luce mixture of 3 types over 10 responses")
fig.tight_layout()
fig.savefig("mpne_vs_bound.png", dpi=110)
