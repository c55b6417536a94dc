"""Detector protocol, evaluation metrics, the learned detector and its TF-IDF baseline.

The labelled data are generated (corpus.scoring.synthetic.labelled_corpus): human texts paired
by topic with texts of several generator families, so topic words carry no label and only
writing habits do; family "delta" (another style and vocabulary) is the one held out.
"""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest

from corpus.scoring.detectors import (
    OK,
    OUT_OF_DISTRIBUTION,
    TOO_SHORT,
    Detector,
    LearnedDetector,
    evaluate,
    features,
    split_indices,
    stratified_sample,
    tpr_at_fpr,
)
from corpus.scoring.detectors.holdout import holdout_compare
from corpus.scoring.synthetic import human_text, labelled_corpus
from corpus.scoring.text import prepare

FAMILIES = ("alpha", "beta", "gamma", "delta")


def _arrays(rows):
    texts = [r["text"] for r in rows]
    labels = np.array([1 if r["label"] == "ai" else 0 for r in rows])
    groups = [r["pair_id"] for r in rows]
    return texts, labels, groups


@pytest.fixture(scope="module")
def corpus():
    """Pairs of the three familiar families, and the pairs of the held-out family apart."""
    rows = labelled_corpus(seed=1, n_pairs=120, families=FAMILIES)
    held_out_pairs = {r["pair_id"] for r in rows if r["generator"] == "delta"}
    familiar = [r for r in rows if r["pair_id"] not in held_out_pairs]
    unseen = [r for r in rows if r["pair_id"] in held_out_pairs]
    return familiar, unseen


@pytest.fixture(scope="module")
def holdout(corpus):
    texts, labels, groups = _arrays(corpus[0])
    return holdout_compare(texts, labels, groups, test_size=0.5, seed=0)


def test_evaluate_on_a_hand_computed_example():
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    m = evaluate(y, s)
    # 15 of the 16 (positive, negative) pairs are ordered correctly.
    assert m["auroc"] == pytest.approx(15 / 16)
    assert m["accuracy"] == pytest.approx(6 / 8)  # 0.6 and 0.4 are on the wrong side of 0.5
    assert m["tpr_at_fpr_1pct"] == pytest.approx(0.75)
    assert m["tpr_at_fpr_5pct"] == pytest.approx(0.75)
    assert (m["n"], m["n_positive"], m["n_negative"]) == (8, 4, 4)


def test_tpr_at_fpr_interpolates_between_roc_points():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    assert tpr_at_fpr(y, s, 0.0) == pytest.approx(0.5)
    assert tpr_at_fpr(y, s, 0.25) == pytest.approx(0.5)
    assert tpr_at_fpr(y, s, 0.5) == pytest.approx(1.0)
    y3 = np.array([0, 1])
    s3 = np.array([0.5, 0.5])
    assert tpr_at_fpr(y3, s3, 0.05) == pytest.approx(0.05)


def test_evaluate_with_one_class_reports_nan_for_ranking_metrics():
    m = evaluate([0, 0, 0], [0.1, 0.7, 0.2])
    assert math.isnan(m["auroc"])
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_grouped_retraining_clearly_beats_the_tfidf_baseline(holdout, corpus):
    learned, baseline = holdout.result["learned"], holdout.result["baseline"]
    assert holdout.result["grouped"]
    assert learned["auroc"] >= 0.95
    assert learned["auroc"] >= baseline["auroc"] + 0.1
    assert learned["brier"] < baseline["brier"]
    # The split is grouped: no pair has a text on both sides.
    _, _, groups = _arrays(corpus[0])
    assert not {groups[i] for i in holdout.train} & {groups[i] for i in holdout.test}


def test_trained_on_reports_the_rows_actually_fit(holdout):
    assert holdout.result["trained_on"] == holdout.train.size
    assert holdout.detector.report.n_train == holdout.train.size
    assert holdout.result["n_test"] == holdout.test.size
    # Too-short texts are not fit, and trained_on says so.
    texts, labels, _ = _arrays(labelled_corpus(seed=3, n_pairs=20, families=FAMILIES[:3]))
    texts += ["far too short to learn from"] * 4
    labels = np.r_[labels, [0, 1, 0, 1]]
    det = LearnedDetector()
    report = det.fit(texts, labels, test_size=0)
    assert report.n_train == len(texts) - 4
    assert report.extra["n_too_short_skipped"] == 4


def test_abstains_on_a_generator_family_held_out_of_training(holdout, corpus):
    texts, labels, _ = _arrays(corpus[1])
    a = holdout.detector.assess([t for t, y in zip(texts, labels, strict=True) if y == 1])
    assert np.mean(a.status == OUT_OF_DISTRIBUTION) >= 0.8
    # ... while texts like its training data rarely do: the thresholds are the 2.5% quantiles
    # of each measure out of fold (5% nominal; quantiles of ~90 texts are noisy, hence 0.2).
    assert np.mean(holdout.assessment.status != OK) <= 0.2


def test_probabilities_are_calibrated_on_familiar_and_unseen_generators(holdout, corpus):
    # Unseen family: its AI texts and the held-out human texts; abstentions count as 0.5.
    texts, labels, _ = _arrays(corpus[1])
    humans = holdout.test[np.asarray(holdout.assessment.status, dtype=object) != None]  # noqa: E711
    fam_texts, fam_labels, _ = _arrays(corpus[0])
    unseen_texts = [t for t, y in zip(texts, labels, strict=True) if y == 1]
    unseen_texts += [fam_texts[i] for i in humans if fam_labels[i] == 0]
    unseen_y = np.r_[np.ones(sum(labels)), np.zeros(len(unseen_texts) - sum(labels))]
    a = holdout.detector.assess(unseen_texts)
    assert evaluate(unseen_y, a.metric_scores())["brier"] < 0.25
    # Familiar families: reliability, predicted vs observed rate by probability band.
    y = fam_labels[holdout.test]
    p = holdout.assessment.metric_scores()
    assert holdout.result["learned"]["brier"] < 0.1
    for lo, hi in ((0.0, 0.3), (0.7, 1.0)):
        band = (p >= lo) & (p <= hi)
        if band.sum() >= 20:
            assert abs(p[band].mean() - y[band].mean()) < 0.15


def test_too_short_texts_say_so_instead_of_a_probability(holdout):
    texts = ["", "x", "Three words here.", " ".join(["word"] * (features.MIN_WORDS - 1))]
    a = holdout.detector.assess(texts)
    assert list(a.status) == [TOO_SHORT] * 4
    assert np.isnan(a.probability).all()
    assert (a.metric_scores() == 0.5).all()
    assert holdout.detector.predict_proba([]).shape == (0,)


def test_probabilities_are_probabilities(holdout, corpus):
    texts, _, _ = _arrays(corpus[0][:40])
    a = holdout.detector.assess(texts)
    p = a.probability[a.status == OK]
    assert p.dtype == np.float64
    assert ((p >= 0) & (p <= 1)).all()


def test_save_load_round_trip_gives_identical_verdicts(holdout, corpus, tmp_path):
    detector = holdout.detector
    path = tmp_path / "detector.npz"
    detector.save(path)
    loaded = LearnedDetector.load(path)
    texts, _, _ = _arrays(corpus[0][:60])
    texts += ["", "x", "Short text."]
    a, b = loaded.assess(texts), detector.assess(texts)
    np.testing.assert_array_equal(a.probability, b.probability)
    assert list(a.status) == list(b.status)
    assert loaded.version == detector.version
    assert loaded.version.startswith("learned-f2-")
    assert loaded.report.version == detector.version == detector.report.version
    assert loaded.report.n_train == detector.report.n_train
    buffer = io.BytesIO()
    detector.save(buffer)
    again = LearnedDetector.load(io.BytesIO(buffer.getvalue()))
    np.testing.assert_array_equal(again.assess(texts).probability, a.probability)


def test_load_refuses_tampered_weights(holdout, tmp_path):
    path = tmp_path / "detector.npz"
    holdout.detector.save(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["coef_char"] = arrays["coef_char"] * 1.01
    bad = tmp_path / "bad.npz"
    with open(bad, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="version"):
        LearnedDetector.load(bad)


def test_fast_scoring_path_equals_the_training_matrix(holdout, rng, vocab):
    # Prediction gathers per-column values over chunks of concatenated documents; training
    # builds the TF-IDF matrix. They must agree, at document boundaries too, and a text's
    # verdict must not depend on its batch neighbours.
    det = copy.copy(holdout.detector)
    det.coverage_min, det.distance_max = 0.0, np.inf  # these texts are unlike its training data
    texts = ["", "a", "ab", "abc", "one", "two words", "Hi, you!"]
    texts += [human_text(rng, vocab, int(n)) for n in rng.integers(0, 900, 60)]
    docs = [prepare(t) for t in texts]
    f = det.fitted
    counts = features.ngram_counts(docs)
    z = det._standardize(det._dense(docs, None, None), f)
    expected = 1.0 / (1.0 + np.exp(-(det.platt[0] * det._logits(counts, z, f) + det.platt[1])))
    a = det.assess_prepared(docs)
    ok = a.status == OK
    assert ok.sum() > 30
    np.testing.assert_allclose(a.probability[ok], expected[ok], rtol=1e-6, atol=1e-9)
    singles = np.array([det.assess_prepared([d]).probability[0] for d in docs])
    np.testing.assert_array_equal(singles[ok], a.probability[ok])


def test_lm_features_are_fused_when_given(corpus):
    texts, labels, groups = _arrays(corpus[0][:120])
    rng = np.random.default_rng(0)
    # A stand-in for the LM statistics: one column informative, NaN where the LM skipped.
    lm = rng.normal(size=(len(texts), 4))
    lm[:, 3] += 2.0 * labels
    lm[:5] = np.nan
    det = LearnedDetector()
    det.fit(texts, labels, groups=groups, test_size=0, lm_features=lm)
    assert det.uses_lm
    assert det.fitted.coef_dense.shape == (len(features.DENSE_FEATURES) + 4,)
    with pytest.raises(ValueError, match="lm_features"):
        det.assess(texts[:3])
    assert det.assess(texts[:3], lm_features=lm[:3]).probability.shape == (3,)


def test_grouped_split_never_straddles_groups(corpus):
    _, labels, groups = _arrays(corpus[0])
    for seed in range(5):
        train, test = split_indices(labels, groups, test_size=0.3, seed=seed)
        assert not {groups[i] for i in train} & {groups[i] for i in test}
        assert sorted(np.r_[train, test].tolist()) == list(range(len(labels)))


def test_ungrouped_split_is_stratified(corpus):
    _, labels, _ = _arrays(corpus[0])
    train, test = split_indices(labels, None, test_size=0.25, seed=0)
    assert abs(labels[test].mean() - labels.mean()) < 0.02


def test_stratified_sample_draws_evenly_across_strata():
    strata = ["human"] * 900 + ["gpt"] * 80 + ["llama"] * 20
    picked = stratified_sample(strata, 90, seed=0)
    counts = {s: sum(strata[i] == s for i in picked) for s in ("human", "gpt", "llama")}
    assert counts == {"human": 35, "gpt": 35, "llama": 20}
    assert len(set(picked.tolist())) == 90
    assert stratified_sample(strata, 5000).size == 1000
    assert list(stratified_sample(strata, 90, seed=0)) == list(picked)


def test_learned_detector_only_supports_plain_text(holdout):
    detector = holdout.detector
    assert isinstance(detector, Detector)
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
