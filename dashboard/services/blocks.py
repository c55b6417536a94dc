"""The dashboard's whole-dataset figures, kept per block of item ids and summed.

Every figure the rollup shows about the whole dataset (queue, detector histogram, depth mix,
near-duplicates, reviewer agreement, the daily flow and the approved set) is a sum over items,
so it is stored per block of ``BLOCK`` consecutive item ids (``DashboardBlock``), and the
dataset's total (``DashboardState.blocks_total``) moves by the difference whenever a block is
rewritten. A run recomputes only the blocks that can have changed since the last one, and
writes only those whose figures differ from the stored ones:

* blocks of items ingested since (ids above ``DashboardState.blocks_item_id``: ingest takes the
  audit chain lock before inserting, so ids are given in commit order and none appears later
  below the watermark);
* blocks of the items that the dataset's audit events since ``DashboardState.blocks_seq`` name.
  Every service that changes what a figure reads (scoring, with the items outside its batch
  whose nearest match it changed; decisions, undos, retractions, gold marks) appends such an
  event in the same transaction as its change (DESIGN, "Every state change lands in a
  tamper-evident audit log").

A run's cost therefore follows what changed, not the dataset's size (bench/RESULTS.md,
"Dashboard rollup, incremental"). Everything is recomputed (``full``) on the first run, when
the near-duplicate threshold the figures count against or the block size changes, when asked
(``manage.py rollup_dashboard --full``), and once every ``SYNTHGATE_DASHBOARD_FULL_SECONDS``
as a safety net against changes written outside the services (SQL by hand).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateField,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Floor, Least, TruncDate

from corpus.models import AuditEvent, Dataset, Item, Score
from corpus.services.audit import audit_head, event_item_ids
from dashboard.models import DashboardBlock, DashboardState, DashboardTarget

# Item ids per block: a run recomputes the block of each item that changed, and keeps one small
# row per block (158,000 rows for 10M items). A decided item's own heap page is in the cache,
# its block's other rows often are not: after 500 approvals scattered over 10M items (tables
# larger than the memory) a run read them from disk, 4.2 s with 256 ids a block, 2.4 - 3.2 s
# with 64, 1.4 - 2.2 s with 16, whose full runs took twice as long or more and whose 632,000
# rows took 470 MB (bench/RESULTS.md, "Dashboard rollup, incremental").
BLOCK = 64
CHUNK_IDS = 32768  # item ids aggregated per query at most
CHUNK_RANGES = 512  # separate id ranges per query at most (planning an OR of them costs)
EVENT_BATCH = 5000
HISTOGRAM_BINS = 10
MAX_DEPTH_SHOWN = 4  # generation depths above this are counted as "4+"
# The lexical statistics shown as diversity (Score.lexical keys), and the DashboardDay column
# suffix of each.
DIVERSITY = {
    "compression_ratio": "compression",
    "distinct_2": "distinct_2",
    "repeated_ngram_share": "repetition",
}
DECIDED = (Item.State.APPROVED, Item.State.RETRACTED, Item.State.REJECTED)


def _block_of(column: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(column) / Value(BLOCK), output_field=BigIntegerField())


def depth_label(depth: int) -> str:
    return str(depth) if depth < MAX_DEPTH_SHOWN else f"{MAX_DEPTH_SHOWN}+"


# --- one chunk of blocks -------------------------------------------------------------------------


def _new_block() -> dict[str, Any]:
    return {
        "queue": {"queued": 0, "pending": 0, "gold_queued": 0},
        "histogram": {},  # generator -> {bin: items}, scored non-reference items
        "near": {},  # generator -> [scored, near-duplicates], non-reference items
        "targets": [],  # the items near-duplicates point at (clusters are the distinct ones)
        "depth": {},  # approved non-reference items per depth label
        "origin": {},  # approved non-reference items per origin
        "lexical": {"approved": {}, "reference": {}},  # key -> [values, sum]
        "intake": {},  # day -> {state: items}, non-reference items by the day they came in
        "decided": {},  # day -> {"approved"|"rejected": items}, by the day they were decided
        "pairs": {},  # "first|second" -> items, the first two live votes of non-gold items
        "gold": {},  # reviewer id -> [answered, correct]
    }


def _bump(mapping: dict[str, Any], key: str, n: int | float) -> None:
    mapping[key] = mapping.get(key, 0) + n


def _items_into(blocks: dict[int, dict[str, Any]], items: Any) -> None:
    approved_figure = Q(state=Item.State.APPROVED, is_reference=False)
    rows = (
        items.annotate(
            block=_block_of("id"),
            day=Case(
                When(is_reference=False, then=TruncDate("created_at")), output_field=DateField()
            ),
            decided_day=Case(
                When(
                    Q(is_reference=False, state__in=DECIDED, decided_at__isnull=False),
                    then=TruncDate("decided_at"),
                ),
                output_field=DateField(),
            ),
            depth=Case(
                When(approved_figure, then=Least("generation", Value(MAX_DEPTH_SHOWN))),
                output_field=IntegerField(),
            ),
            approved_origin=Case(When(approved_figure, then=F("origin"))),
        )
        .values("block", "state", "day", "decided_day", "depth", "approved_origin")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        block, state, n = blocks[row["block"]], row["state"], row["n"]
        if state in (Item.State.QUEUED, Item.State.PENDING):
            block["queue"][state] += n
        if row["day"] is not None:
            _bump(block["intake"].setdefault(row["day"].isoformat(), {}), state, n)
        if row["decided_day"] is not None:
            verdict = "rejected" if state == Item.State.REJECTED else "approved"
            _bump(block["decided"].setdefault(row["decided_day"].isoformat(), {}), verdict, n)
        if row["depth"] is not None:
            _bump(block["depth"], depth_label(row["depth"]), n)
            _bump(block["origin"], row["approved_origin"], n)


def _scores_into(blocks: dict[int, dict[str, Any]], scores: Any, threshold: float) -> None:
    near = Q(near_duplicate_jaccard__gte=threshold, near_duplicate_of__isnull=False)
    lexical = {key: Cast(KT(f"lexical__{key}"), FloatField()) for key in DIVERSITY}
    rows = (
        scores.annotate(
            block=_block_of("item_id"),
            bin=Least(
                Floor(F("detector_probability") * HISTOGRAM_BINS),
                Value(HISTOGRAM_BINS - 1.0),
                output_field=FloatField(),
            ),
            near=Case(When(near, then=Value(1)), default=Value(0)),
            approved=Case(When(item__state=Item.State.APPROVED, then=Value(1)), default=Value(0)),
        )
        .values("block", "item__generator_model", "item__is_reference", "bin", "near", "approved")
        .annotate(
            n=Count("item_id"),
            **{f"sum_{key}": Sum(value) for key, value in lexical.items()},
            **{f"count_{key}": Count(value) for key, value in lexical.items()},
        )
        .order_by()
    )
    for row in rows:
        block, n = blocks[row["block"]], row["n"]
        if row["item__is_reference"]:
            kind = "reference"
        else:
            generator = row["item__generator_model"]
            counts = block["near"].setdefault(generator, [0, 0])
            counts[0] += n
            counts[1] += n * row["near"]
            if row["bin"] is not None:
                _bump(block["histogram"].setdefault(generator, {}), str(int(row["bin"])), n)
            kind = "approved" if row["approved"] else ""
        if kind:
            for key in DIVERSITY:
                if row[f"count_{key}"]:
                    total = block["lexical"][kind].setdefault(key, [0, 0.0])
                    total[0] += row[f"count_{key}"]
                    total[1] += row[f"sum_{key}"]
    targets = (
        scores.filter(near, item__is_reference=False)
        .values_list("item_id", "near_duplicate_of_id")
        .order_by()
    )
    found: dict[int, set[int]] = defaultdict(set)
    for item_id, target in targets:
        found[item_id // BLOCK].add(target)
    for number, ids in found.items():
        blocks[number]["targets"] = sorted(ids)


def _decisions_into(blocks: dict[int, dict[str, Any]], dataset: Dataset, within: Q) -> None:
    from review.models import Decision, GoldItem

    live = Decision.objects.filter(within, dataset=dataset, undone_at__isnull=True)
    several = (
        live.filter(gold_expected="")
        .values("item_id")
        .annotate(votes=Count("id"))
        .filter(votes__gte=2)
        .values("item_id")
    )
    votes: dict[int, list[str]] = {}
    for item_id, verdict in (
        live.filter(gold_expected="", item_id__in=several)
        .order_by("item_id", "created_at", "id")
        .values_list("item_id", "verdict")
    ):
        votes.setdefault(item_id, []).append(verdict)
    for item_id, verdicts in votes.items():
        _bump(blocks[item_id // BLOCK]["pairs"], f"{verdicts[0]}|{verdicts[1]}", 1)
    gold = (
        live.exclude(gold_expected="")
        .annotate(block=_block_of("item_id"))
        .values("block", "reviewer_id")
        .annotate(answered=Count("id"), correct=Count("id", filter=Q(verdict=F("gold_expected"))))
        .order_by()
    )
    for answers in gold:
        blocks[answers["block"]]["gold"][str(answers["reviewer_id"])] = [
            answers["answered"],
            answers["correct"],
        ]
    gold_queued = (
        GoldItem.objects.filter(within, dataset=dataset, item__state=Item.State.QUEUED)
        .annotate(block=_block_of("item_id"))
        .values("block")
        .annotate(n=Count("item_id"))
        .order_by()
    )
    for row in gold_queued:
        blocks[row["block"]]["queue"]["gold_queued"] += row["n"]


def _ranges(numbers: list[int], column: str) -> Q:
    """Rows whose ``column`` (an item id) falls in one of the blocks ``numbers`` (sorted): one
    range per run of consecutive blocks."""
    where = Q()
    start = end = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == end + 1:
            end = number
            continue
        where |= Q(**{f"{column}__gte": start * BLOCK, f"{column}__lt": (end + 1) * BLOCK})
        if number is not None:
            start = end = number
    return where


def blocks_compute(
    *, dataset: Dataset, numbers: list[int], threshold: float
) -> dict[int, dict[str, Any]]:
    """The figures of the blocks ``numbers`` (sorted); blocks without items left out."""
    blocks: dict[int, dict[str, Any]] = defaultdict(_new_block)
    _items_into(blocks, Item.objects.filter(_ranges(numbers, "id"), dataset=dataset))
    _scores_into(
        blocks,
        Score.objects.filter(_ranges(numbers, "item_id"), item__dataset=dataset),
        threshold,
    )
    _decisions_into(blocks, dataset, _ranges(numbers, "item_id"))
    return dict(blocks)


# --- which blocks changed ------------------------------------------------------------------------


@contextmanager
def _without_jit() -> Iterator[None]:
    """PostgreSQL compiles a query whose estimated cost passes ``jit_above_cost`` to machine
    code first. A chunk's queries (an OR of hundreds of id ranges, estimated high, reading a few
    thousand rows) spent 1.3 s compiling for 1.2 s of execution at 1M items; off for them,
    in a read transaction of their own (``SET LOCAL``). Nothing to do on SQLite."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


def _chunks(numbers: Iterable[int]) -> Iterator[list[int]]:
    """Block numbers sorted, cut so that one chunk's queries cover at most CHUNK_IDS ids in at
    most CHUNK_RANGES runs of consecutive blocks."""
    chunk: list[int] = []
    runs = 0
    for number in sorted(set(numbers)):
        new_run = not chunk or number != chunk[-1] + 1
        if chunk and (len(chunk) * BLOCK >= CHUNK_IDS or (new_run and runs >= CHUNK_RANGES)):
            yield chunk
            chunk, runs = [], 0
        chunk.append(number)
        runs += new_run or len(chunk) == 1
    if chunk:
        yield chunk


def _blocks_named(dataset: Dataset, after: int, upto: int) -> set[int]:
    """Blocks of the items named by the dataset's audit events in (after, upto]."""
    found: set[int] = set()
    while True:
        events = list(
            AuditEvent.objects.filter(dataset=dataset, seq__gt=after, seq__lte=upto)
            .order_by("seq")
            .values_list("seq", "object_type", "object_id", "payload")[:EVENT_BATCH]
        )
        for _, object_type, object_id, payload in events:
            found.update(
                i // BLOCK
                for i in event_item_ids(
                    object_type=object_type, object_id=object_id, payload=payload
                )
            )
        if len(events) < EVENT_BATCH:
            return found
        after = events[-1][0]


@dataclass
class BlocksRun:
    """What one run did: for the log, the tests and the benchmark."""

    full: bool
    changed: list[int] = field(default_factory=list)  # blocks recomputed
    stored: int = 0  # of those, blocks with items
    written: int = 0  # of those, blocks whose figures differed from the stored ones


def _as_stored(figures: dict[str, Any]) -> dict[str, Any]:
    """A block's figures as stored: what is zero left out (so that equal figures compare
    equal), its near-duplicate targets kept for the same comparison."""
    stored = blocks_total([figures])
    if figures["targets"]:
        stored["targets"] = figures["targets"]
    return stored


def _merge(total: dict[str, Any], part: dict[str, Any], sign: int = 1) -> None:
    """Add ``part`` (times ``sign``) into ``total``: numbers add, dicts merge key by key, lists
    of numbers add element-wise. What comes back to zero is dropped, so that a total kept by
    additions and subtractions holds the same keys as one summed afresh."""
    for key, value in part.items():
        if isinstance(value, dict):
            mine = total.setdefault(key, {})
            _merge(mine, value, sign)
            if not mine:
                del total[key]
        elif isinstance(value, list):
            mine = total.setdefault(key, [0] * len(value))
            for n, number in enumerate(value):
                mine[n] += sign * number
            if not mine[0]:  # a count first ([scored, near], [values, sum], [answered,
                del total[key]  # correct]): nothing counted any more
        else:
            total[key] = total.get(key, 0) + sign * value
            if not total[key]:
                del total[key]


def blocks_total(
    blocks: Iterable[dict[str, Any]], start: dict[str, Any] | None = None, sign: int = 1
) -> dict[str, Any]:
    """Blocks' figures added to ``start`` (or taken from it: ``sign`` -1), the near-duplicate
    targets left out."""
    total: dict[str, Any] = start if start is not None else {}
    for figures in blocks:
        _merge(total, {key: value for key, value in figures.items() if key != "targets"}, sign)
    return total


def blocks_update(
    *, dataset: Dataset, threshold: float, now: datetime, full: bool = False
) -> BlocksRun:
    """Recompute the blocks that changed since the last run (all of them when ``full``), move
    the dataset's total by the difference, and move the watermarks. Reads outside a
    transaction (SQLite's write lock is not held while aggregating); stores in a short one,
    and only if no other run stored in between (that run's watermarks then stand, and what it
    missed is still above them)."""
    DashboardState.objects.get_or_create(dataset=dataset)
    state = DashboardState.objects.get(pk=dataset.pk)
    every = settings.SYNTHGATE_DASHBOARD_FULL_SECONDS
    full = (
        full
        or state.blocks_full_at is None
        or state.blocks_threshold != threshold
        or state.blocks_size != BLOCK
        or (every > 0 and now - state.blocks_full_at >= timedelta(seconds=every))
    )
    head_seq = audit_head()["seq"]
    bounds = Item.objects.filter(dataset=dataset).aggregate(low=Min("id"), high=Max("id"))
    top = bounds["high"] or 0
    if full:
        dirty: set[int] = (
            set(range(bounds["low"] // BLOCK, top // BLOCK + 1)) if bounds["low"] else set()
        )
    else:
        dirty = _blocks_named(dataset, state.blocks_seq, head_seq)
        if top > state.blocks_item_id:
            dirty.update(range((state.blocks_item_id + 1) // BLOCK, top // BLOCK + 1))
    # Only the blocks whose figures differ from the stored ones are written: a full run that
    # finds everything as it was writes nothing (where autovacuum is off, every rewritten row
    # would stay behind as a dead one).
    resized = state.blocks_size != BLOCK
    total: dict[str, Any] = {}  # of a full run: every block's figures added up
    changes: dict[int, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
    stored = 0
    for numbers in _chunks(dirty):
        with _without_jit():
            computed = blocks_compute(dataset=dataset, numbers=numbers, threshold=threshold)
            before = (
                {}  # blocks stored at another size compare with nothing: all are rewritten
                if resized
                else dict(
                    DashboardBlock.objects.filter(dataset=dataset, block__in=numbers).values_list(
                        "block", "figures"
                    )
                )
            )
        stored += len(computed)
        for number in numbers:
            new = _as_stored(computed[number]) if number in computed else None
            if full and new:
                blocks_total([new], start=total)
            if new != before.get(number):
                changes[number] = (before.get(number), new)
    run = BlocksRun(full=full, changed=sorted(dirty), stored=stored, written=len(changes))
    with transaction.atomic():
        locked = DashboardState.objects.select_for_update().get(pk=dataset.pk)
        if (locked.blocks_seq, locked.blocks_item_id, locked.blocks_full_at) != (
            state.blocks_seq,
            state.blocks_item_id,
            state.blocks_full_at,
        ):
            return run  # another run stored first
        if not full:
            total = locked.blocks_total
            for old, new in changes.values():
                blocks_total([old] if old else [], start=total, sign=-1)
                blocks_total([new] if new else [], start=total)
        if resized:
            DashboardBlock.objects.filter(dataset=dataset).delete()
            DashboardTarget.objects.filter(dataset=dataset).delete()
        for numbers in _chunks(changes):
            DashboardBlock.objects.filter(dataset=dataset, block__in=numbers).delete()
            DashboardTarget.objects.filter(dataset=dataset, block__in=numbers).delete()
        if full:  # nothing stored outside the blocks the dataset's ids span
            outside = ~Q(block__gte=min(dirty, default=0), block__lte=max(dirty, default=-1))
            DashboardBlock.objects.filter(outside, dataset=dataset).delete()
            DashboardTarget.objects.filter(outside, dataset=dataset).delete()
        written = [(n, new) for n, (_, new) in changes.items() if new]
        DashboardBlock.objects.bulk_create(
            [DashboardBlock(dataset=dataset, block=n, figures=new) for n, new in written],
            batch_size=500,
        )
        DashboardTarget.objects.bulk_create(
            [
                DashboardTarget(dataset=dataset, block=n, target=target)
                for n, new in written
                for target in new.get("targets", ())
            ],
            batch_size=2000,
        )
        update: dict[str, Any] = {
            "blocks_seq": max(head_seq, state.blocks_seq),
            "blocks_item_id": max(top, state.blocks_item_id),
            "blocks_threshold": threshold,
            "blocks_size": BLOCK,
            "blocks_total": total,
        }
        if full:
            update["blocks_full_at"] = now
        DashboardState.objects.filter(pk=dataset.pk).update(**update)
    return run


def blocks_shaped(total: dict[str, Any], *, clusters: int) -> dict[str, Any]:
    """A total on the shape of an empty block (every key present), with ``clusters`` (the
    distinct items that near-duplicates point at) instead of the targets."""
    shaped = _new_block()
    del shaped["targets"]
    _merge(shaped, total)
    shaped["clusters"] = clusters
    return shaped


def blocks_sum(*, dataset: Dataset) -> dict[str, Any]:
    """The dataset's figures as the last run left them."""
    total = (
        DashboardState.objects.filter(pk=dataset.pk).values_list("blocks_total", flat=True).first()
    )
    clusters = DashboardTarget.objects.filter(dataset=dataset).values("target").distinct()
    return blocks_shaped(total or {}, clusters=clusters.count())


def pairs_kappa(pairs: Counter[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters from the counts of their (first, second) label pairs:
    (observed agreement - chance agreement) / (1 - chance agreement), chance from each rater's
    label frequencies; None without pairs or with a single label in all of them."""
    n = sum(pairs.values())
    labels = {label for pair in pairs for label in pair}
    if not n or len(labels) < 2:
        return None
    observed = sum(count for (a, b), count in pairs.items() if a == b) / n
    first: Counter[str] = Counter()
    second: Counter[str] = Counter()
    for (a, b), count in pairs.items():
        first[a] += count
        second[b] += count
    chance = sum(first[label] * second[label] for label in labels) / (n * n)
    return (observed - chance) / (1 - chance) if chance < 1 else 1.0
