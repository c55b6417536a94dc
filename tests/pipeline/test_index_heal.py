"""The near-duplicate index heals itself: a generation marker says what it reflects, a scorer
that finds it missing or behind rebuilds it and rescores what was scored meanwhile, /healthz
says "degraded" until then, and a rule that comes to apply to an item a reviewer holds is shown
to the reviewer instead of pulling the item away."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from corpus.models import AuditEvent, Item, NearDupIndexState, Score
from corpus.redis_client import redis_client
from corpus.services import near_dup_index, scoring
from corpus.tasks import items_sweep_pending_task
from review.models import Claim
from tests.pipeline.test_scoring_pipeline import _varied, ingest, score

pytestmark = pytest.mark.django_db


def _near_copy(text: str) -> str:
    words = text.split()
    words[7] = "changed"
    return " ".join(words)


def test_each_batch_advances_the_generation_in_the_database_and_in_redis(dataset):
    score(ingest(dataset, [_varied(1)]))
    score(ingest(dataset, [_varied(2)]))
    state = NearDupIndexState.objects.get(dataset=dataset)
    assert state.generation == 2 and state.confirmed == 1 and not state.degraded_reason
    assert near_dup_index.index_marker_get(dataset.pk) == 2
    assert Score.objects.order_by("item_id").last().index_generation == 2


def test_a_flushed_index_is_rebuilt_and_the_unconfirmed_batch_rescored(dataset, client):
    # given a reference paragraph scored, then Redis flushed (the index and its marker gone)
    ref = ingest(dataset, [_varied(10, words=200)], reference=True)
    score(ref)
    redis_client().flushdb()
    # then /healthz says the index is incomplete, with the reason
    body = client.get("/healthz").json()
    assert body["status"] in ("degraded", "down")  # "down" only for the missing worker
    assert body["checks"]["index"]["ok"] is False
    assert "index missing" in body["checks"]["index"]["datasets"][dataset.slug]
    # when a near-copy of it is scored
    copy = ingest(dataset, [_near_copy(_varied(10, words=200))])
    score(copy)
    # then the scorer rebuilt the index first and the copy is rejected naming the paragraph
    item = Item.objects.get(pk=copy[0])
    assert item.state == "auto_rejected", item.state_reason
    assert f"reference item {ref[0]} " in item.state_reason
    state = NearDupIndexState.objects.get(dataset=dataset)
    assert not state.degraded_reason and state.healed_at is not None
    assert near_dup_index.index_marker_get(dataset.pk) == state.generation
    healed = AuditEvent.objects.get(action="index.healed")
    assert healed.payload["reason"] == "index missing in Redis"
    assert healed.payload["rescored"] == 1  # the reference batch was never confirmed whole
    assert client.get("/healthz").json()["checks"]["index"] == {"ok": True}


def test_an_index_lost_during_a_batch_is_healed_and_the_batch_rescored(dataset, monkeypatch):
    # given a reference paragraph scored, and a near-copy arriving
    ref = ingest(dataset, [_varied(20, words=200)], reference=True)
    score(ref)
    copy = ingest(dataset, [_near_copy(_varied(20, words=200))])
    # when Redis is flushed just before the copy's batch queries the index
    real = near_dup_index.candidates_and_add
    calls = []

    def flush_then_query(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            redis_client().flushdb()
        return real(*args, **kwargs)

    monkeypatch.setattr(near_dup_index, "candidates_and_add", flush_then_query)
    outcome = score(copy)
    # then the batch first queued the copy (it saw an empty index), noticed the lost marker,
    # rebuilt the index and rescored: the copy ends auto-rejected, audited with the rule
    assert outcome["queued"] == copy
    item = Item.objects.get(pk=copy[0])
    assert item.state == "auto_rejected"
    assert f"reference item {ref[0]} " in item.state_reason
    healed = AuditEvent.objects.get(action="index.healed")
    assert healed.payload["reason"] == "index lost during a scoring batch"
    assert healed.payload["auto_rejected"] == copy
    reapplied = AuditEvent.objects.filter(action="items.scored").latest("seq")
    assert reapplied.payload["reapplied"] == {str(copy[0]): item.state_reason}


def test_the_sweep_heals_an_index_lost_while_nothing_is_scored(dataset):
    score(ingest(dataset, [_varied(30)]))
    redis_client().flushdb()
    items_sweep_pending_task()
    state = NearDupIndexState.objects.get(dataset=dataset)
    assert near_dup_index.index_marker_get(dataset.pk) == state.generation
    assert not state.degraded_reason
    assert near_dup_index.index_health() == {"ok": True}


def test_a_marker_behind_the_database_counts_as_incomplete(dataset):
    score(ingest(dataset, [_varied(40)]))
    near_dup_index.index_marker_set(dataset.pk, 0)  # e.g. Redis restored from an old snapshot
    health = near_dup_index.index_health()
    assert health["ok"] is False
    assert "index at generation 0, database at 1" in health["datasets"][dataset.slug]
    scoring.index_check(dataset=dataset)
    assert near_dup_index.index_health() == {"ok": True}


def test_an_item_a_reviewer_holds_is_flagged_not_pulled_away(dataset, reviewer):
    # given a queued item a reviewer holds under a live claim
    later = ingest(dataset, [_near_copy(_varied(50, words=200))])
    score(later)
    now = timezone.now()
    claim = Claim.objects.create(
        item_id=later[0],
        dataset=dataset,
        reviewer=reviewer,
        claimed_at=now,
        expires_at=now + timedelta(minutes=10),
    )
    # when a reference paragraph it copies arrives
    ref = ingest(dataset, [_varied(50, words=200)], reference=True)
    outcome = score(ref)
    # then it stays queued for the reviewer, its evidence carrying the rule
    item = Item.objects.get(pk=later[0])
    assert item.state == "queued"
    assert outcome["flagged"] == later
    assert f"reference item {ref[0]} " in item.score.rule_flag
    assert item.score.near_duplicate_of_id == ref[0]
    # and once the claim lapses without a decision, the sweep applies the rule (audited)
    claim.expires_at = now - timedelta(seconds=1)
    claim.save()
    items_sweep_pending_task()
    item.refresh_from_db()
    assert item.state == "auto_rejected"
    assert item.state_reason == item.score.rule_flag
    event = AuditEvent.objects.get(action="items.rules_reapplied")
    assert event.payload["auto_rejected"] == {str(later[0]): item.state_reason}


def test_the_evidence_panel_lists_matches_both_ways_with_state_and_containment(
    dataset, reviewer, client
):
    # given a reference paragraph scored before its near-copy (the copy is auto-rejected)
    ref = ingest(dataset, [_varied(60, words=200)], reference=True)
    score(ref)
    copy = ingest(dataset, [_near_copy(_varied(60, words=200))])
    score(copy)
    reviewer.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    client.force_login(reviewer)
    # when a reviewer opens the reference paragraph, scored first
    page = client.get(f"/review/{dataset.slug}/items/{ref[0]}/").content.decode()
    # then it lists the copy, the copy's state, and containment beside Jaccard
    assert f'href="/review/{dataset.slug}/items/{copy[0]}/"' in page
    assert "auto_rejected" in page
    assert "containment" in page and "Jaccard" in page
    # and the copy lists the paragraph as a reference
    page = client.get(f"/review/{dataset.slug}/items/{copy[0]}/").content.decode()
    assert f'href="/review/{dataset.slug}/items/{ref[0]}/"' in page
    assert "reference, approved" in page


def test_the_sweep_does_not_wait_for_a_scorer_holding_the_lock(dataset):
    score(ingest(dataset, [_varied(70)]))
    redis_client().flushdb()
    lock = redis_client().lock(f"sg:score-lock:{dataset.pk}", timeout=60)
    assert lock.acquire(blocking=False)
    try:
        # the scorer holding the lock checks the index before its own batch
        assert scoring.index_check(dataset=dataset) is None
    finally:
        lock.release()
    assert scoring.index_check(dataset=dataset) == (
        NearDupIndexState.objects.get(dataset=dataset).generation
    )
