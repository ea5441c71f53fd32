"""Plots of audit results (needs matplotlib: ``pip install 'ualign[plot]'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

_STYLE = {"given": ("black", "o", "-"), "nlhf": ("tab:red", "s", "-"), "rlhf": ("tab:orange", "v", "-"),
          "mpne": ("tab:blue", "D", "-"), "optimal": ("tab:green", "^", "--"),
          "committee": ("tab:purple", "P", "-."), "uniform": ("tab:gray", "x", ":")}

#: File formats :func:`plot_levels` writes, by the path's extension.
PLOT_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}

#: Longest response label shown in full in tables and captions.
_LABEL_WIDTH = 30

_COMMITTEE_NOTE = ("committee is multi-output: it shows the user k responses and the user takes the best of them, "
                   "so it may exceed k/(k+1), the best level of a single-output policy under uniform ties")


def plot_format(path: str) -> str:
    """The format ``path``'s extension names: ``"png"``, ``"pdf"`` or ``"svg"``."""
    suffix = Path(path).suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise ValueError(f"path: expected a file ending in {', '.join(PLOT_FORMATS)}, got {path!r}")
    return PLOT_FORMATS[suffix]


def response_name(y: int, labels: Optional[Sequence[Any]]) -> str:
    """Response ``y`` for a person: its index, followed by its label (a PrefLib
    alternative's name, a table's response id) where the label says more."""
    if labels is None:
        return str(y)
    label = labels[y]
    text = str(label.item() if isinstance(label, np.generic) else label)
    if text == str(y):
        return text
    return f"{y} ({text if len(text) <= _LABEL_WIDTH else text[:_LABEL_WIDTH - 1] + '…'})"


def _opponent_caption(columns: Dict[str, np.ndarray], method: str, labels: Optional[Sequence[Any]]) -> str:
    """``"worst-case opponent of the uniform policy: 3 (Sushi-X) at k = 1-2, 5 at k = 3-8"``."""
    rows = np.flatnonzero(columns["method"] == method)
    rows = rows[np.argsort(columns["k"][rows], kind="stable")]
    runs: List[List[Any]] = []  # [opponent, first k, last k]
    for j in rows:
        opponent, k = int(columns["opponent"][j]), int(columns["k"][j])
        if runs and runs[-1][0] == opponent:
            runs[-1][2] = k
        else:
            runs.append([opponent, k, k])
    parts = [f"{response_name(opponent, labels)} at k = {first}{'' if first == last else f'-{last}'}"
             for opponent, first, last in runs]
    return f"worst-case opponent of the {method} policy: {', '.join(parts)}"


def plot_levels(results: Any, path: str, title: Optional[str] = None, ties: str = "uniform",
                audited: Optional[str] = None, labels: Optional[Sequence[Any]] = None) -> None:
    """Plot robust level against k, one line per method, with the bound k/(k+1),
    into ``path`` as PNG, PDF or SVG (by its extension).

    ``results`` is the DataFrame of :func:`ualign.audit_many` or the columns of
    :func:`ualign.audit.audit_columns`. With several prompts each line is the
    mean over prompts and the shaded band spans their minimum to maximum. With
    one prompt and ``audited`` (a method of ``results``), a caption names that
    policy's worst-case opponent at each k, by ``labels`` (the labels of the
    prompt's responses) where given. A committee line comes with a caption on why
    it may exceed the bound. With
    bootstrap columns (``audit_many(..., n_boot=B)``) a hatched band spans the
    bootstrap interval (with several prompts, the means of its bounds).
    """
    file_format = plot_format(path)
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'ualign[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    names = ["method", "k", "robust_level", "prompt", "opponent"]
    bootstrap = "level_ci_low" in results
    if bootstrap:
        names += ["level_ci_low", "level_ci_high"]
    columns: Dict[str, np.ndarray] = {name: np.asarray(results[name]) for name in names}
    ks = np.unique(columns["k"])
    n_prompts = len(set(columns["prompt"].tolist()))
    methods = list(dict.fromkeys(columns["method"].tolist()))
    if audited is not None and audited not in methods:
        raise ValueError(f"audited: {audited!r} is not a method of the results ({', '.join(methods)})")
    captions = []
    if n_prompts == 1 and audited is not None:
        captions.append(_opponent_caption(columns, audited, labels))
    if "committee" in methods:
        captions.append(_COMMITTEE_NOTE)
    figure, axes = plt.subplots(figsize=(7, 4.5 + 0.3 * len(captions)), dpi=120)
    grid = np.arange(1, ks.max() + 1)
    # drawn over the methods: MPNE and the optimal policy sit exactly on it
    axes.plot(grid, grid / (grid + 1.0), color="black", linestyle="--", linewidth=1.2, zorder=5,
              label="bound k/(k+1)")
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
        label = "committee (multi-output, see below)" if method == "committee" else method
        axes.plot(ks, mean, color=color, marker=marker, linestyle=line, label=label)
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
    if captions:
        import textwrap

        text = "\n".join(textwrap.fill(caption, 110) for caption in captions)
        figure.text(0.01, 0.01, text, fontsize=7, va="bottom", ha="left")
        figure.tight_layout(rect=(0.0, 0.04 + 0.035 * text.count("\n"), 1.0, 1.0))
    else:
        figure.tight_layout()
    figure.savefig(path, format=file_format)
    plt.close(figure)
