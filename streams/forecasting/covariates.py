"""Optional covariates of the forecast (weather, scheduled events): a CSV a brigade maintains, and their
multiplicative effects fitted on the history.

File (``VIGIE_FORECAST_COVARIATES`` or ``--covariates``): one row per span, ``start,end,sector,name,value`` — the
covariate ``name`` is ``value`` over the hours of [start, end) (ISO times with their zone) for ``sector`` (``*``:
every sector); 0 elsewhere. A scheduled event is a 0/1 flag (``match,1``), weather a measure (``heat_above_30c,4``).
Rows must cover the hours to forecast as well as the past: the effect is learnt from past spans and applied to
future ones. Effects: a Poisson regression with the model's own forecast as offset, ``expected x exp(sum(beta_k x
x_k))``, fitted by Newton's method with a weak prior (beta ~ N(0, 1)) on the model's training window; a covariate
never non-zero there has no effect (nothing to learn from).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from streams.forecasting.calendar import HOUR, HourGrid

Floats = npt.NDArray[np.float64]
ALL = "*"
_PRIOR_PRECISION = 1.0


class CovariateFileError(ValueError):
    """A covariates file that cannot be read: the line and why."""


def _epoch(text: str, line: int) -> int:
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise CovariateFileError(f"line {line}: {text!r} is not an ISO time") from e
    if t.tzinfo is None:
        raise CovariateFileError(f"line {line}: {text!r} has no time zone")
    return int(t.timestamp())


def read_spans(path: Path) -> list[tuple[int, int, str, str, float]]:
    """(start, end, sector, name, value) of every row of a covariates file."""
    spans = []
    with Path(path).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"start", "end", "sector", "name", "value"} - set(reader.fieldnames or ())
        if missing:
            raise CovariateFileError(f"{path}: missing column(s) {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            start, end = _epoch(row["start"], line), _epoch(row["end"], line)
            if end <= start:
                raise CovariateFileError(f"line {line}: end {row['end']!r} is not after start {row['start']!r}")
            try:
                value = float(row["value"])
            except ValueError as e:
                raise CovariateFileError(f"line {line}: value {row['value']!r} is not a number") from e
            name = row["name"].strip()
            if not name:
                raise CovariateFileError(f"line {line}: no name")
            spans.append((start, end, row["sector"].strip() or ALL, name, value))
    return spans


def on_grid(spans: Iterable[tuple[int, int, str, str, float]], names: tuple[str, ...],
            grid: HourGrid) -> dict[str, Floats]:
    """Each covariate as a (sector x hour) array over ``grid`` (an hour counts when it starts inside a span; a
    sector the history does not know is ignored)."""
    index = {n: i for i, n in enumerate(names)}
    out: dict[str, Floats] = {}
    for start, end, sector, name, value in spans:
        x = out.setdefault(name, np.zeros((len(names), grid.hours)))
        first = max(0, -(-(start - grid.start) // HOUR))
        last = min(grid.hours, -(-(end - grid.start) // HOUR))
        if first >= last:
            continue
        if sector == ALL:
            x[:, first:last] = value
        elif sector in index:
            x[index[sector], first:last] = value
    return out


def fit_effects(counts: Floats, expected: Floats, covariates: dict[str, Floats], iterations: int = 25
                ) -> dict[str, float]:
    """beta per covariate: Poisson regression of ``counts`` on the covariates with ``log(expected)`` as offset
    (all arrays series x hours of the training window)."""
    names = [n for n, x in covariates.items() if np.any(x)]
    beta = np.zeros(len(names))
    if not names:
        return {n: 0.0 for n in covariates}
    keep = expected > 0
    y, base = counts[keep], expected[keep]
    x = np.stack([covariates[n][keep] for n in names], axis=1)
    for _ in range(iterations):
        mu = base * np.exp(x @ beta)
        grad = x.T @ (y - mu) - _PRIOR_PRECISION * beta
        hess = (x * mu[:, None]).T @ x + _PRIOR_PRECISION * np.eye(len(names))
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    fitted = dict(zip(names, beta.tolist(), strict=True))
    return {n: fitted.get(n, 0.0) for n in covariates}


def multiplier(effects: dict[str, float], covariates: dict[str, Floats], first: int, end: int) -> Floats | None:
    """exp(sum(beta_k x_k)) over hours [first, end), or None when no covariate has an effect."""
    active = [(b, covariates[n][:, first:end]) for n, b in effects.items() if b and n in covariates]
    if not active:
        return None
    return np.exp(sum(b * x for b, x in active))
