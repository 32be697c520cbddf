"""Temperature scaling and isotonic regression on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import (
    TEMPERATURE_BOUNDS,
    apply_isotonic,
    fit_isotonic,
    fit_temperature,
    log_softmax,
    nll,
    softmax,
)


def sampled(n: int = 4000, classes: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from ``softmax(logits)``: perfectly calibrated at T=1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, classes))
    probabilities = softmax(logits)
    labels = np.array([rng.choice(classes, p=row) for row in probabilities])
    return logits, labels


def test_softmax_rows_sum_to_one_and_survive_large_logits() -> None:
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 1.0, 1.0], [-5e4, -5e4, 0.0]])

    probabilities = softmax(logits)

    assert np.all(np.isfinite(probabilities))
    assert probabilities.sum(axis=1) == pytest.approx(np.ones(3))
    assert probabilities[0] == pytest.approx([1.0, 0.0, 0.0])
    assert probabilities[1] == pytest.approx([1 / 3] * 3)
    assert np.all(np.isfinite(log_softmax(logits)))


@pytest.mark.parametrize("temperature", [0.5, 2.0, 10.0])
def test_temperature_flattens_or_sharpens_but_keeps_the_order(temperature: float) -> None:
    logits = np.array([[3.0, 1.0, 0.0]])

    plain, scaled = softmax(logits)[0], softmax(logits, temperature)[0]

    assert np.argsort(plain).tolist() == np.argsort(scaled).tolist()
    assert bool(scaled.max() < plain.max()) is (temperature > 1)


def test_nll_of_known_values() -> None:
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))

    assert nll(logits, [0, 1]) == pytest.approx(-(np.log(0.5) + np.log(0.8)) / 2)
    assert nll(logits, []) == 0.0
    assert nll(logits * 2, [0, 1], temperature=2.0) == pytest.approx(nll(logits, [0, 1]))


@pytest.mark.parametrize("k", [0.4, 1.0, 2.5, 6.0])
def test_fit_temperature_recovers_a_known_scale(k: float) -> None:
    true_logits, labels = sampled()

    fitted = fit_temperature(true_logits * k, labels)

    assert fitted == pytest.approx(k, rel=0.1)


def test_fit_temperature_reduces_nll_of_overconfident_logits() -> None:
    true_logits, labels = sampled(seed=1)
    overconfident = true_logits * 4

    fitted = fit_temperature(overconfident, labels)

    assert fitted > 1
    assert nll(overconfident, labels, fitted) < nll(overconfident, labels, 1.0) - 0.1


def test_fit_temperature_never_changes_a_prediction() -> None:
    logits, labels = sampled(n=500, seed=2)

    fitted = fit_temperature(logits * 3, labels)

    assert np.array_equal(softmax(logits * 3, fitted).argmax(axis=1),
                          softmax(logits * 3).argmax(axis=1))


@pytest.mark.parametrize("labels", [[], np.array([], dtype=int)])
def test_fit_temperature_without_data_is_one(labels) -> None:
    assert fit_temperature(np.zeros((0, 3)), labels) == 1.0


def test_fit_temperature_stays_within_bounds_for_near_perfect_separation() -> None:
    logits = np.array([[5.0, 0.0], [0.0, 5.0]] * 10 + [[0.1, 0.0]])
    labels = [0, 1] * 10 + [1]  # one mistake, made with little confidence

    fitted = fit_temperature(logits, labels)

    low, high = TEMPERATURE_BOUNDS
    assert low <= fitted <= high
    assert fitted < 1.0  # nearly always right and sure: sharper


def test_isotonic_is_exact_on_already_monotone_data() -> None:
    xs, ys = fit_isotonic([0.0, 1.0, 2.0, 3.0], [0.0, 0.2, 0.5, 1.0])

    assert xs == [0.0, 1.0, 2.0, 3.0]
    assert ys == [0.0, 0.2, 0.5, 1.0]
    assert apply_isotonic(np.array([0.0, 2.0, 3.0]), xs, ys).tolist() == [0.0, 0.5, 1.0]


def test_isotonic_pools_violators() -> None:
    xs, ys = fit_isotonic([0.0, 1.0], [1.0, 0.0])

    assert ys == [0.5, 0.5]
    assert apply_isotonic(np.array([0.0, 0.5, 1.0]), xs, ys).tolist() == [0.5, 0.5, 0.5]


def test_isotonic_pools_a_violator_with_all_it_breaks() -> None:
    xs, ys = fit_isotonic([1.0, 2.0, 3.0, 4.0], [0.0, 0.6, 0.9, 0.0])

    assert xs == [1.0, 2.0, 4.0]
    assert ys == [0.0, 0.5, 0.5]


def test_isotonic_sorts_scores_first() -> None:
    xs, ys = fit_isotonic([3.0, 1.0, 2.0], [1.0, 0.0, 0.5])

    assert xs == [1.0, 2.0, 3.0]
    assert ys == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("seed", range(5))
def test_isotonic_output_is_monotone_on_noisy_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=200)
    targets = np.clip(scores / 3 + 0.5 + rng.normal(scale=0.3, size=200), 0, 1)

    xs, ys = fit_isotonic(scores, targets)
    mapped = apply_isotonic(np.sort(rng.normal(size=500) * 2), xs, ys)

    assert np.all(np.diff(xs) > 0)
    assert np.all(np.diff(ys) >= 0)
    assert np.all(np.diff(mapped) >= 0)
    assert min(ys) >= targets.min() and max(ys) <= targets.max()
    # Pooling keeps the mean of the targets.
    fitted = apply_isotonic(scores, xs, ys)
    assert fitted.mean() == pytest.approx(targets.mean(), abs=0.02)


def test_isotonic_clips_outside_the_fitted_range() -> None:
    xs, ys = fit_isotonic([0.0, 1.0], [0.2, 0.8])

    assert apply_isotonic(np.array([-100.0, 0.5, 100.0]), xs, ys) == pytest.approx(
        [0.2, 0.5, 0.8])


@pytest.mark.parametrize("xs", [[], ()])
def test_isotonic_without_knots_is_identity(xs) -> None:
    scores = np.array([-1.0, 0.3, 7.0])

    assert apply_isotonic(scores, xs, []).tolist() == scores.tolist()


def test_isotonic_of_no_data_has_no_knots() -> None:
    assert fit_isotonic([], []) == ([], [])


def test_isotonic_of_one_point_is_constant() -> None:
    xs, ys = fit_isotonic([0.3], [0.7])

    assert (xs, ys) == ([0.3], [0.7])
    assert apply_isotonic(np.array([-5.0, 5.0]), xs, ys).tolist() == [0.7, 0.7]


def test_isotonic_of_tied_scores_does_not_depend_on_row_order() -> None:
    assert fit_isotonic([0.0, 1.0, 1.0], [0.0, 0.0, 1.0]) == fit_isotonic(
        [0.0, 1.0, 1.0], [0.0, 1.0, 0.0])


def test_fit_temperature_does_not_sharpen_on_a_flawless_validation_set() -> None:
    logits = np.array([[4.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 2.0]])

    assert fit_temperature(logits, [0, 1, 2]) == 1.0
