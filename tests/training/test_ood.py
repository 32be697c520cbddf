"""Out-of-scope detectors on synthetic clustered embeddings (seeded NumPy)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from training.ood import (
    DEFAULT_K,
    METHODS,
    OutOfScopeDetector,
    auroc,
    normalise,
)

DIM = 16
N_LABELS = 3


def clusters(per_label: int = 40, spread: float = 0.15, seed: int = 0
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points around three orthogonal class centres: ``(features, labels, centres)``."""
    rng = np.random.default_rng(seed)
    centres = np.eye(DIM)[:N_LABELS] * 3.0
    labels = np.repeat(np.arange(N_LABELS), per_label)
    features = centres[labels] + rng.normal(scale=spread, size=(len(labels), DIM))
    return features.astype(np.float32), labels, centres


def far_points(n: int = 30, seed: int = 1) -> np.ndarray:
    """Points along directions none of the classes uses."""
    rng = np.random.default_rng(seed)
    directions = np.zeros((n, DIM))
    directions[:, N_LABELS:] = rng.normal(size=(n, DIM - N_LABELS))
    return (directions * 3.0).astype(np.float32)


def logits_for(n: int) -> np.ndarray:
    return np.zeros((n, N_LABELS))


@pytest.fixture
def fitted():
    """Factory: a detector of ``method`` fitted on the training clusters."""

    def fit(method: str, **options) -> OutOfScopeDetector:
        features, labels, _ = clusters()
        return OutOfScopeDetector.fit(method, features, labels, N_LABELS, **options)

    return fit


def test_normalise_gives_unit_rows_and_keeps_zero_rows() -> None:
    rows = normalise(np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]]))

    assert rows == pytest.approx(np.array([[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]]))
    assert rows.dtype == np.float32


@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_points_near_a_class_score_below_far_points(fitted, method: str) -> None:
    detector = fitted(method)
    near, _, _ = clusters(per_label=10, seed=5)
    far = far_points()

    near_scores = detector.scores(near, logits_for(len(near)))
    far_scores = detector.scores(far, logits_for(len(far)))

    assert near_scores.shape == (len(near),)
    assert near_scores.max() < far_scores.min()
    assert auroc(near_scores, far_scores) == 1.0


@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_embedding_scores_ignore_the_length_of_the_features(fitted, method: str) -> None:
    detector = fitted(method)
    near, _, _ = clusters(per_label=5, seed=6)

    assert detector.scores(near * 7, logits_for(len(near))) == pytest.approx(
        detector.scores(near, logits_for(len(near))), abs=1e-4)


def test_mahalanobis_state_has_one_mean_per_label(fitted) -> None:
    detector = fitted("mahalanobis")

    assert detector.tensors["means"].shape == (N_LABELS, DIM)
    assert detector.tensors["precision"].shape == (DIM, DIM)
    assert np.allclose(detector.tensors["precision"], detector.tensors["precision"].T, atol=1e-2)


def test_mahalanobis_label_without_examples_keeps_a_zero_mean() -> None:
    features, labels, _ = clusters()

    detector = OutOfScopeDetector.fit("mahalanobis", features, labels, N_LABELS + 1)

    assert detector.tensors["means"].shape == (N_LABELS + 1, DIM)
    assert not detector.tensors["means"][N_LABELS].any()


def test_knn_bank_is_the_normalised_training_set_and_k_is_capped(fitted) -> None:
    features, _, _ = clusters()

    detector = fitted("knn", k=5)
    capped = OutOfScopeDetector.fit("knn", features[:3], [0, 1, 2], N_LABELS, k=50)

    assert detector.k == 5
    assert np.allclose(np.linalg.norm(detector.tensors["bank"], axis=1), 1.0, atol=1e-5)
    assert detector.tensors["bank"].shape == features.shape
    assert capped.k == 3


def test_knn_score_is_the_cosine_distance_to_the_kth_neighbour() -> None:
    bank = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    detector = OutOfScopeDetector.fit("knn", bank, [0, 1, 2], 3, k=2)

    [score] = detector.scores(np.array([[1.0, 0.0]]), logits_for(1))

    assert score == pytest.approx(1.0)  # 1st neighbour at distance 0, 2nd at 1


@pytest.mark.parametrize("method", ["msp", "energy"])
def test_uniform_logits_score_above_peaked_ones(fitted, method: str) -> None:
    detector = fitted(method)
    logits = np.array([[1.0, 1.0, 1.0], [6.0, 0.0, 0.0], [40.0, 0.0, 0.0]])

    uniform, peaked, very_peaked = detector.scores(None, logits)

    assert uniform > peaked > very_peaked


def test_msp_is_one_minus_the_top_probability() -> None:
    detector = OutOfScopeDetector(method="msp")

    scores = detector.scores(None, np.array([[0.0, 0.0], [np.log(3.0), 0.0]]))

    assert scores == pytest.approx([0.5, 0.25])


def test_msp_and_energy_use_the_temperature() -> None:
    logits = np.array([[2.0, 0.0, 0.0]])

    hot = OutOfScopeDetector(method="msp", temperature=4.0).scores(None, logits)
    cold = OutOfScopeDetector(method="msp", temperature=1.0).scores(None, logits)
    energy = OutOfScopeDetector(method="energy", temperature=2.0).scores(None, logits)

    assert hot[0] > cold[0]
    assert energy[0] == pytest.approx(-2.0 * np.log(np.exp(1.0) + 2.0))


@pytest.mark.parametrize("method", ["msp", "energy"])
def test_logit_methods_need_no_features_nor_state(fitted, method: str) -> None:
    detector = fitted(method, temperature=1.5)

    assert detector.tensors == {}
    assert detector.temperature == 1.5
    assert np.all(np.isfinite(detector.scores(None, np.array([[1e4, -1e4, 0.0]]))))


@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_embedding_methods_without_features_are_refused(fitted, method: str) -> None:
    with pytest.raises(ValueError, match=f"the {method} detector needs the pooled embeddings"):
        fitted(method).scores(None, logits_for(2))


@pytest.mark.parametrize("method", ["lof", "", "KNN"])
def test_unknown_method_is_refused(method: str) -> None:
    with pytest.raises(ValueError, match="use one of msp, energy, mahalanobis, knn"):
        OutOfScopeDetector(method=method)
    with pytest.raises(ValueError):
        OutOfScopeDetector.fit(method, np.zeros((2, 2)), [0, 1], 2)


@pytest.mark.parametrize("recall", [0.5, 0.8, 0.95, 0.99])
def test_threshold_accepts_the_requested_share_of_known_scores(recall: float) -> None:
    scores = np.random.default_rng(3).normal(size=1000)
    detector = OutOfScopeDetector()

    threshold = detector.set_threshold(scores, recall)
    accepted = 1.0 - detector.is_unknown(scores).mean()

    assert detector.threshold == threshold
    assert detector.known_recall == recall
    assert recall <= accepted <= recall + 0.002
    assert threshold in scores  # one of the observed scores ("higher" quantile)


def test_threshold_without_validation_scores_accepts_everything() -> None:
    detector = OutOfScopeDetector()

    assert detector.set_threshold(np.array([]), 0.95) == math.inf
    assert not detector.is_unknown(np.array([1e30, -1.0])).any()


def test_is_unknown_is_strictly_above_the_threshold() -> None:
    detector = OutOfScopeDetector(threshold=0.5)

    assert detector.is_unknown(np.array([0.49, 0.5, 0.51])).tolist() == [False, False, True]


@pytest.mark.parametrize("method", METHODS)
def test_json_round_trip_gives_identical_scores(fitted, method: str) -> None:
    detector = fitted(method, temperature=1.7, k=4)
    near, _, _ = clusters(per_label=5, seed=8)
    detector.set_threshold(detector.scores(near, np.eye(N_LABELS)[np.arange(15) % 3] * 3), 0.9)
    probe = np.concatenate([near, far_points(5)])
    logits = np.random.default_rng(4).normal(size=(len(probe), N_LABELS))

    data = json.loads(json.dumps(detector.to_json()))
    rebuilt = OutOfScopeDetector.from_json(data, {name: array.copy() for name, array
                                                  in detector.tensors.items()})

    assert rebuilt.to_json() == detector.to_json()
    assert np.array_equal(rebuilt.scores(probe, logits), detector.scores(probe, logits))
    assert np.array_equal(rebuilt.is_unknown(rebuilt.scores(probe, logits)),
                          detector.is_unknown(detector.scores(probe, logits)))


def test_from_json_fills_defaults_of_older_files() -> None:
    detector = OutOfScopeDetector.from_json({"method": "msp", "threshold": 0.3}, {})

    assert (detector.known_recall, detector.temperature, detector.k) == (0.95, 1.0, DEFAULT_K)


@pytest.mark.parametrize(
    ("known", "unknown", "expected"),
    [
        ([0.1, 0.2, 0.3], [0.7, 0.8], 1.0),
        ([0.7, 0.8], [0.1, 0.2, 0.3], 0.0),
        ([0.5, 0.5], [0.5, 0.5, 0.5], 0.5),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 0.5),
        ([0.1, 0.5], [0.5, 0.9], 0.875),  # one tie counts half: (1 + 1 + 0.5 + 1) / 4
        ([0.0, 1.0], [0.5], 0.5),
    ],
)
def test_auroc(known, unknown, expected: float) -> None:
    assert auroc(np.array(known), np.array(unknown)) == pytest.approx(expected)


@pytest.mark.parametrize(("known", "unknown"), [([], [1.0]), ([1.0], []), ([], [])])
def test_auroc_of_an_empty_side_is_nan(known, unknown) -> None:
    assert math.isnan(auroc(np.array(known), np.array(unknown)))


def test_auroc_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(9)
    known = rng.integers(0, 5, size=40).astype(float)
    unknown = rng.integers(2, 8, size=30).astype(float)

    pairs = [(u > k) + 0.5 * (u == k) for k in known for u in unknown]

    assert auroc(known, unknown) == pytest.approx(np.mean(pairs))
