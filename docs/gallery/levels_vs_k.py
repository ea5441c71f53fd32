"""Robust level f(pi, k) against k of every method on the default population."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import ualign as ua  # noqa: E402
from ualign.datasets import default_population  # noqa: E402

ks = np.arange(1, 9)
methods = ["nlhf", "rlhf", "mpne", "optimal", "committee", "uniform"]
report = ua.audit_many([default_population()], ks=ks, methods=methods)

fig, ax = plt.subplots(figsize=(7, 4.2))
ax.plot(ks, ks / (ks + 1), "k--", lw=1.2, zorder=5, label="k/(k+1)")
for method, marker in zip(methods, "osD^vx"):
    rows = report[report.method == method]
    ax.plot(rows.k, rows.robust_level, marker=marker, ms=5, label=method)
ax.set_xlabel("k (samples shown to the user)")
ax.set_ylabel("robust level f(pi, k)")
ax.set_title("Default population: 12 responses, 3 groups (50/30/20%)")
ax.grid(alpha=0.3)
ax.legend(ncol=2, fontsize=9)
fig.tight_layout()
fig.savefig("levels_vs_k.png", dpi=110)
