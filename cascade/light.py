"""Light stand-ins where a heavy import would cost more than the work it does.

* :func:`import_igraph`: igraph imports matplotlib.pyplot for its own drawing code when
  matplotlib is installed (about 1.5 s of the 2 s of ``import igraph``), although cascade only
  asks it for degrees and betweenness.  In a ``cascade`` command process (the CLI calls
  :func:`hide_matplotlib_from_igraph`), igraph is imported with matplotlib hidden, so its
  drawing stays a stub; elsewhere (a notebook that may plot with igraph) it is imported as usual.
* :func:`spearman`: Spearman's rank correlation in numpy, the value of
  ``scipy.stats.spearmanr(x, y)[0]`` without importing ``scipy.stats`` (about 1 s).
* :func:`t95`: the Student t quantile of a 95 % interval by ``scipy.special.stdtrit``, the
  value of ``scipy.stats.t.ppf(0.975, n - 1)`` without importing ``scipy.stats``.
"""
from __future__ import annotations

import importlib
import math
import sys

import numpy as np

_hide_matplotlib = False


def hide_matplotlib_from_igraph() -> None:
    """Import igraph without its matplotlib drawing from now on, in this process (the CLI)."""
    global _hide_matplotlib
    _hide_matplotlib = True


def import_igraph():
    """The ``igraph`` module; in the CLI without importing matplotlib along with it."""
    if "igraph" in sys.modules or not _hide_matplotlib or "matplotlib" in sys.modules:
        return importlib.import_module("igraph")
    sys.modules["matplotlib"] = None   # `import matplotlib` raises ImportError: igraph uses a stub
    try:
        return importlib.import_module("igraph")
    finally:
        if sys.modules.get("matplotlib", 0) is None:
            del sys.modules["matplotlib"]


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given the mean of their ranks (scipy.stats.rankdata's 'average')."""
    order = np.argsort(a, kind="mergesort")
    ordered = a[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    dense = np.empty(len(a), np.int64)
    dense[order] = np.cumsum(new)
    ends = np.r_[np.flatnonzero(new), len(a)]
    return 0.5 * (ends[dense] + ends[dense - 1] + 1)


def spearman(x, y) -> float:
    """Spearman's rho of two equally long samples: the Pearson correlation of their average
    ranks; NaN when a sample has a NaN, fewer than 2 values or a constant value."""
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if len(x) != len(y):
        raise ValueError("spearman: samples of different lengths")
    if len(x) < 2 or np.isnan(x).any() or np.isnan(y).any():
        return float("nan")
    return spearman_ranked(centred_ranks(x), centred_ranks(y))


def centred_ranks(a: np.ndarray) -> np.ndarray:
    """The average ranks of ``a`` minus their mean (a sample without NaN): ranked once, a
    sample can be correlated with several others by :func:`spearman_ranked`."""
    r = _average_ranks(np.asarray(a, np.float64).ravel())
    r -= r.mean()
    return r


def spearman_ranked(rx: np.ndarray, ry: np.ndarray) -> float:
    """:func:`spearman` of two samples given as :func:`centred_ranks` (the same value)."""
    denom = np.sqrt(np.dot(rx, rx) * np.dot(ry, ry))
    if denom == 0:
        return float("nan")
    return float(np.clip(np.dot(rx, ry) / denom, -1.0, 1.0))


def t95(n: int) -> float:
    """The two-sided 95 % Student t quantile for a mean of ``n`` samples (n - 1 degrees of
    freedom): 12.7 for n = 2, 2.09 for n = 20, 1.98 for n = 100; NaN below 2 samples."""
    from scipy.special import stdtrit

    return float(stdtrit(n - 1, 0.975)) if n > 1 else math.nan
