"""Post-hoc calibration, fitted on validation data: temperature and isotonic maps.

- **Temperature scaling** (Guo et al., 2017) divides the logits by one scalar
  ``T`` that minimises the negative log-likelihood of the validation labels.
  It changes no prediction, only how sure the model says it is, so that a
  confidence of 0.8 is right about 80% of the time and a fallback threshold
  read off validation data means the same when serving.
- **Isotonic regression** (pool adjacent violators) maps a raw score to the
  mean target of its neighbourhood, monotonically. The sentiment intensity
  head's raw output is mapped this way to the expected intensity level.

NumPy only, so every function is tested on hand-made arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TEMPERATURE_BOUNDS = (0.05, 20.0)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, stable for large logits."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def nll(logits: np.ndarray, labels: Sequence[int], temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 0.0
    log_probabilities = log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return float(-log_probabilities[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: Sequence[int]) -> float:
    """The temperature that minimises validation NLL (golden-section search on log T).

    NLL is unimodal in ``log T`` for a fixed set of logits, so a bracketed
    golden-section search finds the optimum without gradients. Returns 1.0
    (no change) when there is no validation data, or when every validation
    prediction is right: NLL then only falls as ``T`` shrinks, and sharpening a
    model on evidence of no error would make it overconfident on the first one.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0 or bool(np.all(np.asarray(logits).argmax(axis=1) == labels)):
        return 1.0
    low, high = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll(logits, labels, np.exp(a)), nll(logits, labels, np.exp(b))
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(logits, labels, np.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(logits, labels, np.exp(b))
    return float(round(np.exp((low + high) / 2), 4))


def fit_isotonic(scores: Sequence[float], targets: Sequence[float]
                 ) -> tuple[list[float], list[float]]:
    """A non-decreasing map from ``scores`` to ``targets`` (pool adjacent violators).

    Returns:
        ``(xs, ys)``: knots for ``np.interp``; scores outside the range take
        the end values. Empty lists when there is no data.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if len(scores) == 0:
        return [], []
    order = np.argsort(scores, kind="mergesort")
    # Tied scores are one point with their mean target, whatever the row order.
    unique, starts = np.unique(scores[order], return_index=True)
    sums = np.add.reduceat(targets[order], starts)
    counts = np.diff(np.append(starts, len(scores)))
    # Each block: [sum of targets, count, min score, max score]; neighbours with
    # equal means merge too (same function, fewer knots).
    blocks: list[list[float]] = []
    for x, total, count in zip(unique, sums, counts):
        blocks.append([float(total), float(count), float(x), float(x)])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            total, count, _, high = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
            blocks[-1][3] = high
    xs: list[float] = []
    ys: list[float] = []
    for total, count, low, high in blocks:
        mean = round(total / count, 6)
        for x in (low, high) if high > low else (low,):
            xs.append(round(x, 6))
            ys.append(mean)
    return xs, ys


def apply_isotonic(scores: np.ndarray, xs: Sequence[float], ys: Sequence[float]) -> np.ndarray:
    """Maps raw scores through the knots of ``fit_isotonic`` (identity without knots)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not len(xs):
        return scores
    return np.interp(scores, xs, ys)
