"""The best committee against the best single-output policy on a clustered population."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import ualign as ua  # noqa: E402
from ualign import instances  # noqa: E402

population = instances.clustered_population(4, m=6)   # 4 groups with distinct favourites, 6 responses
ks = np.arange(1, 7)
committee = [ua.solve_committee(population, int(k)).robust_level for k in ks]
single = [ua.solve_optimal(population, int(k)).robust_level for k in ks]

fig, ax = plt.subplots(figsize=(7, 4.2))
ax.plot(ks, ks / (ks + 1), "k--", lw=1.2, zorder=5, label="k/(k+1)")
ax.plot(ks, committee, "D-", label="best committee (multi-output)")
ax.plot(ks, single, "o-", label="best single-output policy, k samples")
ax.set_xlabel("k")
ax.set_ylabel("robust level")
ax.set_title("4 equal groups with distinct favourites")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig("committee_vs_single.png", dpi=110)
