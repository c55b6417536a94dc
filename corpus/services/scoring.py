"""Scoring orchestration: load a batch of items, compute their evidence, apply the dataset's rules.

The computation lives in ``corpus.scoring`` (pure, no Django). This module owns what touches the
database and Redis:

1. load the batch; compute signals outside any transaction (CPU and Redis reads only);
2. in one short transaction: upsert ``Score`` rows, move ``pending`` items to ``queued`` or
   ``auto_rejected`` (conditional UPDATE on ``state='pending'``, so a second run changes nothing),
   append one audit event per dataset;
3. after commit, add the queued and reference items to the near-duplicate index (idempotent SADD).

An item whose scoring raises is recorded with the error and retried by the sweep; after
``SYNTHGATE_SCORE_MAX_ATTEMPTS`` it ends in ``score_failed``. It never blocks its batch.
Transient Redis and database errors propagate, so the task retries the whole batch with backoff.

Review priority (higher is reviewed first), each term in [0, 1]::

    priority = 0.5 * uncertainty + 0.3 * novelty + 0.2 * depth + 0.1 * [origin is unknown]
    uncertainty = 1 - |2p - 1|     p = detector probability (0.5 when no detector applies)
    novelty     = 1 - J            J = Jaccard with the nearest indexed item (0 when none)
    depth       = min(generation, 4) / 4

Uncertain detector verdicts come first because that is where a person adds the most
information; novel items next, because near-copies of approved text add little; deep
generations and undeclared origins carry the most collapse risk.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Min, Q
from django.utils import timezone
from redis.exceptions import RedisError

from corpus.models import Dataset, Item, Score, ScoringRules
from corpus.redis_client import redis_client
from corpus.scoring import SCORER_VERSION, kinds, lexical, lsh, minhash
from corpus.scoring.text import prepare
from corpus.services import detectors, near_dup_index
from corpus.services.audit import SYSTEM, audit_append

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (RedisError, DatabaseError)


def _chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def items_score_enqueue(*, item_ids: list[int]) -> None:
    """Queue scoring in batches. A broker outage must not fail the caller's (already committed)
    request: the periodic sweep re-enqueues whatever is still pending."""
    from corpus.tasks import items_score_task

    for chunk in _chunks(list(item_ids), settings.SYNTHGATE_SCORE_BATCH):
        try:
            items_score_task.delay(chunk)
        except Exception:
            logger.warning("could not enqueue scoring of %d items; the sweep will", len(chunk))


def review_priority(
    *, probability: float | None, nearest_jaccard: float | None, generation: int, origin: str
) -> float:
    p = 0.5 if probability is None else probability
    uncertainty = 1.0 - abs(2.0 * p - 1.0)
    novelty = 1.0 - (nearest_jaccard or 0.0)
    depth = min(generation, 4) / 4.0
    unknown = 1.0 if origin == Item.Origin.UNKNOWN else 0.0
    return round(0.5 * uncertainty + 0.3 * novelty + 0.2 * depth + 0.1 * unknown, 6)


def scoring_rules_get(*, dataset: Dataset) -> ScoringRules:
    rules = ScoringRules.objects.filter(dataset=dataset).first()
    return rules if rules is not None else ScoringRules(dataset=dataset)


@dataclass
class Evidence:
    item: Item
    signature: bytes = b""
    band_keys: list[bytes] = field(default_factory=list)
    lexical: dict[str, Any] = field(default_factory=dict)
    degenerate: bool = False
    degenerate_reason: str = ""
    exact_duplicate_of: int | None = None
    near_duplicate_of: int | None = None
    near_duplicate_jaccard: float | None = None
    near_duplicate_state: str = ""
    near_duplicate_is_reference: bool = False
    detector_name: str = ""
    detector_version: str = ""
    probability: float | None = None
    detectors: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    shingles: Any = None


def _exact_duplicates(dataset_id: int, items: list[Item]) -> dict[int, int]:
    """item id -> id of the earliest item in the dataset with the same normalized text."""
    rows = (
        Item.objects.filter(dataset_id=dataset_id, content_hash__in={i.content_hash for i in items})
        .values("content_hash")
        .annotate(first_id=Min("id"))
        .values_list("content_hash", "first_id")
    )
    first = dict(rows)
    return {
        item.pk: first[item.content_hash]
        for item in items
        if first.get(item.content_hash) is not None and first[item.content_hash] < item.pk
    }


def _compute(dataset: Dataset, items: list[Item], rules: ScoringRules) -> list[Evidence]:
    """Signals for one dataset's batch. Pure computation plus Redis and database reads."""
    evidence = [Evidence(item=item) for item in items]
    docs: list[Any] = []
    ok: list[Evidence] = []
    for ev in evidence:
        item = ev.item
        try:
            docs.append(
                prepare(kinds.scoring_text(item.kind, item.text, item.messages, item.language))
            )
            ok.append(ev)
        except Exception as exc:  # one bad text must not sink its batch
            ev.error = f"{type(exc).__name__}: {exc}"
    if not ok:
        return evidence
    sigs = minhash.signatures(docs)
    stats = []
    for ev, doc, sig in zip(ok, docs, sigs, strict=True):
        stat = lexical.doc_stats(doc)
        stats.append(stat)
        degenerate, reason = lexical.degeneration(stat)
        if not degenerate and ev.item.kind == Item.Kind.CODE:
            degenerate, reason = kinds.code_repeated_blocks(ev.item.text)
        ev.lexical = stat.as_dict()
        ev.degenerate, ev.degenerate_reason = degenerate, reason or ""
        ev.signature = minhash.to_bytes(sig)
        ev.band_keys = lsh.band_keys(sig)
        ev.shingles = minhash.doc_shingles(doc)

    # Detector evidence: the dataset's retrained model, else the default one. A detector says
    # when a kind is outside what it was trained on instead of inventing a confident score.
    detector = detectors.detector_for_dataset(dataset.pk)
    supported = [i for i, ev in enumerate(ok) if detector.supports(ev.item.kind)]
    probabilities = detector.predict_proba_prepared(
        [docs[i] for i in supported], [stats[i] for i in supported]
    )
    for ev in ok:
        ev.detector_name, ev.detector_version = detector.name, detector.version
        ev.detectors[detector.name] = {"version": detector.version, "unsupported": ev.item.kind}
    for i, p in zip(supported, probabilities, strict=True):
        ok[i].probability = float(p)
        ok[i].detectors[detector.name] = {"version": detector.version, "probability": float(p)}

    # Exact duplicates.
    for item_id, first_id in _exact_duplicates(dataset.pk, [ev.item for ev in ok]).items():
        next(ev for ev in ok if ev.item.pk == item_id).exact_duplicate_of = first_id

    # Near duplicates: candidates from the shared index plus earlier items of this same batch,
    # verified by exact Jaccard on shingles recomputed from the candidates' text.
    from_index = near_dup_index.candidates_many(dataset.pk, [ev.band_keys for ev in ok])
    batch_index = lsh.LSHIndex()
    batch_position: dict[int, Evidence] = {}
    candidate_sets: list[set[int]] = []
    for ev, found in zip(ok, from_index, strict=True):
        local = batch_index.query_and_insert(ev.item.pk, minhash.from_bytes(ev.signature))
        batch_position[ev.item.pk] = ev
        found.discard(ev.item.pk)
        candidate_sets.append(found | local)
    wanted = set().union(*candidate_sets) - set(batch_position)
    others = {
        row["id"]: row
        for row in Item.objects.filter(id__in=wanted)
        .filter(Q(state__in=[Item.State.QUEUED, Item.State.APPROVED]) | Q(is_reference=True))
        .values("id", "kind", "text", "messages", "language", "state", "is_reference")
    }
    shingle_cache: dict[int, Any] = {}
    for ev, cands in zip(ok, candidate_sets, strict=True):
        pool = {}
        for cid in cands:
            if cid in batch_position:
                if cid < ev.item.pk:  # only earlier items of the batch
                    pool[cid] = batch_position[cid].shingles
            elif cid in others:
                if cid not in shingle_cache:
                    row = others[cid]
                    shingle_cache[cid] = minhash.shingles(
                        kinds.scoring_text(
                            row["kind"], row["text"], row["messages"], row["language"]
                        )
                    )
                pool[cid] = shingle_cache[cid]
        matches = lsh.near_duplicates(ev.shingles, pool, rules.report_threshold)
        if ev.exact_duplicate_of is not None:
            matches = [m for m in matches if m[0] != ev.exact_duplicate_of] or matches
        if matches:
            best_id, best_j = matches[0]
            ev.near_duplicate_of, ev.near_duplicate_jaccard = best_id, round(best_j, 6)
            if best_id in others:
                ev.near_duplicate_state = others[best_id]["state"]
                ev.near_duplicate_is_reference = others[best_id]["is_reference"]
            else:
                other_item = batch_position[best_id].item
                ev.near_duplicate_state = other_item.state
                ev.near_duplicate_is_reference = other_item.is_reference
    return evidence


def _rule(ev: Evidence, rules: ScoringRules) -> str | None:
    """The auto-reject rule this evidence triggers, named, or None."""
    if rules.reject_exact_duplicates and ev.exact_duplicate_of is not None:
        return f"exact_duplicate: same normalized text as item {ev.exact_duplicate_of}"
    if (
        rules.reject_near_duplicates
        and ev.near_duplicate_of is not None
        and ev.near_duplicate_jaccard is not None
        and ev.near_duplicate_jaccard >= rules.near_duplicate_threshold
        and (ev.near_duplicate_is_reference or ev.near_duplicate_state == Item.State.APPROVED)
    ):
        return (
            f"near_duplicate: Jaccard {ev.near_duplicate_jaccard:.2f} with "
            f"{'reference' if ev.near_duplicate_is_reference else 'approved'} item "
            f"{ev.near_duplicate_of} (threshold {rules.near_duplicate_threshold:.2f})"
        )
    if rules.reject_degenerate and ev.degenerate:
        return f"degenerate: {ev.degenerate_reason}"
    return None


def items_score(*, item_ids: list[int]) -> dict[str, list[int]]:
    """Score a batch. Returns the ids per outcome: queued, auto_rejected, rescored, failed."""
    items = list(
        Item.objects.filter(id__in=item_ids).select_related("dataset", "score").order_by("id")
    )
    todo = [
        item
        for item in items
        if item.state == Item.State.PENDING
        or not hasattr(item, "score")
        or item.score.scorer_version != SCORER_VERSION
        or item.score.error
    ]
    outcome: dict[str, list[int]] = {
        "queued": [],
        "auto_rejected": [],
        "rescored": [],
        "failed": [],
    }
    by_dataset: dict[int, list[Item]] = {}
    for item in todo:
        by_dataset.setdefault(item.dataset_id, []).append(item)
    for batch in by_dataset.values():
        dataset = batch[0].dataset
        rules = scoring_rules_get(dataset=dataset)
        # One scorer per dataset at a time: two workers scoring concurrent batches would each
        # miss the other's items (neither is in the index yet), and a near-copy of a reference
        # text scored beside it would slip into the queue. The lock is held until the batch is
        # committed and indexed; it expires by itself if a worker dies holding it.
        with redis_client().lock(f"sg:score-lock:{dataset.pk}", timeout=600, blocking_timeout=900):
            evidence = _compute(dataset, batch, rules)
            result = _store(dataset, evidence, rules)
        for key, ids in result.items():
            outcome[key].extend(ids)
    return outcome


@transaction.atomic
def _store(dataset: Dataset, evidence: list[Evidence], rules: ScoringRules) -> dict[str, list[int]]:
    now = timezone.now()
    max_attempts = settings.SYNTHGATE_SCORE_MAX_ATTEMPTS
    previous_attempts = dict(
        Score.objects.filter(item_id__in=[ev.item.pk for ev in evidence]).values_list(
            "item_id", "attempts"
        )
    )
    scores = []
    decisions: dict[int, tuple[str, str, float]] = {}  # id -> (new state, reason, priority)
    failed: dict[int, str] = {}
    for ev in evidence:
        item = ev.item
        attempts = previous_attempts.get(item.pk, 0) + 1
        if ev.error:
            failed[item.pk] = ev.error
            scores.append(
                Score(
                    item=item,
                    scorer_version=SCORER_VERSION,
                    attempts=attempts,
                    error=ev.error[:2000],
                    computed_at=now,
                )
            )
            if attempts >= max_attempts:
                decisions[item.pk] = (Item.State.SCORE_FAILED, ev.error[:500], 0.0)
            continue
        priority = review_priority(
            probability=ev.probability,
            nearest_jaccard=ev.near_duplicate_jaccard,
            generation=item.generation,
            origin=item.origin,
        )
        scores.append(
            Score(
                item=item,
                scorer_version=SCORER_VERSION,
                exact_duplicate_of_id=ev.exact_duplicate_of,
                near_duplicate_of_id=ev.near_duplicate_of,
                near_duplicate_jaccard=ev.near_duplicate_jaccard,
                minhash=ev.signature,
                lexical=ev.lexical,
                degenerate=ev.degenerate,
                degenerate_reason=ev.degenerate_reason,
                detector_name=ev.detector_name,
                detector_version=ev.detector_version,
                detector_probability=ev.probability,
                detectors=ev.detectors,
                priority=priority,
                attempts=attempts,
                error="",
                computed_at=now,
            )
        )
        rule = _rule(ev, rules)
        if rule:
            decisions[item.pk] = (Item.State.AUTO_REJECTED, rule, priority)
        else:
            decisions[item.pk] = (Item.State.QUEUED, "", priority)
    Score.objects.bulk_create(
        scores,
        update_conflicts=True,
        unique_fields=["item"],
        update_fields=[f.name for f in Score._meta.concrete_fields if f.name != "item"],
    )
    moved: dict[str, list[int]] = {"queued": [], "auto_rejected": [], "score_failed": []}
    # Lock the rows still pending; only they change state, so a rerun (or a second worker with
    # the same batch) changes nothing. The lock makes the bulk update below safe to race.
    pending = set(
        Item.objects.select_for_update()
        .filter(id__in=list(decisions), state=Item.State.PENDING)
        .values_list("id", flat=True)
    )
    # Items past pending (reference, rescored) keep their state; their priority follows the new
    # evidence only while they wait in the queue.
    rescored = [
        ev.item.pk for ev in evidence if ev.item.pk not in pending and ev.item.pk not in failed
    ]
    changed = []
    for ev in evidence:
        item = ev.item
        if item.pk in pending and item.pk in decisions:
            item.state, item.state_reason, item.priority = decisions[item.pk]
            item.updated_at = now
            moved[item.state].append(item.pk)
            changed.append(item)
        elif item.pk in rescored and item.state == Item.State.QUEUED:
            item.priority = decisions[item.pk][2]
            changed.append(item)
    _items_update_many(changed, now)
    auto_rejected = {str(i): decisions[i][1] for i in moved[Item.State.AUTO_REJECTED]}
    audit_append(
        actor=SYSTEM,
        action="items.scored",
        object_type="dataset",
        object_id=dataset.slug,
        dataset=dataset,
        payload={
            "scorer_version": SCORER_VERSION,
            "queued": sorted(moved[Item.State.QUEUED]),
            "auto_rejected": auto_rejected,
            "score_failed": sorted(moved[Item.State.SCORE_FAILED]),
            "errors": {str(k): v[:200] for k, v in failed.items()},
            "rescored": sorted(rescored),
        },
    )
    # Index what later items are compared with: queued and approved (reference) items.
    to_index = [
        (ev.item.pk, ev.signature)
        for ev in evidence
        if ev.signature
        and (
            ev.item.pk in moved[Item.State.QUEUED]
            or (
                ev.item.pk in rescored and ev.item.state in (Item.State.QUEUED, Item.State.APPROVED)
            )
        )
    ]
    if to_index:
        transaction.on_commit(lambda: near_dup_index.index_add_many(dataset.pk, to_index))
    scored = [ev.item.pk for ev in evidence if not ev.error]
    if scored and settings.SYNTHGATE_LM_DETECTOR:
        from corpus.services.lm_scoring import lm_enqueue

        transaction.on_commit(lambda: lm_enqueue(item_ids=scored))
    return {
        "queued": moved[Item.State.QUEUED],
        "auto_rejected": moved[Item.State.AUTO_REJECTED],
        "rescored": rescored,
        "failed": sorted(failed),
    }


def _items_update_many(items: list[Item], now: Any) -> None:
    """Set state, reason and priority of many items in one statement.

    Django's bulk_update builds a CASE expression per row and costs more than the scoring
    itself; an UPDATE ... FROM a VALUES list does the same in one cheap statement (PostgreSQL,
    and SQLite >= 3.33). The rows are already locked by the caller.
    """
    if not items:
        return
    table = Item._meta.db_table
    for start in range(0, len(items), 1000):
        chunk = items[start : start + 1000]
        rows = ", ".join(
            ["(CAST(%s AS BIGINT), %s, %s, CAST(%s AS DOUBLE PRECISION))"] * len(chunk)
        )
        params: list[Any] = []
        for item in chunk:
            params.extend([item.pk, item.state, item.state_reason, item.priority])
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v(id, state, reason, priority) AS (VALUES {rows}) "
                f"UPDATE {table} SET state = v.state, state_reason = v.reason, "
                f"priority = v.priority, updated_at = %s FROM v WHERE {table}.id = v.id",
                [*params, now],
            )


def items_pending_stale(*, older_than_seconds: int, limit: int = 50_000) -> list[int]:
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return list(
        Item.objects.filter(state=Item.State.PENDING, created_at__lt=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def index_rebuild(*, dataset: Dataset | None = None, batch_size: int = 5000) -> int:
    """Recreate the near-duplicate index from the signatures stored in the database."""
    datasets = [dataset] if dataset is not None else list(Dataset.objects.all())
    total = 0
    for ds in datasets:
        near_dup_index.index_clear(ds.pk)
        eligible = Score.objects.filter(item__dataset=ds, minhash__isnull=False).filter(
            Q(item__state__in=[Item.State.QUEUED, Item.State.APPROVED]) | Q(item__is_reference=True)
        )
        last = 0
        while True:
            rows = list(
                eligible.filter(item_id__gt=last)
                .order_by("item_id")
                .values_list("item_id", "minhash")[:batch_size]
            )
            if not rows:
                break
            total += near_dup_index.index_add_many(ds.pk, ((i, bytes(m)) for i, m in rows))
            last = rows[-1][0]
    return total


def items_rescore_select(*, dataset: Dataset, all_items: bool = False) -> list[int]:
    """Ids whose evidence is missing, failed or from another scorer version (or all)."""
    items = Item.objects.filter(dataset=dataset).exclude(state=Item.State.SCORE_FAILED)
    if not all_items:
        items = items.filter(
            Q(score__isnull=True) | ~Q(score__scorer_version=SCORER_VERSION) | ~Q(score__error="")
        )
    return list(items.order_by("id").values_list("id", flat=True))
