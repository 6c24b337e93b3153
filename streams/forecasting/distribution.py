"""Counts around a forecast mean: negative binomial with variance ``mean + alpha * mean²`` (``alpha`` = 0:
Poisson), ``alpha`` fitted on a model's own errors. Quantiles are whole numbers, never negative; scores of a
forecast distribution against what happened (CRPS, interval coverage)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

Floats = npt.NDArray[np.float64]
#: the quantiles every forecast carries (the 90 % one is the staffing figure)
QUANTILES = (0.1, 0.5, 0.8, 0.9)
_TINY_MEAN = 1e-9


def fit_dispersion(mean: Floats, observed: Floats) -> float:
    """``alpha`` by the method of moments on forecast errors: the variance beyond Poisson, per squared mean."""
    mean, observed = np.ravel(mean), np.ravel(observed)
    square = float(np.sum(mean**2))
    if square <= 0:
        return 0.0
    return max(0.0, float(np.sum((observed - mean) ** 2 - mean)) / square)


def _frozen(mean: Floats, alpha: float):  # type: ignore[no-untyped-def]
    mean = np.maximum(np.asarray(mean, dtype=float), _TINY_MEAN)
    if alpha <= 0:
        return stats.poisson(mean)
    size = 1.0 / alpha
    return stats.nbinom(size, size / (size + mean))


def quantiles(mean: Floats, alpha: float, levels: tuple[float, ...] = QUANTILES) -> npt.NDArray[np.int64]:
    """Whole-number quantiles, shape ``mean.shape + (len(levels),)``: the smallest k with P(N <= k) >= level."""
    dist = _frozen(mean, alpha)
    return np.stack([dist.ppf(q) for q in levels], axis=-1).astype(np.int64)


def crps(mean: Floats, alpha: float, observed: Floats) -> Floats:
    """Continuous ranked probability score of each forecast distribution (discrete: the sum over k >= 0 of
    (P(N <= k) - [observed <= k])²); lower is better, in counts."""
    mean = np.maximum(np.ravel(mean).astype(float), _TINY_MEAN)
    observed = np.ravel(observed).astype(float)
    if not len(mean):
        return np.zeros(0)
    top = int(max(observed.max(), float(np.max(_frozen(mean, alpha).ppf(1 - 1e-6))))) + 1
    k = np.arange(top + 1)
    out = np.zeros(len(mean))
    step = max(1, 4_000_000 // len(k))  # rows per chunk: memory stays bounded for long tails
    for lo in range(0, len(mean), step):
        cdf = _cdf(mean[lo:lo + step], alpha, k)
        below = observed[lo:lo + step, None] <= k[None, :]
        out[lo:lo + step] = np.sum((cdf - below) ** 2, axis=1)
    return out


def _cdf(mean: Floats, alpha: float, k: npt.NDArray[np.int64]) -> Floats:
    """P(N <= k): one row per mean, one column per k."""
    if alpha <= 0:
        return stats.poisson.cdf(k[None, :], mean[:, None])
    size = 1.0 / alpha
    return stats.nbinom.cdf(k[None, :], size, (size / (size + mean))[:, None])
