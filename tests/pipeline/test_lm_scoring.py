"""LM detector evidence on its own queue: recorded beside the learned detector's, never a state
change; a real Fast-DetectGPT run when requirements-lm.txt is installed."""

import random

import numpy as np
import pytest

from corpus.models import DetectorModel, Item, Score
from corpus.services import lm_scoring
from corpus.services.audit import SYSTEM
from corpus.services.detectors import FUSED_NAME, LM_NAME, detector_train
from tests.pipeline.test_kinds_pipeline import LONG_ANSWER, chat, post
from tests.pipeline.test_scoring_pipeline import ingest, score

pytestmark = pytest.mark.django_db


class LengthCalibration:
    @staticmethod
    def apply(criterion):
        return np.minimum(np.asarray(criterion) / 1000, 1.0)


class LengthDetector:
    """A stand-in for the LM detector (``features`` and ``calibration``): its criterion is the
    text's length, so P(AI) grows with length; NaN when short."""

    name = "fast-detectgpt"
    version = "test-1"
    calibration = LengthCalibration()

    def __init__(self):
        self.calls = 0

    def supports(self, kind):
        return kind == "text"

    def features(self, texts):
        self.calls += 1
        return np.array(
            [[np.nan] * 4 if len(t) < 20 else [-3.0, 1.5, 2.5, float(len(t))] for t in texts]
        )


def test_lm_verdicts_are_added_to_the_evidence_without_moving_items(api, produce_token, settings):
    settings.SYNTHGATE_LM_SAMPLE_SHARE = 1.0  # every item, confident or not
    response = post(
        api, produce_token, [{"text": LONG_ANSWER}, {"text": "too short"}, chat(LONG_ANSWER)]
    )
    ids = [r["id"] for r in response.json()["results"]]
    score(ids)
    states = dict(Item.objects.filter(id__in=ids).values_list("id", "state"))
    detector = LengthDetector()
    assert lm_scoring.items_lm_score(item_ids=ids, detector=detector) == 3
    scores = {s.item_id: s.detectors for s in Score.objects.filter(item_id__in=ids)}
    assert scores[ids[0]]["fast-detectgpt"]["probability"] == pytest.approx(len(LONG_ANSWER) / 1000)
    # with the statistics a fused model is retrained on
    assert scores[ids[0]]["fast-detectgpt"]["features"] == [-3.0, 1.5, 2.5, len(LONG_ANSWER)]
    assert scores[ids[1]]["fast-detectgpt"] == {"version": "test-1", "too_short": True}
    assert scores[ids[2]]["fast-detectgpt"] == {"version": "test-1", "unsupported": "chat"}
    assert "learned" in scores[ids[0]]  # the learned detector's verdict is kept
    assert dict(Item.objects.filter(id__in=ids).values_list("id", "state")) == states
    # a second run with the same detector version changes nothing
    assert lm_scoring.items_lm_score(item_ids=ids, detector=detector) == 0
    assert detector.calls == 1


def test_scoring_enqueues_lm_work_only_when_enabled(
    api, produce_token, settings, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(lm_scoring, "lm_enqueue", lambda item_ids: sent.append(item_ids))
    ids = [r["id"] for r in post(api, produce_token, [{"text": LONG_ANSWER}]).json()["results"]]
    settings.SYNTHGATE_LM_DETECTOR = False
    score(ids)
    assert sent == []
    Score.objects.filter(item_id__in=ids).update(scorer_version="old")
    settings.SYNTHGATE_LM_DETECTOR = True
    score(ids)
    assert sent == [ids]


def test_the_lm_task_is_routed_to_its_own_queue():
    from corpus.tasks import items_lm_score_task

    assert items_lm_score_task.queue == "lm"


def test_real_fast_detectgpt_scores_an_item(api, produce_token):
    pytest.importorskip("torch", reason="requirements-lm.txt is not installed")
    pytest.importorskip("transformers", reason="requirements-lm.txt is not installed")
    ids = [r["id"] for r in post(api, produce_token, [{"text": LONG_ANSWER}]).json()["results"]]
    score(ids)
    assert lm_scoring.items_lm_score(item_ids=ids) == 1
    verdict = Score.objects.get(item_id=ids[0]).detectors["fast-detectgpt"]
    assert 0.0 <= verdict["probability"] <= 1.0


def test_lm_samples_unsure_and_abstained_items_plus_a_random_share(settings):
    settings.SYNTHGATE_LM_UNSURE_BAND = 0.3
    settings.SYNTHGATE_LM_SAMPLE_SHARE = 0.1
    # unsure (0.2 < p < 0.8) or abstained (None): always
    assert lm_scoring.lm_sample(probability=0.5, item_id=1)
    assert lm_scoring.lm_sample(probability=0.75, item_id=1)
    assert lm_scoring.lm_sample(probability=None, item_id=1)
    # confident: about the random share, and the same items in every process
    confident = [i for i in range(10_000) if lm_scoring.lm_sample(probability=0.97, item_id=i)]
    assert 0.08 <= len(confident) / 10_000 <= 0.12
    again = [i for i in range(10_000) if lm_scoring.lm_sample(probability=0.01, item_id=i)]
    assert again == confident


def test_items_past_the_wait_limit_keep_the_cheap_evidence_alone(api, produce_token, settings):
    settings.SYNTHGATE_LM_SAMPLE_SHARE = 1.0
    ids = [r["id"] for r in post(api, produce_token, [{"text": LONG_ANSWER}]).json()["results"]]
    score(ids)
    settings.SYNTHGATE_LM_MAX_WAIT_SECONDS = -1  # everything scored so far is too old
    detector = LengthDetector()
    assert lm_scoring.items_lm_score(item_ids=ids, detector=detector) == 1
    verdict = Score.objects.get(item_id=ids[0]).detectors["fast-detectgpt"]
    assert verdict == {"version": "test-1", "skipped": "backlog"}
    assert detector.calls == 0


def test_lm_capacity_states_the_share_of_ingest_it_keeps_up_with(settings):
    # Given no worker has measured its rate yet: the setting stands in
    settings.SYNTHGATE_LM_TEXTS_PER_SECOND_PER_CORE = 5.0
    c = lm_scoring.lm_capacity(ingest_items_per_second=100.0, cores=4)
    assert c == {
        "texts_per_second": 20.0,
        "texts_per_second_per_core": 5.0,
        "cores": 4,
        "share_of_ingest": 0.2,
        "measured": False,
    }
    assert lm_scoring.lm_capacity(ingest_items_per_second=0, cores=1)["share_of_ingest"] == 1.0


def test_the_worker_measures_its_own_rate_and_the_capacity_uses_it(
    api, produce_token, settings, monkeypatch
):
    # Given two scored batches of 4 and 2 texts, and a worker whose batches take 2 CPU seconds
    # each (a scripted CPU clock, set only around the LM's own calls)
    settings.SYNTHGATE_LM_SAMPLE_SHARE = 1.0
    settings.SYNTHGATE_LM_TEXTS_PER_SECOND_PER_CORE = 99.0
    texts = [{"text": f"{LONG_ANSWER} ({i})"} for i in range(4)]
    texts += [{"text": f"{LONG_ANSWER} [{i}]"} for i in range(2)]
    ids = [r["id"] for r in post(api, produce_token, texts).json()["results"]]
    score(ids)
    clock = iter([10.0, 12.0, 20.0, 22.0])
    monkeypatch.setattr(lm_scoring.time, "process_time", lambda: next(clock))
    monkeypatch.setattr(lm_scoring.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    # When it scores the two batches
    assert lm_scoring.items_lm_score(item_ids=ids[:4], detector=LengthDetector()) == 4
    assert lm_scoring.items_lm_score(item_ids=ids[4:], detector=LengthDetector()) == 2
    # Then the rate is the decayed texts over the decayed CPU seconds, on the worker's cores
    decay = 0.5 ** (2 / lm_scoring.THROUGHPUT_HALF_LIFE_TEXTS)
    rate = (4 * decay + 2) / (2.0 * decay + 2.0)
    measured = lm_scoring.lm_throughput()
    assert measured["texts_per_second_per_core"] == pytest.approx(rate)
    assert measured["version"] == "test-1" and measured["cores"] == 3
    c = lm_scoring.lm_capacity(ingest_items_per_second=rate * 6)
    assert c["measured"] and c["cores"] == 3
    assert c["texts_per_second"] == pytest.approx(rate * 3)
    assert c["share_of_ingest"] == pytest.approx(0.5)
    # and a new detector version starts the measurement afresh
    newer = LengthDetector()
    newer.version = "test-2"
    lm_scoring.record_throughput(texts=10, seconds=1.0, detector=newer)
    assert lm_scoring.lm_throughput()["texts_per_second_per_core"] == pytest.approx(10.0)


def test_a_cache_failure_does_not_cost_the_verdicts(api, produce_token, settings, monkeypatch):
    # Given a cache that fails on every call (the measured rate is kept there)
    settings.SYNTHGATE_LM_SAMPLE_SHARE = 1.0
    ids = [r["id"] for r in post(api, produce_token, [{"text": LONG_ANSWER}]).json()["results"]]
    score(ids)

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(lm_scoring.cache, "get", broken)
    monkeypatch.setattr(lm_scoring.cache, "set", broken)
    # When the LM scores the item
    assert lm_scoring.items_lm_score(item_ids=ids, detector=LengthDetector()) == 1
    # Then its verdict is stored all the same
    assert "probability" in Score.objects.get(item_id=ids[0]).detectors["fast-detectgpt"]


class ClassLM:
    """A stand-in LM whose statistics tell the classes apart where the texts cannot: the
    curvature of an AI-labelled text is higher (as Fast-DetectGPT's is on machine text)."""

    name = "fast-detectgpt"
    calibration = LengthCalibration()

    def __init__(self, ai_texts, version="lm-a"):
        self.ai_texts = set(ai_texts)
        self.version = version
        self.rng = np.random.default_rng(3)

    def supports(self, kind):
        return kind == "text"

    def features(self, texts):
        shift = np.array([[1.5 if t in self.ai_texts else 0.0] for t in texts])
        return self.rng.normal(0.0, 0.5, size=(len(texts), 4)) + shift * np.array([1, -1, -1, 2])


def _same_style(rng, n):
    """Texts of one style whatever their label: the text alone says nothing."""
    vocab = ["river", "stone", "lamp", "garden", "bread", "window", "letter", "market"]
    return [" ".join(rng.choices(vocab, k=70)) + f" {rng.random():.8f}" for _ in range(n)]


def test_retraining_fuses_the_lm_statistics_and_the_lm_task_scores_with_the_fused_model(
    dataset, settings
):
    settings.SYNTHGATE_LM_SAMPLE_SHARE = 1.0
    r = random.Random(5)
    human, ai = _same_style(r, 60), _same_style(r, 60)
    ids = ingest(dataset, human, origin="human") + ingest(dataset, ai, origin="synthetic")
    score(ids)
    lm = ClassLM(ai)
    assert lm_scoring.items_lm_score(item_ids=ids, detector=lm) == 120
    # when the dataset retrains
    learned = detector_train(dataset=dataset, actor=SYSTEM, test_size=0.5)
    fused = DetectorModel.objects.get(dataset=dataset, name=FUSED_NAME, is_active=True)
    # then the fused model learned what the text alone could not tell
    assert learned.auroc < 0.75
    assert fused.auroc >= 0.95
    assert fused.report["lm_version"] == "lm-a"
    assert fused.report["held_out"]["baseline"]["auroc"] < 0.75
    assert learned.report["lm_fusion"]["labels"] == {"human": 60, "ai": 60}
    # and the LM task gives new items the fused model's verdict beside its own
    new_human, new_ai = _same_style(r, 1), _same_style(r, 1)
    lm.ai_texts |= set(new_ai)
    new_ids = ingest(dataset, new_human + new_ai, origin="unknown")
    score(new_ids)
    lm_scoring.items_lm_score(item_ids=new_ids, detector=lm)
    entries = [Score.objects.get(item_id=i).detectors for i in new_ids]
    assert all(LM_NAME in e and FUSED_NAME in e for e in entries)
    verdicts = [e[FUSED_NAME] for e in entries]
    assert verdicts[1]["probability"] > verdicts[0]["probability"]
    assert verdicts[0]["quality"] == {"auroc": round(fused.auroc, 4), "n_items": 120}
    # but statistics of another LM are not fused into a model trained on these
    other = ClassLM(new_ai, version="lm-b")
    again = ingest(dataset, _same_style(r, 1), origin="unknown")
    score(again)
    lm_scoring.items_lm_score(item_ids=again, detector=other)
    assert FUSED_NAME not in Score.objects.get(item_id=again[0]).detectors


def test_retraining_says_why_there_is_no_fused_model(dataset):
    r = random.Random(6)
    ids = ingest(dataset, _same_style(r, 25), origin="human")
    ids += ingest(dataset, _same_style(r, 25), origin="synthetic")
    score(ids)
    lm_scoring.items_lm_score(item_ids=ids[:30], detector=ClassLM([]))
    learned = detector_train(dataset=dataset, actor=SYSTEM, test_size=0.5)
    assert not DetectorModel.objects.filter(dataset=dataset, name=FUSED_NAME).exists()
    assert "at least 20 of each" in learned.report["lm_fusion"]["skipped"]
