"""Scoring orchestration: load a batch of items, compute their evidence, apply the dataset's rules.

The computation lives in ``corpus.scoring`` (pure, no Django). This module owns what touches the
database and Redis:

1. load the batch (plain values, no model instances); compute every signal that does not depend
   on other batches (normalization, MinHash, lexical statistics, detector, exact duplicates)
   outside any lock or transaction;
2. under the dataset's scoring lock: query the near-duplicate index (one Redis script call for
   the batch) and verify candidates by exact Jaccard; then, in one short transaction, write the
   ``Score`` rows (COPY on PostgreSQL), move ``pending`` items to ``queued`` or ``auto_rejected``
   (conditional UPDATE on ``state='pending'``, so a second run changes nothing) and append one
   audit event per dataset;
3. still under the lock, add the queued and reference items to the index (one script call of
   idempotent SADDs), sent before the state update and read after the commit so that Redis and
   PostgreSQL work at the same time.

Because step 1 holds no lock, one worker process running two tasks at a time (``--pool
threads --concurrency 2``) computes one batch while the other waits on PostgreSQL and Redis
(bench/RESULTS.md, "Scoring pipeline").

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

import contextlib
import json
import logging
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Min, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from redis.exceptions import LockError, RedisError

from corpus.db.arrays import pg_array as _pg_array
from corpus.db.arrays import pg_int_array as _pg_int_array
from corpus.db.arrays import values_source as _values
from corpus.db.bulk import bulk_insert, values_in
from corpus.models import Dataset, Item, NearDupIndexState, NearDuplicate, Score, ScoringRules
from corpus.redis_client import redis_client
from corpus.scoring import SCORER_VERSION, kinds, lexical, lsh, minhash
from corpus.scoring.text import prepare
from corpus.services import detectors, holds, near_dup_index
from corpus.services.audit import SYSTEM, audit_append
from corpus.services.scoring_rules import scoring_rules_get

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (RedisError, DatabaseError)
LOCK_POLL_SECONDS = 0.005


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


_WARM_UP_TEXT = (
    "A short text that runs every signal once, so that a worker's first batch does not pay "
    "for loading the detector weights and for numpy's first calls. "
)


def scoring_warm_up() -> None:
    """Load the default detector and run the pure signals once on a made-up text, touching
    neither the database nor Redis. Called when a scoring worker starts (config/celery.py);
    loading this module already imported numpy, SciPy and scikit-learn."""
    detector = detectors.detector_default()
    docs = [prepare(_WARM_UP_TEXT * n) for n in (1, 3)]
    sigs, _ = minhash.signatures_and_raw_shingles(docs)
    stats = lexical.docs_stats(docs)
    for stat, sig in zip(stats, sigs, strict=True):
        lexical.degeneration(stat)
        lsh.band_keys(sig)
    detector.predict_proba_prepared(docs, stats)


def review_priority(
    *, probability: float | None, nearest_jaccard: float | None, generation: int, origin: str
) -> float:
    p = 0.5 if probability is None else probability
    uncertainty = 1.0 - abs(2.0 * p - 1.0)
    novelty = 1.0 - (nearest_jaccard or 0.0)
    depth = min(generation, 4) / 4.0
    unknown = 1.0 if origin == Item.Origin.UNKNOWN else 0.0
    return round(0.5 * uncertainty + 0.3 * novelty + 0.2 * depth + 0.1 * unknown, 6)


@dataclass(slots=True)
class ScoredItem:
    """What scoring reads of an item (plus its stored score's version and error), loaded as
    plain values: building 500 model instances per batch cost more than hashing their texts."""

    id: int
    dataset_id: int
    kind: str
    text: str
    messages: Any
    language: str
    content_hash: str
    origin: str
    generation: int
    is_reference: bool
    state: str
    state_reason: str
    priority: float
    scorer_version: str | None  # None: no score yet
    score_error: str | None


_ITEM_VALUES = (
    *(f.name for f in fields(ScoredItem) if f.name not in ("scorer_version", "score_error")),
    "score__scorer_version",
    "score__error",
)


@dataclass
class Evidence:
    item: ScoredItem
    signature: bytes = b""
    band_keys: list[bytes] = field(default_factory=list)
    lexical: dict[str, Any] = field(default_factory=dict)
    degenerate: bool = False
    degenerate_reason: str = ""
    exact_duplicate_of: int | None = None
    earlier_in_batch: set[int] = field(default_factory=set)  # ids sharing a band key
    indexed: bool = False  # added to the near-duplicate index by the query (_near_duplicates)
    # Verified matches found by this run: (other id, Jaccard, containment), most similar first.
    matches: list[tuple[int, float, float]] = field(default_factory=list)
    # (state, is_reference) of each matched item outside the batch, as the verification read it.
    outside: dict[int, tuple[str, bool]] = field(default_factory=dict)
    near_duplicate_of: int | None = None
    near_duplicate_jaccard: float | None = None
    near_duplicate_containment: float | None = None
    shingle_size: int = minhash.SHINGLE_SIZE
    detector_name: str = ""
    detector_version: str = ""
    probability: float | None = None
    detectors: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    raw_shingles: Any = None
    _shingles: Any = None

    @property
    def shingles(self) -> Any:
        """The item's shingle set, sorted only when a candidate needs verifying."""
        if self._shingles is None:
            self._shingles = minhash.unique_shingles(self.raw_shingles)
        return self._shingles


def _exact_duplicates(dataset_id: int, items: list[ScoredItem]) -> dict[int, int]:
    """item id -> id of the earliest item in the dataset with the same normalized text."""
    hashes = list({i.content_hash for i in items})
    if connection.vendor == "postgresql":
        # One array parameter instead of 500 placeholders for the driver to parse.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT content_hash, MIN(id) FROM {Item._meta.db_table} "
                "WHERE dataset_id = %s AND content_hash = ANY(%s::text[]) GROUP BY content_hash",
                [dataset_id, _pg_array(hashes)],
            )
            first = dict(cursor.fetchall())
    else:
        first = dict(
            Item.objects.filter(dataset_id=dataset_id, content_hash__in=hashes)
            .values("content_hash")
            .annotate(first_id=Min("id"))
            .values_list("content_hash", "first_id")
        )
    return {
        item.id: first[item.content_hash]
        for item in items
        if first.get(item.content_hash) is not None and first[item.content_hash] < item.id
    }


def _signals(dataset: Dataset, items: list[ScoredItem]) -> list[Evidence]:
    """Every signal of one dataset's batch that does not depend on what else is being scored:
    pure computation, the detector and exact duplicates (database reads). Needs no lock."""
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
    # Whole-batch numpy passes (minhash, lexical, detector): besides saving numpy's per-call
    # overhead on small arrays, large arrays let numpy release the GIL, so the other thread of a
    # ``--pool threads`` worker runs meanwhile.
    sizes = [kinds.shingle_size(ev.item.kind) for ev in ok]
    for ev, size in zip(ok, sizes, strict=True):
        ev.shingle_size = size
    sigs, raw_shingles = minhash.signatures_and_raw_shingles(docs, sizes)
    stats = lexical.docs_stats(docs)
    signature_bytes = sigs.astype(minhash.SIGNATURE_DTYPE, copy=False).tobytes()
    size = minhash.SIGNATURE_BYTES
    for position, (ev, stat, keys, raw) in enumerate(
        zip(ok, stats, lsh.band_keys_many(sigs), raw_shingles, strict=True)
    ):
        degenerate, reason = lexical.degeneration(stat)
        if not degenerate and ev.item.kind == Item.Kind.CODE:
            degenerate, reason = kinds.code_repeated_blocks(ev.item.text)
        ev.lexical = stat.as_dict()
        ev.degenerate, ev.degenerate_reason = degenerate, reason or ""
        # What minhash.to_bytes(sig) gives, cut from one conversion of the whole batch.
        ev.signature = signature_bytes[position * size : (position + 1) * size]
        ev.band_keys = keys
        ev.raw_shingles = raw

    # Detector evidence: the dataset's retrained model, else the default one. A detector says
    # when a kind is outside what it was trained on instead of inventing a confident score.
    detector = detectors.detector_for_dataset(dataset.pk)
    supported = [i for i, ev in enumerate(ok) if detector.supports(ev.item.kind)]
    assessment = detector.assess_prepared(
        [docs[i] for i in supported], [stats[i] for i in supported]
    )
    for ev in ok:
        ev.detector_name, ev.detector_version = detector.name, detector.version
        ev.detectors[detector.name] = {"version": detector.version, "unsupported": ev.item.kind}
    for i, p, status in zip(supported, assessment.probability, assessment.status, strict=True):
        if status == "ok":
            ok[i].probability = float(p)
            ok[i].detectors[detector.name] = {
                "version": detector.version,
                "probability": float(p),
                "quality": detector.quality,
            }
        else:  # too short, or unlike anything it was trained on: it abstains
            ok[i].detectors[detector.name] = {
                "version": detector.version,
                "abstained": status,
                "quality": detector.quality,
            }

    # Exact duplicates: the earliest item with the same text, which ingest stored already.
    by_id = {ev.item.id: ev for ev in ok}
    for item_id, first_id in _exact_duplicates(dataset.pk, [ev.item for ev in ok]).items():
        by_id[item_id].exact_duplicate_of = first_id

    # Earlier items of this batch sharing a band: they depend on the batch alone, so they are
    # found here rather than under the scoring lock, which serializes the scorers.
    in_batch = lsh.batch_candidates([ev.band_keys for ev in ok])
    for ev, earlier in zip(ok, in_batch, strict=True):
        ev.earlier_in_batch = {ok[i].item.id for i in earlier}
    return evidence


@dataclass(frozen=True, slots=True)
class Match:
    """One stored near-duplicate match as the rules see it."""

    other_id: int
    jaccard: float
    containment: float
    other_state: str
    other_is_reference: bool


def _near_duplicates(dataset: Dataset, evidence: list[Evidence], rules: ScoringRules) -> None:
    """Every indexed or earlier-in-batch item each item matches, verified by exact Jaccard.

    Needs the dataset's scoring lock: the index must hold every batch scored before this one.
    The same Redis call adds the batch's items to the index (``candidates_and_add``: one
    command per new band key instead of a query and then an addition); ``_store`` indexes only
    what this did not. Candidates are compared only with items scored successfully (a candidate
    whose scoring transaction rolled back is still ``pending``, without a score, and is left
    out). The batch's own items among the index's answers are left to ``earlier_in_batch``,
    which pairs them by position whatever the index held before.
    """
    ok = [ev for ev in evidence if not ev.error]
    if not ok:
        return
    from_index = near_dup_index.candidates_and_add(
        dataset.pk, [(ev.item.id, ev.band_keys) for ev in ok]
    )
    batch_position: dict[int, Evidence] = {ev.item.id: ev for ev in ok}
    candidate_sets: list[set[int]] = []
    for ev, found in zip(ok, from_index, strict=True):
        ev.indexed = True
        candidate_sets.append(
            {cid for cid in found if cid not in batch_position} | ev.earlier_in_batch
        )
    wanted = set().union(*candidate_sets) - set(batch_position)
    others = {
        row["id"]: row
        for row in Item.objects.filter(
            id__in=wanted, score__minhash__isnull=False, score__error=""
        ).values("id", "kind", "text", "messages", "language", "state", "is_reference")
    }
    shingle_cache: dict[int, Any] = {}
    for ev, cands in zip(ok, candidate_sets, strict=True):
        pool = {}
        for cid in cands:
            if cid in batch_position:
                # Each pair of the batch once, found by its later item; stored both ways.
                if cid < ev.item.id:
                    pool[cid] = batch_position[cid].shingles
            elif cid in others:
                if cid not in shingle_cache:
                    row = others[cid]
                    shingle_cache[cid] = minhash.shingles(
                        kinds.scoring_text(
                            row["kind"], row["text"], row["messages"], row["language"]
                        ),
                        kinds.shingle_size(row["kind"]),
                    )
                pool[cid] = shingle_cache[cid]
        ev.matches = [
            (cid, round(j, 6), round(c, 6))
            for cid, j, c in (
                lsh.near_duplicate_matches(ev.shingles, pool, rules.report_threshold)
                if pool
                else []
            )
        ]
        ev.outside = {
            cid: (others[cid]["state"], others[cid]["is_reference"])
            for cid, _, _ in ev.matches
            if cid in others
        }


def _nearest(
    matches: list[tuple[int, float, float]], exact_duplicate_of: int | None
) -> tuple[int, float, float] | None:
    """The match shown as "the" near-duplicate: most similar, then smallest id; the exact
    duplicate (already shown as such) only when nothing else matches. A function of the set of
    matches alone, so it does not depend on the order they were found in."""
    ranked = sorted(matches, key=lambda m: (-m[1], m[0]))
    if exact_duplicate_of is not None:
        ranked = [m for m in ranked if m[0] != exact_duplicate_of] or ranked
    return ranked[0] if ranked else None


def near_duplicate_rule(
    *, item_id: int, is_reference: bool, matches: Iterable[Match], rules: ScoringRules
) -> str | None:
    """The near-duplicate rule a set of matches triggers, naming the matched item, or None.

    An item is a rejected near-copy when a match at or above the threshold is a reference item,
    an approved item, or an earlier-ingested item (smaller id) whatever its state: of two new
    near-copies of each other the earlier ingested survives and the later is rejected. Ids are
    fixed at ingest, so the outcome does not depend on which was scored first or by which
    worker. The match named is the most similar qualifying one (then the smallest id).
    """
    if not rules.reject_near_duplicates or is_reference:
        return None
    qualifying = sorted(
        (
            m
            for m in matches
            if m.jaccard >= rules.near_duplicate_threshold
            and (
                m.other_is_reference or m.other_state == Item.State.APPROVED or m.other_id < item_id
            )
        ),
        key=lambda m: (-m.jaccard, m.other_id),
    )
    if not qualifying:
        return None
    m = qualifying[0]
    what = (
        "reference"
        if m.other_is_reference
        else "approved"
        if m.other_state == Item.State.APPROVED
        else "earlier"
    )
    return (
        f"near_duplicate: Jaccard {m.jaccard:.2f} with {what} item {m.other_id} "
        f"(threshold {rules.near_duplicate_threshold:.2f})"
    )


def _rule(ev: Evidence, rules: ScoringRules, matches: Iterable[Match]) -> str | None:
    """The auto-reject rule this evidence triggers, named, or None."""
    if rules.reject_exact_duplicates and ev.exact_duplicate_of is not None:
        return f"exact_duplicate: same normalized text as item {ev.exact_duplicate_of}"
    rule = near_duplicate_rule(
        item_id=ev.item.id, is_reference=ev.item.is_reference, matches=matches, rules=rules
    )
    if rule:
        return rule
    if rules.reject_degenerate and ev.degenerate:
        return f"degenerate: {ev.degenerate_reason}"
    return None


def _items_load(item_ids: list[int]) -> list[ScoredItem]:
    """The batch's items with their stored score's version and error, in id order.

    On PostgreSQL one ``= ANY(array)`` parameter: the ORM's ``IN`` list of 500 placeholders
    cost about 3 ms of the worker's CPU per batch to build and for the driver to parse.
    """
    if connection.vendor != "postgresql":
        rows = Item.objects.filter(id__in=item_ids).order_by("id").values_list(*_ITEM_VALUES)
        return [ScoredItem(*row) for row in rows]
    column_of = {f.attname: f.column for f in Item._meta.concrete_fields}
    item_columns = ", ".join(f"i.{column_of[name]}" for name in _ITEM_VALUES[:-2])
    messages_at = _ITEM_VALUES.index("messages")
    decoder = Item._meta.get_field("messages").decoder
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {item_columns}, s.scorer_version, s.error "
            f"FROM {Item._meta.db_table} i LEFT JOIN {Score._meta.db_table} s ON s.item_id = i.id "
            "WHERE i.id = ANY(%s::bigint[]) ORDER BY i.id",
            [_pg_int_array(item_ids)],
        )
        rows = cursor.fetchall()
    items = []
    for row in rows:
        item = ScoredItem(*row)
        if item.messages is not None:
            # What JSONField.from_db_value does: Django has the driver hand jsonb over as text.
            item.messages = json.loads(row[messages_at], cls=decoder)
        items.append(item)
    return items


@contextlib.contextmanager
def _scoring_lock(dataset: Dataset, *, wait: bool = True) -> Iterator[bool]:
    """One scorer per dataset at a time from the index query to the index insert: two workers
    scoring concurrent batches would each miss the other's items (neither is in the index yet).
    Held until the batch is committed and indexed; it expires by itself if a worker dies
    holding it. Signals that need no lock are computed before taking it, so a worker (or a
    thread of one) computes its next batch while another batch holds the lock for its I/O.

    The lock lives in the Redis that holds the index: a Redis flushed or restarted while a
    batch held it has lost the lock too. Its release then finds no lock to release, which is
    no error of the batch (committed by then; the index marker tells whether it was whole).
    Yields True; with ``wait=False``, False at once when another scorer holds the lock.
    """
    lock = redis_client().lock(
        f"sg:score-lock:{dataset.pk}",
        timeout=600,
        blocking_timeout=900,
        # redis-py polls a held lock every 100 ms by default: as long as a whole batch's I/O,
        # so a waiting scorer would idle that long after the holder was done.
        sleep=LOCK_POLL_SECONDS,
    )
    if not lock.acquire(blocking=wait):
        if not wait:
            yield False
            return
        raise LockError(f"scoring lock of dataset {dataset.pk} not acquired in 900 s")
    try:
        yield True
    finally:
        try:
            lock.release()
        except RedisError as exc:  # LockNotOwnedError, or Redis down: it expires by itself
            logger.warning("scoring lock of dataset %s not released: %s", dataset.pk, exc)


def items_score(*, item_ids: list[int], force: bool = False) -> dict[str, list[int]]:
    """Score a batch. Returns the ids per outcome: queued, auto_rejected, rescored, failed,
    and reapplied / flagged (items outside or inside the batch, already queued, that a new
    match made a rule apply to: auto-rejected, or flagged to the reviewer holding them).

    Items already scored with this scorer version are skipped unless ``force``.
    """
    items = _items_load(item_ids)
    todo = [
        item
        for item in items
        if force
        or item.state == Item.State.PENDING
        or item.scorer_version != SCORER_VERSION
        or item.score_error
    ]
    outcome: dict[str, list[int]] = {
        "queued": [],
        "auto_rejected": [],
        "rescored": [],
        "failed": [],
        "reapplied": [],
        "flagged": [],
    }
    by_dataset: dict[int, list[ScoredItem]] = {}
    for item in todo:
        by_dataset.setdefault(item.dataset_id, []).append(item)
    for dataset_id, batch in by_dataset.items():
        dataset = Dataset.objects.get(pk=dataset_id)
        rules = scoring_rules_get(dataset=dataset)
        evidence = _signals(dataset, batch)
        with _scoring_lock(dataset):
            checked = _index_ensure(dataset, rules)
            _near_duplicates(dataset, evidence, rules)
            result, whole = _store(dataset, evidence, rules, confirmed=checked)
            if not whole:
                # Redis lost the index while this batch queried it: its items may have missed
                # matches. Rebuild and rescore them (and any other unconfirmed batch) now.
                _index_heal(dataset, rules, reason="index lost during a scoring batch")
        for key, ids in result.items():
            outcome[key].extend(ids)
    return outcome


def _index_state(dataset: Dataset) -> NearDupIndexState:
    state, _ = NearDupIndexState.objects.get_or_create(dataset=dataset)
    return state


def _index_ensure(dataset: Dataset, rules: ScoringRules) -> int:
    """Make sure the dataset's index is whole before a batch queries it; heal it if not.
    Returns the generation it is known whole at. Needs the scoring lock."""
    state = _index_state(dataset)
    marker = near_dup_index.index_marker_get(dataset.pk)
    if marker == state.generation and not state.degraded_reason:
        return state.generation
    if marker is None and state.generation == 0 and not state.degraded_reason:
        # A dataset never scored (or an installation upgraded to this index): nothing to
        # rescore, only whatever was scored with this scorer version to index.
        _index_fill(dataset, generation=0)
        return 0
    reason = state.degraded_reason or (
        "index missing in Redis"
        if marker is None
        else f"index at generation {marker}, database at {state.generation}"
    )
    return _index_heal(dataset, rules, reason=reason)


def _index_fill(dataset: Dataset, *, generation: int, batch_size: int = 5000) -> int:
    """Recreate the dataset's index from the signatures in the database (every item scored with
    this scorer version), then set its marker to ``generation``. Returns how many items."""
    near_dup_index.index_clear(dataset.pk)
    eligible = Score.objects.filter(
        item__dataset=dataset, minhash__isnull=False, error="", scorer_version=SCORER_VERSION
    )
    total = 0
    last = 0
    while True:
        rows = list(
            eligible.filter(item_id__gt=last)
            .order_by("item_id")
            .values_list("item_id", "minhash")[:batch_size]
        )
        if not rows:
            break
        total += near_dup_index.index_add_many(
            dataset.pk, ((i, bytes(m)) for i, m in rows if m is not None)
        )
        last = rows[-1][0]
    near_dup_index.index_marker_set(dataset.pk, generation)
    return total


def _index_heal(dataset: Dataset, rules: ScoringRules, *, reason: str) -> int:
    """Rebuild a dataset's index from the database and rescore every item of a batch not known
    to have been indexed whole (``Score.index_generation`` past ``confirmed``), re-applying the
    rules to those still queued. Needs the scoring lock. Returns the generation it ends at.

    The reason is recorded first, in its own commit: ``/healthz`` says "degraded" until the
    heal completes, and a worker that dies halfway leaves it for the next one to redo.
    """
    now = timezone.now()
    NearDupIndexState.objects.filter(pk=dataset.pk).update(
        degraded_reason=reason[:300], degraded_since=Coalesce(F("degraded_since"), Value(now))
    )
    logger.warning("near-duplicate index of dataset %s: %s; healing", dataset.slug, reason)
    state = _index_state(dataset)
    indexed = _index_fill(dataset, generation=state.generation)
    suspects = list(
        Score.objects.filter(item__dataset=dataset, index_generation__gt=state.confirmed)
        .order_by("item_id")
        .values_list("item_id", flat=True)
    )
    changed: dict[str, list[int]] = {"auto_rejected": [], "reapplied": [], "flagged": []}
    for chunk in _chunks(suspects, settings.SYNTHGATE_SCORE_BATCH):
        items = _items_load(chunk)
        evidence = _signals(dataset, items)
        _near_duplicates(dataset, evidence, rules)
        result, whole = _store(dataset, evidence, rules, confirmed=None)
        if not whole:
            raise RedisError("the near-duplicate index was lost again while being healed")
        for key in changed:
            changed[key].extend(result.get(key, []))
    with transaction.atomic():
        state = NearDupIndexState.objects.select_for_update().get(pk=dataset.pk)
        state.confirmed = state.generation
        state.degraded_reason = ""
        state.degraded_since = None
        state.healed_at = timezone.now()
        state.save()
        audit_append(
            actor=SYSTEM,
            action="index.healed",
            object_type="dataset",
            object_id=dataset.slug,
            dataset=dataset,
            payload={
                "reason": reason[:300],
                "indexed": indexed,
                "rescored": len(suspects),
                "auto_rejected": sorted(changed["auto_rejected"] + changed["reapplied"]),
                "flagged": sorted(changed["flagged"]),
                "generation": state.generation,
            },
        )
    return state.generation


def index_check(*, dataset: Dataset) -> int | None:
    """Heal the dataset's index if it is missing or behind (the periodic sweep calls it, so an
    index lost while nothing is being scored heals too). Returns its generation, or None when
    a scorer holds the dataset's lock (it checks the index itself)."""
    rules = scoring_rules_get(dataset=dataset)
    # Without waiting: a scorer holding the lock checks the index itself before its batch.
    with _scoring_lock(dataset, wait=False) as held:
        return _index_ensure(dataset, rules) if held else None


def _store(
    dataset: Dataset, evidence: list[Evidence], rules: ScoringRules, *, confirmed: int | None
) -> tuple[dict[str, list[int]], bool]:
    """Write the batch's scores, matches, states and audit event in one transaction, and index
    it. Returns the outcome, and whether the index stayed whole throughout (its generation
    marker moved from the one this batch started at to the one it committed).

    ``confirmed``: the generation the index was checked whole at before this batch (recorded
    with it), or None while healing, which confirms nothing until it is done.

    The batch's items are in the index already (``_near_duplicates`` added them with its
    query); what that did not add (items it did not query) goes to Redis before the state
    UPDATE, its reply read after the commit, so Redis inserts while PostgreSQL updates and
    commits. All of it is done before the caller releases the scoring lock, so the next batch's
    query sees this one. Should the transaction roll back, the index holds ids of items still
    ``pending``: harmless, as candidates without a successful score are skipped, and the retry
    adds the same ids again (an id already under a band key is not added twice).
    """
    sent: list[near_dup_index.IndexAdd] = []
    try:
        with transaction.atomic():
            generation = _generation_next(dataset, confirmed=confirmed)
            result = _store_rows(dataset, evidence, rules, sent, generation)
    except BaseException:
        for pending in sent:
            with contextlib.suppress(Exception):
                pending.wait()
        raise
    for pending in sent:
        pending.wait()
    whole = near_dup_index.index_marker_advance(dataset.pk, expected=generation - 1, new=generation)
    return result, whole


def _generation_next(dataset: Dataset, *, confirmed: int | None) -> int:
    """Count one more batch into the dataset's index generation (row-locked until commit)."""
    updates: dict[str, Any] = {"generation": F("generation") + 1}
    if confirmed is not None:
        updates["confirmed"] = Greatest(F("confirmed"), Value(confirmed))
    if not NearDupIndexState.objects.filter(pk=dataset.pk).update(**updates):
        NearDupIndexState.objects.get_or_create(dataset=dataset)
        NearDupIndexState.objects.filter(pk=dataset.pk).update(**updates)
    return NearDupIndexState.objects.values_list("generation", flat=True).get(pk=dataset.pk)


def _matches_replace(evidence: list[Evidence], rescored: Collection[int]) -> set[int]:
    """Store the batch's matches in both directions, first dropping those of items scored
    before (a rescore recomputes them). Returns the ids outside the batch whose matches
    changed."""
    batch_ids = {ev.item.id for ev in evidence}
    touched: set[int] = set()
    if rescored:
        stale = NearDuplicate.objects.filter(Q(item_id__in=rescored) | Q(other_id__in=rescored))
        for item_id, other_id in stale.values_list("item_id", "other_id"):
            touched.update((item_id, other_id))
        stale.delete()
    rows: dict[tuple[int, int], NearDuplicate] = {}
    for ev in evidence:
        for other_id, j, c in ev.matches:
            touched.add(other_id)
            for a, b in ((ev.item.id, other_id), (other_id, ev.item.id)):
                rows[(a, b)] = NearDuplicate(item_id=a, other_id=b, jaccard=j, containment=c)
    if rows:
        NearDuplicate.objects.bulk_create(
            list(rows.values()),
            update_conflicts=True,
            unique_fields=["item", "other"],
            update_fields=["jaccard", "containment"],
        )
    return touched - batch_ids


def _batch_matches(evidence: list[Evidence]) -> dict[int, list[Match]]:
    """Every stored match of the batch's items once ``_matches_replace`` has run, built from the
    batch's own findings instead of read back (which cost a query under the scoring lock): a
    batch item's rows are exactly its verified matches and, for a match inside the batch, the
    other item's match with it. An item's older rows were deleted with its rescore, and an
    item never scored has none (it was in no one's index). The matched item's state is the
    one read with it (``Evidence.outside``, or the batch's own item)."""
    in_batch = {ev.item.id: ev.item for ev in evidence}
    out: dict[int, list[Match]] = {ev.item.id: [] for ev in evidence if not ev.error}
    for ev in evidence:
        for other_id, j, c in ev.matches:
            other = in_batch.get(other_id)
            if other is not None:
                out[ev.item.id].append(Match(other_id, j, c, other.state, other.is_reference))
                out[other_id].append(Match(ev.item.id, j, c, ev.item.state, ev.item.is_reference))
            else:
                state, is_reference = ev.outside[other_id]
                out[ev.item.id].append(Match(other_id, j, c, state, is_reference))
    return out


def _matches_of(item_ids: Collection[int]) -> dict[int, list[Match]]:
    """Every stored match of the given items, with the matched item's state."""
    out: dict[int, list[Match]] = {i: [] for i in item_ids}
    if not item_ids:
        return out
    rows = NearDuplicate.objects.filter(item_id__in=item_ids).values_list(
        "item_id", "other_id", "jaccard", "containment", "other__state", "other__is_reference"
    )
    for item_id, other_id, j, c, state, is_ref in rows:
        out[item_id].append(Match(other_id, j, c, state, is_ref))
    return out


def _store_rows(
    dataset: Dataset,
    evidence: list[Evidence],
    rules: ScoringRules,
    sent: list[near_dup_index.IndexAdd],
    generation: int,
) -> dict[str, list[int]]:
    now = timezone.now()
    max_attempts = settings.SYNTHGATE_SCORE_MAX_ATTEMPTS
    previous_attempts = _scores_attempts([ev.item.id for ev in evidence])
    outsiders = _matches_replace(evidence, rescored=list(previous_attempts))
    matches = _batch_matches(evidence)
    scores: list[dict[str, Any]] = []
    decisions: dict[int, tuple[str, str, float]] = {}  # id -> (new state, reason, priority)
    rule_of: dict[int, str] = {}  # rescored items: the rule their new evidence triggers
    renamed: dict[int, str] = {}  # auto-rejected near-copies whose best qualifying match changed
    failed: dict[int, str] = {}
    for ev in evidence:
        item = ev.item
        attempts = previous_attempts.get(item.id, 0) + 1
        if ev.error:
            failed[item.id] = ev.error
            scores.append(
                {
                    **_ERROR_SCORE,
                    "item_id": item.id,
                    "attempts": attempts,
                    "error": ev.error[:2000],
                    "computed_at": now,
                    "index_generation": generation,
                }
            )
            if attempts >= max_attempts:
                decisions[item.id] = (Item.State.SCORE_FAILED, ev.error[:500], 0.0)
            continue
        found = matches[item.id]
        nearest = _nearest(
            [(m.other_id, m.jaccard, m.containment) for m in found], ev.exact_duplicate_of
        )
        if nearest is not None:
            ev.near_duplicate_of, ev.near_duplicate_jaccard, ev.near_duplicate_containment = nearest
        priority = review_priority(
            probability=ev.probability,
            nearest_jaccard=ev.near_duplicate_jaccard,
            generation=item.generation,
            origin=item.origin,
        )
        scores.append(
            {
                "item_id": item.id,
                "scorer_version": SCORER_VERSION,
                "exact_duplicate_of_id": ev.exact_duplicate_of,
                "near_duplicate_of_id": ev.near_duplicate_of,
                "near_duplicate_jaccard": ev.near_duplicate_jaccard,
                "near_duplicate_containment": ev.near_duplicate_containment,
                "minhash": ev.signature,
                "lexical": ev.lexical,
                "degenerate": ev.degenerate,
                "degenerate_reason": ev.degenerate_reason,
                "detector_name": ev.detector_name,
                "detector_version": ev.detector_version,
                "detector_probability": ev.probability,
                "detectors": ev.detectors,
                "priority": priority,
                "attempts": attempts,
                "error": "",
                "computed_at": now,
                "index_generation": generation,
                "rule_flag": "",
            }
        )
        rule = _rule(ev, rules, found)
        if item.state == Item.State.PENDING:
            decisions[item.id] = (
                (Item.State.AUTO_REJECTED, rule, priority)
                if rule
                else (Item.State.QUEUED, "", priority)
            )
        else:
            decisions[item.id] = (item.state, "", priority)
            if rule and item.state == Item.State.QUEUED:
                rule_of[item.id] = rule
            elif _renamed(item.state, item.state_reason, rule):
                renamed[item.id] = rule or ""
    _scores_upsert(scores, existing=previous_attempts.keys())
    # Index every item scored successfully, whatever its state: a later item finds its match in
    # any of them. The query indexed those it saw; the rest are sent now, read by ``_store``
    # after commit.
    to_index = [(ev.item.id, ev.band_keys) for ev in evidence if ev.signature and not ev.indexed]
    if to_index:
        sent.append(near_dup_index.index_add_keys_send(dataset.pk, to_index))
    # Only rows still pending change state (a conditional UPDATE), so a rerun, or a second worker
    # with the same batch, changes nothing; the UPDATE says which rows it moved.
    pending = _items_transition(
        [(item_id, *decision) for item_id, decision in decisions.items()], now
    )
    rescored = [
        ev.item.id for ev in evidence if ev.item.id not in pending and ev.item.id not in failed
    ]
    rescored_set = set(rescored)
    moved: dict[str, list[int]] = {"queued": [], "auto_rejected": [], "score_failed": []}
    for ev in evidence:
        item = ev.item
        if item.id in pending:
            item.state, item.state_reason, item.priority = decisions[item.id]
            moved[item.state].append(item.id)
    requeued = [
        (ev.item.id, decisions[ev.item.id][2])
        for ev in evidence
        if ev.item.id in rescored_set and ev.item.state == Item.State.QUEUED
    ]
    _items_reprioritize(requeued, now)
    # Items outside the batch that a match of this batch touched: their nearest match, their
    # priority while queued, and the rules again.
    due, outsiders_renamed = _outsiders_update(outsiders, rules, now)
    rule_of.update(due)
    renamed.update(outsiders_renamed)
    reapplied, flagged = _rules_reapply(rule_of, now)
    _reasons_rename(renamed, now)
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
            # Queued items a new match sent to auto_rejected, and the rule (naming the match);
            # those a reviewer held are flagged to the reviewer instead.
            "reapplied": {str(i): rule_of[i] for i in sorted(reapplied)},
            "flagged": {str(i): rule_of[i] for i in sorted(flagged)},
            # Near-copies already auto-rejected whose rule now names a closer qualifying match
            # (the reason is a function of all matches, whatever order they were found in).
            "reasons": {str(i): renamed[i] for i in sorted(renamed)},
            # Items outside the batch whose matches it changed: their stored nearest match
            # (and priority) was brought up to date (their timelines, the dashboard's blocks).
            "matched": sorted(outsiders),
        },
    )
    scored = [ev.item.id for ev in evidence if not ev.error]
    if scored and settings.SYNTHGATE_LM_DETECTOR:
        from corpus.services.lm_scoring import lm_enqueue

        transaction.on_commit(lambda: lm_enqueue(item_ids=scored))
    return {
        "queued": moved[Item.State.QUEUED],
        "auto_rejected": moved[Item.State.AUTO_REJECTED],
        "rescored": rescored,
        "failed": sorted(failed),
        "reapplied": sorted(reapplied),
        "flagged": sorted(flagged),
    }


def _renamed(state: str, reason: str, rule: str | None) -> bool:
    """Whether an auto-rejected near-copy's reason should become ``rule`` (its near-duplicate
    rule over all its matches now); other auto-reject reasons are left alone."""
    return (
        state == Item.State.AUTO_REJECTED
        and reason.startswith("near_duplicate:")
        and rule is not None
        and rule.startswith("near_duplicate:")
        and rule != reason
    )


def _reasons_rename(renamed: dict[int, str], now: Any) -> None:
    for item_id, reason in sorted(renamed.items()):
        Item.objects.filter(pk=item_id, state=Item.State.AUTO_REJECTED).update(
            state_reason=reason[:500], updated_at=now
        )


def _outsiders_update(
    item_ids: set[int], rules: ScoringRules, now: Any
) -> tuple[dict[int, str], dict[int, str]]:
    """Bring the stored nearest match (and, while queued, the priority) of items outside the
    batch up to date with their matches. Returns the rule each queued one now triggers, and
    the new reason of auto-rejected near-copies whose best qualifying match changed."""
    if not item_ids:
        return {}, {}
    rows = list(
        Score.objects.filter(item_id__in=item_ids, error="").values_list(
            "item_id",
            "exact_duplicate_of_id",
            "detector_probability",
            "item__state",
            "item__state_reason",
            "item__is_reference",
            "item__generation",
            "item__origin",
        )
    )
    matches = _matches_of([r[0] for r in rows])
    updates: list[Score] = []
    priorities: list[tuple[int, float]] = []
    rules_due: dict[int, str] = {}
    renamed: dict[int, str] = {}
    for item_id, exact_of, probability, state, reason, is_ref, generation, origin in rows:
        found = matches[item_id]
        nearest = _nearest([(m.other_id, m.jaccard, m.containment) for m in found], exact_of)
        near_id, near_j, near_c = nearest if nearest is not None else (None, None, None)
        priority = review_priority(
            probability=probability, nearest_jaccard=near_j, generation=generation, origin=origin
        )
        updates.append(
            Score(
                item_id=item_id,
                near_duplicate_of_id=near_id,
                near_duplicate_jaccard=near_j,
                near_duplicate_containment=near_c,
                priority=priority,
            )
        )
        if state in (Item.State.QUEUED, Item.State.AUTO_REJECTED):
            rule = near_duplicate_rule(
                item_id=item_id, is_reference=is_ref, matches=found, rules=rules
            )
            if state == Item.State.QUEUED:
                priorities.append((item_id, priority))
                if rule:
                    rules_due[item_id] = rule
            elif _renamed(state, reason, rule):
                renamed[item_id] = rule or ""
    Score.objects.bulk_update(
        updates,
        ["near_duplicate_of", "near_duplicate_jaccard", "near_duplicate_containment", "priority"],
    )
    _items_reprioritize(priorities, now)
    return rules_due, renamed


def _rules_reapply(rule_of: dict[int, str], now: Any) -> tuple[list[int], list[int]]:
    """Auto-reject queued items a rule now applies to (conditional UPDATE on ``queued``), except
    those a reviewer holds under a live claim: their score carries the rule as a flag for the
    reviewer instead. Returns (auto-rejected ids, flagged ids)."""
    if not rule_of:
        return [], []
    held = holds.items_held(list(rule_of))
    flagged = sorted(held)
    for item_id in flagged:
        Score.objects.filter(item_id=item_id).update(rule_flag=rule_of[item_id][:500])
    free = [i for i in rule_of if i not in held]
    rejected: list[int] = []
    for item_id in sorted(free):
        if Item.objects.filter(pk=item_id, state=Item.State.QUEUED).update(
            state=Item.State.AUTO_REJECTED, state_reason=rule_of[item_id][:500], updated_at=now
        ):
            rejected.append(item_id)
    return rejected, flagged


def items_flagged_reapply(*, dataset: Dataset) -> list[int]:
    """Auto-reject queued items whose rule was flagged while a reviewer held them and that
    nobody holds any more (the claim lapsed without a decision). Audited. The sweep calls it."""
    flagged = dict(
        Score.objects.filter(item__dataset=dataset, item__state=Item.State.QUEUED)
        .exclude(rule_flag="")
        .values_list("item_id", "rule_flag")
    )
    if not flagged:
        return []
    held = holds.items_held(list(flagged))
    due = {i: rule for i, rule in flagged.items() if i not in held}
    if not due:
        return []
    with transaction.atomic():
        rejected, _ = _rules_reapply(due, timezone.now())
        if rejected:
            audit_append(
                actor=SYSTEM,
                action="items.rules_reapplied",
                object_type="dataset",
                object_id=dataset.slug,
                dataset=dataset,
                payload={"auto_rejected": {str(i): due[i] for i in rejected}},
            )
    return rejected


# What a failed attempt stores besides its error: every evidence field at its model default, so
# stale evidence of an earlier run never sits beside the error.
_ERROR_SCORE: dict[str, Any] = {
    "scorer_version": SCORER_VERSION,
    "exact_duplicate_of_id": None,
    "near_duplicate_of_id": None,
    "near_duplicate_jaccard": None,
    "near_duplicate_containment": None,
    "minhash": None,
    "lexical": {},
    "degenerate": False,
    "degenerate_reason": "",
    "detector_name": "",
    "detector_version": "",
    "detector_probability": None,
    "detectors": {},
    "priority": 0.0,
    "rule_flag": "",
}


def _scores_attempts(item_ids: list[int]) -> dict[int, int]:
    """item id -> attempts of its stored score, for the items that have one."""
    return dict(values_in(Score, ["item_id", "attempts"], item_id__in=item_ids))


def _scores_upsert(rows: list[dict[str, Any]], existing: Collection[int]) -> None:
    """Insert or replace the ``Score`` rows (dicts keyed by every field's attname); ``existing``
    holds the item ids that have a score already (read in this transaction, under the lock).

    On PostgreSQL the new rows, nearly all of them, go in with ``COPY`` (``corpus.db.bulk``):
    ``bulk_create(update_conflicts=True)`` rendered a statement of 8,500 parameters per batch of
    500 and cost more CPU than scoring the batch. Should a row appear meanwhile anyway (a second
    scorer whose lock expired), the COPY fails as a whole inside its savepoint and every row
    takes the upsert instead. Rows that replace a score, and every row elsewhere (SQLite), take
    ``bulk_create(update_conflicts=True)`` as before. Both write the same values.
    """
    if connection.vendor == "postgresql":
        new = [row for row in rows if row["item_id"] not in existing]
        if new:
            try:
                with transaction.atomic():
                    bulk_insert(Score, new)
            except IntegrityError:
                logger.warning("score rows appeared during scoring; upserting them instead")
            else:
                rows = [row for row in rows if row["item_id"] in existing]
    if rows:
        Score.objects.bulk_create(
            [Score(**row) for row in rows],
            update_conflicts=True,
            unique_fields=["item"],
            update_fields=[f.name for f in Score._meta.concrete_fields if f.name != "item"],
        )


def _items_transition(decisions: list[tuple[int, str, str, float]], now: Any) -> set[int]:
    """Move items out of ``pending``: (id, state, reason, priority) each. Returns the ids that
    were still pending, i.e. the ones that moved.

    A conditional UPDATE (``state = 'pending'`` in its WHERE clause) per 1000 items: a
    concurrent run that got there first, or an earlier run of the same batch, leaves nothing to
    change, and the rows it changes stay locked until commit. Django's bulk_update would build
    a CASE expression per row.
    """
    table = Item._meta.db_table
    moved: set[int] = set()
    for start in range(0, len(decisions), 1000):
        source, params = _values(
            decisions[start : start + 1000], ["BIGINT", "TEXT", "TEXT", "DOUBLE PRECISION"]
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v(id, state, reason, priority) AS ({source}) "
                f"UPDATE {table} SET state = v.state, state_reason = v.reason, "
                f"priority = v.priority, updated_at = %s "
                f"FROM v WHERE {table}.id = v.id AND {table}.state = %s RETURNING {table}.id",
                [*params, now, Item.State.PENDING],
            )
            moved.update(row[0] for row in cursor.fetchall())
    return moved


def _items_reprioritize(priorities: list[tuple[int, float]], now: Any) -> None:
    """Set the review priority of rescored items that are (still) waiting in the queue."""
    table = Item._meta.db_table
    for start in range(0, len(priorities), 1000):
        source, params = _values(priorities[start : start + 1000], ["BIGINT", "DOUBLE PRECISION"])
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v(id, priority) AS ({source}) "
                f"UPDATE {table} SET priority = v.priority, updated_at = %s "
                f"FROM v WHERE {table}.id = v.id AND {table}.state = %s",
                [*params, now, Item.State.QUEUED],
            )


def items_pending_stale(*, older_than_seconds: int, limit: int = 50_000) -> list[int]:
    """Items whose scoring message was lost, older than the grace period: those still
    ``pending``, and reference items never scored. A reference item is loaded straight into
    ``approved``, so only its missing score row tells that its message was lost (a broker that
    restarted empty drops every queued batch); unscored, it is missing from the near-duplicate
    index, and every near-copy of it would go to review instead of being auto-rejected.

    Cost: the second query is an anti-join over every reference item (a hash anti-join with
    ``corpus_score``: about 1 s per sweep at 1M reference items in 2M items, measured with
    narrow stand-in tables on PostgreSQL 15), paid once per sweep, not per request."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = list(
        Item.objects.filter(state=Item.State.PENDING, created_at__lt=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    unscored_references = list(
        Item.objects.filter(is_reference=True, score__isnull=True, created_at__lt=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[: limit - len(pending)]
    )
    return sorted(pending + unscored_references)


def index_rebuild(*, dataset: Dataset | None = None) -> int:
    """Recreate the near-duplicate index from the signatures stored in the database, dropping
    buckets of other layout versions, and rescore the items of any batch the index was not
    known whole for. Takes each dataset's scoring lock. Returns how many items were indexed."""
    datasets = [dataset] if dataset is not None else list(Dataset.objects.order_by("pk"))
    if dataset is None:
        near_dup_index.index_clear_other_versions()
    total = 0
    for ds in datasets:
        rules = scoring_rules_get(dataset=ds)
        with _scoring_lock(ds):
            _index_heal(ds, rules, reason="rebuild_index")
        total += Score.objects.filter(
            item__dataset=ds, minhash__isnull=False, error="", scorer_version=SCORER_VERSION
        ).count()
    return total


def items_rescore_select(*, dataset: Dataset, all_items: bool = False) -> list[int]:
    """Ids whose evidence is missing, failed or from another scorer version (or all)."""
    items = Item.objects.filter(dataset=dataset).exclude(state=Item.State.SCORE_FAILED)
    if not all_items:
        items = items.filter(
            Q(score__isnull=True) | ~Q(score__scorer_version=SCORER_VERSION) | ~Q(score__error="")
        )
    return list(items.order_by("id").values_list("id", flat=True))
