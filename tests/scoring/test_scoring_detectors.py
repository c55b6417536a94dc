"""Detector protocol, evaluation metrics and the learned detector."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from corpus.scoring.detectors import (
    Detector,
    LearnedDetector,
    evaluate,
    features,
    split_indices,
    tpr_at_fpr,
)
from corpus.scoring.synthetic import ai_text, human_text, make_vocab
from corpus.scoring.text import prepare


def synthetic_corpus(seed: int, n: int = 360, group_size: int = 4):
    """Alternating human/AI texts of 40-200 words; consecutive texts share a group id."""
    rng = np.random.default_rng(seed)
    vocab = make_vocab(rng, 3000)
    texts, labels, groups = [], [], []
    for i in range(n):
        label = i % 2
        make = ai_text if label else human_text
        texts.append(make(rng, vocab, int(rng.integers(40, 200))))
        labels.append(label)
        groups.append(f"g{i // group_size}")
    return texts, labels, groups


@pytest.fixture(scope="module")
def corpus():
    return synthetic_corpus(seed=1)


@pytest.fixture(scope="module")
def trained(corpus):
    texts, labels, groups = corpus
    detector = LearnedDetector()
    report = detector.fit(texts, labels, groups=groups, test_size=0.25, seed=0)
    return detector, report


def test_evaluate_on_a_hand_computed_example():
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    m = evaluate(y, s)
    # 15 of the 16 (positive, negative) pairs are ordered correctly.
    assert m["auroc"] == pytest.approx(15 / 16)
    assert m["accuracy"] == pytest.approx(6 / 8)  # 0.6 and 0.4 are on the wrong side of 0.5
    # At FPR 0 the top three positives are caught; the next ROC point is (0.25, 0.75) then
    # (0.25, 1.0): at 1% and 5% FPR we interpolate between (0, 0.75) and (0.25, 0.75).
    assert m["tpr_at_fpr_1pct"] == pytest.approx(0.75)
    assert m["tpr_at_fpr_5pct"] == pytest.approx(0.75)
    assert (m["n"], m["n_positive"], m["n_negative"]) == (8, 4, 4)


def test_tpr_at_fpr_interpolates_between_roc_points():
    # ROC points: (0, 0), (0, 0.5), (0.5, 0.5), (0.5, 1), (1, 1).
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    assert tpr_at_fpr(y, s, 0.0) == pytest.approx(0.5)
    assert tpr_at_fpr(y, s, 0.25) == pytest.approx(0.5)
    assert tpr_at_fpr(y, s, 0.5) == pytest.approx(1.0)  # top of the vertical step
    # Between (0, 0) and a vertical step the interpolation is linear in FPR.
    y2 = np.array([0, 1, 0])
    s2 = np.array([0.9, 0.8, 0.1])  # (0,0) (0.5,0) (0.5,1) (1,1)
    assert tpr_at_fpr(y2, s2, 0.25) == pytest.approx(0.0)
    y3 = np.array([0, 1])
    s3 = np.array([0.5, 0.5])  # tie: (0,0) -> (1,1)
    assert tpr_at_fpr(y3, s3, 0.05) == pytest.approx(0.05)


def test_evaluate_with_one_class_reports_nan_for_ranking_metrics():
    m = evaluate([0, 0, 0], [0.1, 0.7, 0.2])
    assert math.isnan(m["auroc"])
    assert math.isnan(m["tpr_at_fpr_1pct"])
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_learned_detector_separates_held_out_texts(trained, corpus):
    detector, report = trained
    assert report.auroc >= 0.95
    assert report.tpr_at_fpr_5pct >= 0.8
    assert report.n_train + report.n_test == len(corpus[0])
    assert sum(report.train_label_counts.values()) == report.n_train
    assert sum(report.test_label_counts.values()) == report.n_test
    assert set(report.test_label_counts) == {"human", "ai"}
    assert report.grouped
    assert report.version == detector.version
    assert detector.version.startswith("learned-f1-")


def test_learned_detector_generalizes_to_a_fresh_corpus(trained):
    detector, _ = trained
    texts, labels, _ = synthetic_corpus(seed=2, n=120)
    # Fresh vocabulary spellings are shared by construction (same syllable inventory): the
    # detector must rely on style (punctuation, connectives, lengths), not on memorized words.
    m = evaluate(labels, detector.predict_proba(texts))
    assert m["auroc"] >= 0.9


def test_probabilities_are_probabilities(trained, corpus):
    detector, _ = trained
    p = detector.predict_proba(corpus[0][:50])
    assert p.shape == (50,)
    assert p.dtype == np.float64
    assert ((p >= 0) & (p <= 1)).all()
    assert detector.predict_proba([]).shape == (0,)


def test_save_load_round_trip_gives_identical_probabilities(trained, corpus, tmp_path):
    detector, report = trained
    path = tmp_path / "detector.npz"
    detector.save(path)
    loaded = LearnedDetector.load(path)
    texts = corpus[0][:80] + ["", "x", "Short text."]
    assert np.array_equal(loaded.predict_proba(texts), detector.predict_proba(texts))
    assert loaded.version == detector.version
    assert loaded.report == report


def test_save_load_round_trip_through_a_file_object(trained, corpus):
    detector, _ = trained
    buffer = io.BytesIO()
    detector.save(buffer)
    loaded = LearnedDetector.load(io.BytesIO(buffer.getvalue()))
    texts = corpus[0][:20]
    assert np.array_equal(loaded.predict_proba(texts), detector.predict_proba(texts))


def test_load_refuses_tampered_weights(trained, tmp_path):
    detector, _ = trained
    path = tmp_path / "detector.npz"
    detector.save(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["coef"] = arrays["coef"] * 1.01
    bad = tmp_path / "bad.npz"
    with open(bad, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="version"):
        LearnedDetector.load(bad)


def test_grouped_split_never_straddles_groups(corpus):
    _, labels, groups = corpus
    for seed in range(5):
        train, test = split_indices(labels, groups, test_size=0.3, seed=seed)
        assert not {groups[i] for i in train} & {groups[i] for i in test}
        assert sorted(np.r_[train, test].tolist()) == list(range(len(labels)))


def test_ungrouped_split_is_stratified(corpus):
    _, labels, _ = corpus
    train, test = split_indices(labels, None, test_size=0.25, seed=0)
    y = np.asarray(labels)
    assert abs(y[test].mean() - y.mean()) < 0.02
    assert len(test) == pytest.approx(0.25 * len(labels), abs=1)


def test_learned_detector_only_supports_plain_text(trained):
    detector, _ = trained
    assert isinstance(detector, Detector)
    assert detector.name == "learned"
    assert detector.supports("text")
    assert not detector.supports("chat")
    assert not detector.supports("code")


def test_untrained_detector_refuses_to_predict_or_save(tmp_path):
    detector = LearnedDetector()
    with pytest.raises(RuntimeError):
        detector.predict_proba(["hello"])
    with pytest.raises(RuntimeError):
        detector.save(tmp_path / "x.npz")


def test_fit_rejects_bad_labels():
    with pytest.raises(ValueError):
        LearnedDetector().fit(["a", "b"], [0, 2])


def test_fast_scoring_path_equals_the_training_matrix(rng, vocab):
    # Prediction gathers weights per n-gram family over chunks of concatenated documents;
    # training builds the sparse matrix. They must agree, including at document boundaries.
    texts = ["", "a", "ab", "abc", "one", "two words", "Hi, you!"]
    texts += [human_text(rng, vocab, int(n)) for n in rng.integers(0, 400, 60)]
    docs = [prepare(t) for t in texts]
    weights = rng.normal(size=features.N_FEATURES)
    expected = features.hashed_features(docs) @ weights[: features.N_HASHED]
    got = features.hashed_scores(docs, weights)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    singles = np.array([features.hashed_scores([d], weights)[0] for d in docs])
    # Exactly: the stored probability of an item must not depend on its batch neighbours.
    np.testing.assert_array_equal(singles, got)
