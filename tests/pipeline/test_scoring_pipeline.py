"""The scoring orchestration: evidence, rules, idempotency, failures, the Redis index."""

import random

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from corpus.models import AuditEvent, DetectorModel, Item, Score, ScoringRules
from corpus.redis_client import redis_client
from corpus.scoring import lexical, lsh, minhash
from corpus.services import near_dup_index, scoring
from corpus.services.audit import SYSTEM
from corpus.services.audit_verify import audit_verify
from corpus.services.detectors import detector_train
from corpus.services.ingest import items_ingest, items_parse

pytestmark = pytest.mark.django_db

TOPICS = [
    "The river delta floods every spring and farmers plant rice once the water recedes",
    "Our team rewrote the billing service in a weekend and nobody noticed the switch",
    "A good sourdough starter needs flour water patience and a warm corner of the kitchen",
    "The museum reopened its east wing with a collection of maps from the sixteenth century",
    "Cyclists in the city now share the old tram lines with delivery vans and buses",
    "She tuned the violin twice before the concert because the hall was unusually dry",
]


def _varied(seed: int, words: int = 120) -> str:
    rng = random.Random(seed)
    vocab = " ".join(TOPICS).lower().split() + [f"w{seed}x{i}" for i in range(40)]
    return " ".join(rng.choice(vocab) for _ in range(words)) + "."


def ingest(dataset, texts, *, reference=False, origin="synthetic", generation=None):
    raw = [{"text": t, "origin": origin} for t in texts]
    if generation is not None:
        for r in raw:
            r["generation"] = generation
    from django.test import TestCase

    # Ingest enqueues scoring on commit; these tests call the scorer themselves.
    with TestCase.captureOnCommitCallbacks(execute=False):
        outcome = items_ingest(
            dataset=dataset,
            items=items_parse(raw),
            actor=SYSTEM,
            default_source="pipeline",
            reference=reference,
        )
    return [r.id for r in outcome.results]


def score(ids):
    """Score and run the after-commit work (index insertion) right away, as a commit would."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        return scoring.items_score(item_ids=ids)


def test_pending_items_are_queued_with_their_evidence(dataset):
    # given three varied synthetic items
    ids = ingest(dataset, [_varied(1), _varied(2), _varied(3)])
    # when they are scored
    outcome = score(ids)
    # then each is queued with a score naming the detector and the scorer version
    assert sorted(outcome["queued"]) == sorted(ids)
    for item in Item.objects.filter(id__in=ids).select_related("score"):
        assert item.state == Item.State.QUEUED
        assert item.score.scorer_version
        assert item.score.detector_name == "learned"
        assert 0.0 <= item.score.detector_probability <= 1.0
        assert item.score.lexical["distinct_1"] > 0
        assert len(bytes(item.score.minhash)) > 0
        assert item.priority == item.score.priority > 0
    assert AuditEvent.objects.filter(action="items.scored").count() == 1
    assert audit_verify()[1] is None


def test_exact_duplicate_is_auto_rejected_naming_the_rule(dataset):
    first = ingest(dataset, [_varied(10)])
    score(first)
    second = ingest(dataset, ["  " + _varied(10).upper()], origin="synthetic")
    # the normalized text matches: ingest without external_id dedupes it, so use another source
    assert second == first
    outcome = items_ingest(
        dataset=dataset,
        items=items_parse([{"text": _varied(10).upper(), "external_id": "x1"}]),
        actor=SYSTEM,
        default_source="other",
    )
    dup_id = outcome.results[0].id
    score([dup_id])
    dup = Item.objects.get(pk=dup_id)
    assert dup.state == Item.State.AUTO_REJECTED
    assert dup.state_reason.startswith("exact_duplicate")
    assert str(first[0]) in dup.state_reason
    assert dup.score.exact_duplicate_of_id == first[0]


def test_near_duplicate_of_reference_is_auto_rejected(dataset):
    base = _varied(20, words=200)
    words = base.split()
    words[50] = "changed"
    words[120] = "altered"
    near = " ".join(words)
    ref = ingest(dataset, [base], reference=True, origin="human")
    score(ref)
    new = ingest(dataset, [near])
    score(new)
    item = Item.objects.get(pk=new[0])
    assert item.state == Item.State.AUTO_REJECTED
    assert item.state_reason.startswith("near_duplicate")
    assert item.score.near_duplicate_of_id == ref[0]
    assert item.score.near_duplicate_jaccard >= 0.8
    # the reference item keeps its state: scoring never moves approved items
    assert Item.objects.get(pk=ref[0]).state == Item.State.APPROVED


def test_of_two_new_near_copies_the_earlier_ingested_survives(dataset):
    # given two near-copies of each other, neither reference nor approved
    base = _varied(30, words=200)
    words = base.split()
    words[10] = "different"
    first = ingest(dataset, [base])
    score(first)
    second = ingest(dataset, [" ".join(words)])
    # when the later-ingested one is scored
    score(second)
    # then it is rejected naming the earlier, which stays queued and sees the match too
    item = Item.objects.get(pk=second[0])
    assert item.state == Item.State.AUTO_REJECTED
    assert item.state_reason.startswith("near_duplicate: Jaccard 0.9")
    assert f"with earlier item {first[0]} " in item.state_reason
    assert item.score.near_duplicate_of_id == first[0]
    assert Item.objects.get(pk=first[0]).state == Item.State.QUEUED
    assert Score.objects.get(item_id=first[0]).near_duplicate_of_id == second[0]


def test_an_earlier_copy_scored_second_still_rejects_the_later_one(dataset):
    # given the later-ingested copy scored (and queued) first
    base = _varied(32, words=200)
    words = base.split()
    words[10] = "different"
    first, second = ingest(dataset, [base]), ingest(dataset, [" ".join(words)])
    score(second)
    assert Item.objects.get(pk=second[0]).state == Item.State.QUEUED
    # when the earlier one is scored
    outcome = score(first)
    # then the later one is auto-rejected all the same, audited with the rule and the match
    later = Item.objects.get(pk=second[0])
    assert later.state == Item.State.AUTO_REJECTED
    assert f"with earlier item {first[0]} " in later.state_reason
    assert outcome["queued"] == first and outcome["reapplied"] == second
    event = AuditEvent.objects.filter(action="items.scored").latest("seq")
    assert event.payload["reapplied"] == {str(second[0]): later.state_reason}


def test_near_duplicates_within_one_batch_are_found(dataset):
    base = _varied(31, words=200)
    words = base.split()
    words[10] = "different"
    ids = ingest(dataset, [base, " ".join(words)])
    score(ids)
    assert Score.objects.get(item_id=ids[1]).near_duplicate_of_id == ids[0]


def test_unrelated_items_report_no_near_duplicate(dataset):
    ids = ingest(dataset, [_varied(41), _varied(42)])
    score(ids)
    assert not Score.objects.filter(item_id__in=ids, near_duplicate_of__isnull=False).exists()


def test_rules_can_be_switched_off_per_dataset(dataset):
    ScoringRules.objects.create(dataset=dataset, reject_degenerate=False)
    looping = "the model keeps saying the same thing " * 60
    ids = ingest(dataset, [looping])
    score(ids)
    item = Item.objects.get(pk=ids[0])
    assert item.score.degenerate is True
    assert item.state == Item.State.QUEUED


def test_degenerate_text_is_auto_rejected(dataset):
    looping = "the model keeps saying the same thing " * 60
    ids = ingest(dataset, [looping])
    score(ids)
    item = Item.objects.get(pk=ids[0])
    assert item.state == Item.State.AUTO_REJECTED
    assert item.state_reason.startswith("degenerate")


def test_scoring_twice_changes_nothing(dataset):
    ids = ingest(dataset, [_varied(50), _varied(51)])
    score(ids)
    before = list(Score.objects.order_by("item_id").values())
    events = AuditEvent.objects.count()
    outcome = score(ids)
    assert outcome == {
        "queued": [],
        "auto_rejected": [],
        "rescored": [],
        "failed": [],
        "reapplied": [],
        "flagged": [],
    }
    assert list(Score.objects.order_by("item_id").values()) == before
    assert AuditEvent.objects.count() == events


def test_failing_item_does_not_block_its_batch_and_ends_score_failed(
    dataset, monkeypatch, settings
):
    settings.SYNTHGATE_SCORE_MAX_ATTEMPTS = 2
    ids = ingest(dataset, [_varied(60), "poison pill text for the scorer " + _varied(61)])
    real_prepare = scoring.prepare

    def flaky(text):
        if text.startswith("poison"):
            raise ValueError("cannot tokenize")
        return real_prepare(text)

    monkeypatch.setattr(scoring, "prepare", flaky)
    first = score(ids)
    assert first["queued"] == [ids[0]]
    assert first["failed"] == [ids[1]]
    bad = Item.objects.get(pk=ids[1])
    assert bad.state == Item.State.PENDING  # one retry left
    assert "cannot tokenize" in bad.score.error
    second = score(ids)
    assert second["failed"] == [ids[1]]
    bad.refresh_from_db()
    assert bad.state == Item.State.SCORE_FAILED
    assert "cannot tokenize" in bad.state_reason


def test_transient_redis_error_propagates_for_the_task_to_retry(dataset, monkeypatch):
    ids = ingest(dataset, [_varied(70)])

    def down(*args, **kwargs):
        raise RedisConnectionError("redis is down")

    monkeypatch.setattr(near_dup_index, "candidates_and_add", down)
    with pytest.raises(RedisConnectionError):
        score(ids)
    assert Item.objects.get(pk=ids[0]).state == Item.State.PENDING
    assert not Score.objects.filter(item_id=ids[0]).exists()


def test_rebuild_index_restores_near_duplicate_detection(dataset):
    base = _varied(80, words=200)
    ref = ingest(dataset, [base], reference=True, origin="human")
    score(ref)
    near_dup_index.index_clear()  # Redis lost its data
    assert scoring.index_rebuild(dataset=dataset) == 1
    words = base.split()
    words[5] = "other"
    new = ingest(dataset, [" ".join(words)])
    score(new)
    assert Score.objects.get(item_id=new[0]).near_duplicate_of_id == ref[0]


def test_rescore_selects_items_scored_by_another_version(dataset):
    ids = ingest(dataset, [_varied(90), _varied(91)])
    score(ids)
    assert scoring.items_rescore_select(dataset=dataset) == []
    Score.objects.filter(item_id=ids[0]).update(scorer_version="0")
    assert scoring.items_rescore_select(dataset=dataset) == [ids[0]]
    outcome = score([ids[0]])
    assert outcome["rescored"] == [ids[0]]
    assert scoring.items_rescore_select(dataset=dataset) == []


def test_review_priority_puts_uncertain_novel_deep_items_first():
    certain = scoring.review_priority(
        probability=0.99, nearest_jaccard=0.9, generation=1, origin="synthetic"
    )
    uncertain = scoring.review_priority(
        probability=0.5, nearest_jaccard=None, generation=3, origin="unknown"
    )
    assert uncertain > certain
    assert scoring.review_priority(
        probability=0.5, nearest_jaccard=0.0, generation=4, origin="unknown"
    ) == pytest.approx(1.1)


def _styled(rng: random.Random, machine: bool) -> str:
    if machine:
        openers = ["Certainly!", "In conclusion,", "Overall,", "It is important to note that"]
        body = ["delve", "comprehensive", "landscape", "crucial", "furthermore", "leverage"]
    else:
        openers = ["Honestly", "So yesterday", "My aunt says", "Dunno why but"]
        body = ["garden", "bus", "kettle", "rain", "neighbour", "bike", "soup", "late"]
    words = [rng.choice(openers)] + [rng.choice(body) for _ in range(60)]
    return " ".join(words) + f" {rng.random():.6f}"


def test_dataset_detector_retrains_on_its_own_labels(dataset):
    rng = random.Random(7)
    ingest(dataset, [_styled(rng, False) for _ in range(60)], origin="human")
    ingest(dataset, [_styled(rng, True) for _ in range(60)], origin="synthetic")
    model = detector_train(dataset=dataset, actor=SYSTEM, test_size=0.5)
    assert model.is_active
    assert model.auroc >= 0.9
    assert model.n_test >= 40
    assert AuditEvent.objects.filter(action="detector.trained").count() == 1
    # the next batch is scored by the dataset's own model
    ids = ingest(dataset, [_styled(rng, True)])
    score(ids)
    assert Score.objects.get(item_id=ids[0]).detector_version == model.version
    # retraining again replaces the active model
    second = detector_train(dataset=dataset, actor=SYSTEM, test_size=0.5)
    assert DetectorModel.objects.filter(dataset=dataset, is_active=True).get() == second


def test_retraining_without_enough_labels_says_what_is_missing(dataset):
    from corpus.services.detectors import DetectorTrainError

    with pytest.raises(DetectorTrainError, match="at least 20"):
        detector_train(dataset=dataset, actor=SYSTEM)


def test_sweep_finds_only_stale_pending_items(dataset):
    ids = ingest(dataset, [_varied(100)])
    assert scoring.items_pending_stale(older_than_seconds=3600) == []
    assert scoring.items_pending_stale(older_than_seconds=-1) == ids


def test_sweep_finds_reference_items_whose_scoring_message_was_lost(dataset):
    # Given reference items (loaded straight into approved), one scored, one whose scoring
    # message was lost, and a pending item
    scored, lost = ingest(dataset, [_varied(200), _varied(201)], reference=True)
    [pending] = ingest(dataset, [_varied(202)])
    score([scored])

    # When the sweep looks for items to score, then it finds the unscored reference item too
    assert scoring.items_pending_stale(older_than_seconds=-1) == sorted([lost, pending])
    assert scoring.items_pending_stale(older_than_seconds=3600) == []
    assert Item.objects.get(pk=lost).state == Item.State.APPROVED


def test_lexical_module_is_what_scoring_uses():
    # guards the contract the review UI reads: these keys exist in Score.lexical
    keys = lexical.lexical_stats("a b c d e f g").as_dict().keys()
    assert {"distinct_1", "distinct_2", "distinct_3", "compression_ratio"} <= set(keys)


def test_index_is_written_before_scoring_returns_even_without_a_commit(dataset):
    # The index additions are read back before items_score returns (under the scoring lock),
    # not left to an after-commit callback: here no on-commit callback runs at all.
    from django.test import TestCase

    base = _varied(80, words=200)
    with TestCase.captureOnCommitCallbacks(execute=False):
        first = ingest(dataset, [base])
        scoring.items_score(item_ids=first)
    keys = lsh.band_keys(minhash.from_bytes(bytes(Score.objects.get(item_id=first[0]).minhash)))
    assert near_dup_index.candidates_many(dataset.pk, [keys]) == [{first[0]}]


def test_failure_after_the_index_is_sent_rolls_back_and_leaves_redis_usable(dataset, monkeypatch):
    # given a reference text, and a batch whose audit append fails after its index additions
    # were sent to Redis
    base = _varied(81, words=200)
    words = base.split()
    words[60] = "changed"
    ref = ingest(dataset, [base], reference=True, origin="human")
    score(ref)
    ids = ingest(dataset, [_varied(82), " ".join(words)])
    real_append = scoring.audit_append

    def broken(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(scoring, "audit_append", broken)
    with pytest.raises(RuntimeError, match="audit store unavailable"):
        score(ids)
    # then nothing was written in the database, and the Redis connection pool still works
    # (the unread replies were read, not handed back half-read)
    assert set(Item.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"pending"}
    assert not Score.objects.filter(item_id__in=ids).exists()
    assert redis_client().ping()
    # and the retry scores the batch as if the first attempt had never happened: the
    # near-copy of the reference is rejected, the other item queued
    monkeypatch.setattr(scoring, "audit_append", real_append)
    outcome = score(ids)
    assert outcome["queued"] == [ids[0]] and outcome["auto_rejected"] == [ids[1]]
    assert Score.objects.get(item_id=ids[1]).near_duplicate_of_id == ref[0]
