"""Plots of audit results (needs matplotlib: ``pip install 'ualign[plot]'``)."""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

_STYLE = {"given": ("black", "o", "-"), "nlhf": ("tab:red", "s", "-"), "rlhf": ("tab:orange", "v", "-"),
          "mpne": ("tab:blue", "D", "-"), "optimal": ("tab:green", "^", "--"),
          "committee": ("tab:purple", "P", "-."), "uniform": ("tab:gray", "x", ":")}


def plot_levels(results: Any, path: str, title: Optional[str] = None, ties: str = "uniform") -> None:
    """A PNG of robust level against k, one line per method, with the bound k/(k+1).

    ``results`` is the DataFrame of :func:`ualign.audit_many` or the columns of
    :func:`ualign.audit.audit_columns`. With several prompts each line is the
    mean over prompts and the shaded band spans their minimum to maximum. With
    bootstrap columns (``audit_many(..., n_boot=B)``) a hatched band spans the
    bootstrap interval (with several prompts, the means of its bounds).
    """
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'ualign[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    names = ["method", "k", "robust_level", "prompt"]
    bootstrap = "level_ci_low" in results
    if bootstrap:
        names += ["level_ci_low", "level_ci_high"]
    columns: Dict[str, np.ndarray] = {name: np.asarray(results[name]) for name in names}
    ks = np.unique(columns["k"])
    n_prompts = len(set(columns["prompt"].tolist()))
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    grid = np.arange(1, ks.max() + 1)
    # drawn over the methods: MPNE and the optimal policy sit exactly on it
    axes.plot(grid, grid / (grid + 1.0), color="black", linestyle="--", linewidth=1.2, zorder=5,
              label="bound k/(k+1)")
    methods = list(dict.fromkeys(columns["method"].tolist()))
    for method in methods:
        color, marker, line = _STYLE.get(method, ("tab:cyan", ".", "-"))
        mean, low, high, ci_low, ci_high = [], [], [], [], []
        for k in ks:
            rows = (columns["method"] == method) & (columns["k"] == k)
            values = columns["robust_level"][rows]
            mean.append(values.mean() if values.size else np.nan)
            low.append(values.min() if values.size else np.nan)
            high.append(values.max() if values.size else np.nan)
            if bootstrap:
                ci_low.append(columns["level_ci_low"][rows].mean() if values.size else np.nan)
                ci_high.append(columns["level_ci_high"][rows].mean() if values.size else np.nan)
        axes.plot(ks, mean, color=color, marker=marker, linestyle=line, label=method)
        if n_prompts > 1:
            axes.fill_between(ks, low, high, color=color, alpha=0.12, linewidth=0)
        if bootstrap:
            axes.fill_between(ks, ci_low, ci_high, facecolor="none", edgecolor=color, hatch="///", alpha=0.5,
                              linewidth=0)
    axes.set_xlabel("k (samples)")
    axes.set_ylabel(r"robust level $\min_y P[\pi^{\otimes k} \succ y]$" if n_prompts == 1 else
                    f"robust level (mean and range over {n_prompts} prompts)")
    axes.set_xticks(ks)
    axes.set_ylim(0.0, 1.0)
    axes.grid(True, alpha=0.3)
    axes.set_title(title or "robust alignment level against k", fontsize=10)
    band = "; hatched: bootstrap interval" if bootstrap else ""
    axes.legend(loc="lower right", fontsize=8, title=f"ties: {ties}{band}", title_fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
