"""The dashboard rollup: what the dataset page reads, computed in the background.

A page view must not aggregate a million items (bench/dashboard.py holds it under 300 ms), so
a periodic task (``dashboard_rollup_task``, every ``SYNTHGATE_DASHBOARD_ROLLUP_SECONDS``) runs
``dashboard_rollup`` per dataset:

1. Tail n-gram counts, incrementally: reference items added since the last run, and feed entries
   (approvals, undos, retractions) since the last run, adjust ``TailGram`` counts. Both
   watermarks move in the same transaction as the counts, under the state row's lock, so a
   second run at the same time waits and then finds nothing new: nothing is counted twice.
2. Whole-dataset figures (detector histogram per generator, depth mix, near-duplicate clusters
   and rates, reviewer agreement and gold accuracy) into ``DashboardState.figures``: one
   aggregate query each.
3. ``DashboardDay`` rows: the flow of the last few days (recomputed, since items ingested on a
   day are scored and decided later) and today's snapshot of the approved set.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, F, FloatField, Q, QuerySet, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Floor, Least, TruncDate
from django.utils import timezone

from corpus.models import Dataset, FeedEntry, FeedKind, Item, Score, ScoringRules
from dashboard.models import DashboardDay, DashboardState, TailGram
from dashboard.tail import RARE_MAX_DOCS, tail_grams

logger = logging.getLogger(__name__)

# Days of flow recomputed on each run; the first run of a dataset fills this many.
RECENT_DAYS = 2
FIRST_RUN_DAYS = 30
HISTOGRAM_BINS = 10
MAX_DEPTH_SHOWN = 4  # generation depths above this are counted as "4+"
DEFAULT_NEAR_DUPLICATE_THRESHOLD = 0.8
# The lexical statistics shown as diversity, and the DashboardDay column suffix of each.
DIVERSITY = {
    "compression_ratio": "compression",
    "distinct_2": "distinct_2",
    "repeated_ngram_share": "repetition",
}
DECIDED_APPROVED = (Item.State.APPROVED, Item.State.RETRACTED)
SENT_TO_REVIEW = (Item.State.QUEUED, Item.State.APPROVED, Item.State.REJECTED, Item.State.RETRACTED)


def day_start(moment: datetime) -> datetime:
    local = timezone.localtime(moment)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


# --- 1. tail n-grams -----------------------------------------------------------------------------


def _doc_counts(texts: list[str]) -> dict[int, int]:
    """How many of ``texts`` hold each sampled n-gram: the texts' distinct n-grams concatenated
    and counted in one numpy pass."""
    if not texts:
        return {}
    sample = settings.SYNTHGATE_TAIL_SAMPLE
    grams, counts = np.unique(
        np.concatenate([tail_grams(text, sample=sample) for text in texts]), return_counts=True
    )
    return dict(zip(grams.tolist(), counts.tolist(), strict=True))


def _tail_add(dataset_id: int, reference: dict[int, int], approved: dict[int, int]) -> None:
    """Add the deltas to TailGram, creating rows as needed (one upsert per 1000 n-grams)."""
    grams = set(reference) | set(approved)
    if not grams:
        return
    table = connection.ops.quote_name(TailGram._meta.db_table)
    rows = [(dataset_id, gram, reference.get(gram, 0), approved.get(gram, 0)) for gram in grams]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            cursor.execute(
                f"INSERT INTO {table} (dataset_id, gram, reference_docs, approved_docs) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
                + " ON CONFLICT (dataset_id, gram) DO UPDATE SET"
                f" reference_docs = {table}.reference_docs + excluded.reference_docs,"
                f" approved_docs = {table}.approved_docs + excluded.approved_docs",
                [value for row in chunk for value in row],
            )


def tail_update(*, dataset: Dataset, batch: int = 5000) -> int:
    """Count reference items and feed entries added since the last run into TailGram; returns
    how many were counted. Each batch commits with its watermark, under the state row lock."""
    done = 0
    more_refs = True  # until a batch of references comes back short: then none are left
    while True:
        with transaction.atomic():
            DashboardState.objects.get_or_create(dataset=dataset)
            state = DashboardState.objects.select_for_update().get(dataset=dataset)
            refs: list[tuple[int, str]] = []
            if more_refs:
                refs = list(
                    Item.objects.filter(
                        dataset=dataset, is_reference=True, id__gt=state.reference_item_id
                    )
                    .order_by("id")
                    .values_list("id", "text")[:batch]
                )
                more_refs = len(refs) == batch
            entries = list(
                FeedEntry.objects.filter(dataset=dataset, seq__gt=state.feed_seq)
                .order_by("seq")
                .values_list("seq", "kind", "item__text", "item__is_reference")[:batch]
            )
            if not refs and not entries:
                return done
            reference = _doc_counts([text for _, text in refs])
            # Approvals add one document, undos and retractions (of approvals) take it back.
            added = _doc_counts(
                [t for _, k, t, ref in entries if not ref and k == FeedKind.APPROVED]
            )
            taken = _doc_counts(
                [t for _, k, t, ref in entries if not ref and k != FeedKind.APPROVED]
            )
            approved = dict(added)
            for gram, n in taken.items():
                approved[gram] = approved.get(gram, 0) - n
            _tail_add(dataset.pk, reference, approved)
            update: dict[str, Any] = {}
            if refs:
                update["reference_item_id"] = refs[-1][0]
            if entries:
                update["feed_seq"] = entries[-1][0]
            DashboardState.objects.filter(pk=dataset.pk).update(**update)
            done += len(refs) + len(entries)


def tail_coverage_get(*, dataset: Dataset) -> float | None:
    """Share of the rare reference n-grams that the approved set holds; None without any."""
    counts = TailGram.objects.filter(
        dataset=dataset, reference_docs__gte=1, reference_docs__lte=RARE_MAX_DOCS
    ).aggregate(rare=Count("gram"), kept=Count("gram", filter=Q(approved_docs__gt=0)))
    return counts["kept"] / counts["rare"] if counts["rare"] else None


# --- 2. whole-dataset figures --------------------------------------------------------------------


def _lexical_means(scores: QuerySet[Score]) -> dict[str, float | None]:
    means = scores.aggregate(
        **{key: Avg(Cast(KT(f"lexical__{key}"), FloatField())) for key in DIVERSITY}
    )
    return {key: (round(value, 6) if value is not None else None) for key, value in means.items()}


def near_duplicate_threshold(dataset: Dataset) -> float:
    rules = ScoringRules.objects.filter(dataset=dataset).values_list(
        "near_duplicate_threshold", flat=True
    )
    return next(iter(rules), DEFAULT_NEAR_DUPLICATE_THRESHOLD)


def detector_histogram(dataset: Dataset) -> list[dict[str, Any]]:
    """Scored non-reference items per (generator, detector-probability bin of width 0.1)."""
    rows = (
        Score.objects.filter(
            item__dataset=dataset,
            item__is_reference=False,
            detector_probability__isnull=False,
        )
        .annotate(
            bin=Least(
                Floor(F("detector_probability") * HISTOGRAM_BINS),
                Value(HISTOGRAM_BINS - 1.0),
                output_field=FloatField(),
            )
        )
        .values("item__generator_model", "bin")
        .annotate(n=Count("item_id"))
        .order_by("item__generator_model", "bin")
    )
    return [
        {"generator": row["item__generator_model"], "bin": int(row["bin"]), "items": row["n"]}
        for row in rows
    ]


def depth_mix(dataset: Dataset) -> list[dict[str, Any]]:
    """Approved items per generation depth, depths above MAX_DEPTH_SHOWN together."""
    counts: Counter[str] = Counter()
    rows = (
        Item.objects.filter(dataset=dataset, state=Item.State.APPROVED, is_reference=False)
        .values("generation")
        .annotate(n=Count("id"))
    )
    for row in rows:
        depth = row["generation"]
        counts[str(depth) if depth < MAX_DEPTH_SHOWN else f"{MAX_DEPTH_SHOWN}+"] += row["n"]
    order = [str(d) for d in range(MAX_DEPTH_SHOWN)] + [f"{MAX_DEPTH_SHOWN}+"]
    return [{"depth": depth, "items": counts.get(depth, 0)} for depth in order]


def near_duplicates(dataset: Dataset) -> dict[str, Any]:
    """Clusters: distinct items that at least one scored item is a near-duplicate of (Jaccard at
    or above the dataset's threshold); per generator, the share of its scored items that are
    such near-duplicates."""
    threshold = near_duplicate_threshold(dataset)
    scores = Score.objects.filter(item__dataset=dataset, item__is_reference=False)
    near = Q(near_duplicate_jaccard__gte=threshold, near_duplicate_of__isnull=False)
    clusters = scores.filter(near).aggregate(n=Count("near_duplicate_of", distinct=True))["n"]
    per_generator = (
        scores.values("item__generator_model")
        .annotate(scored=Count("item_id"), near=Count("item_id", filter=near))
        .order_by("item__generator_model")
    )
    return {
        "threshold": threshold,
        "clusters": clusters,
        "generators": [
            {
                "generator": row["item__generator_model"],
                "scored": row["scored"],
                "near_duplicates": row["near"],
                "rate": round(row["near"] / row["scored"], 6) if row["scored"] else 0.0,
            }
            for row in per_generator
        ],
    }


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two raters' labels on the same items: (observed agreement - chance
    agreement) / (1 - chance agreement), chance from each rater's label frequencies. The same
    figure as scikit-learn's ``cohen_kappa_score`` (checked in the tests), without importing
    scikit-learn into the worker for four lines."""
    n = len(a)
    observed = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
    first, second = Counter(a), Counter(b)
    chance = sum(first[label] * second[label] for label in first) / (n * n)
    return (observed - chance) / (1 - chance) if chance < 1 else 1.0


def reviewer_agreement(dataset: Dataset) -> dict[str, Any]:
    """Cohen's kappa between the first and the second live vote on every non-gold item with
    several votes, and accuracy on gold checks overall and per reviewer."""
    from review.models import Decision

    live = Decision.objects.filter(dataset=dataset, undone_at__isnull=True)
    several = (
        live.filter(gold_expected="")
        .values("item_id")
        .annotate(votes=Count("id"))
        .filter(votes__gte=2)
        .values("item_id")
    )
    first: dict[int, str] = {}
    second: dict[int, str] = {}
    for item_id, verdict in (
        live.filter(gold_expected="", item_id__in=several)
        .order_by("item_id", "created_at", "id")
        .values_list("item_id", "verdict")
    ):
        if item_id not in first:
            first[item_id] = verdict
        elif item_id not in second:
            second[item_id] = verdict
    a = [first[item_id] for item_id in second]
    b = [second[item_id] for item_id in second]
    kappa: float | None = None
    if a and len(set(a) | set(b)) > 1:
        kappa = round(cohen_kappa(a, b), 6)
    gold = (
        live.exclude(gold_expected="")
        .values("reviewer_id", "reviewer__username")
        .annotate(answered=Count("id"), correct=Count("id", filter=Q(verdict=F("gold_expected"))))
        .order_by("reviewer__username")
    )
    per_reviewer = [
        {
            "reviewer_id": row["reviewer_id"],
            "reviewer": row["reviewer__username"],
            "answered": row["answered"],
            "correct": row["correct"],
        }
        for row in gold
    ]
    answered = sum(row["answered"] for row in per_reviewer)
    correct = sum(row["correct"] for row in per_reviewer)
    return {
        "items_with_several_votes": len(a),
        "agreeing": sum(1 for x, y in zip(a, b, strict=True) if x == y),
        "kappa": kappa,
        "gold_answered": answered,
        "gold_correct": correct,
        "gold_accuracy": round(correct / answered, 6) if answered else None,
        "gold_per_reviewer": per_reviewer,
    }


def queue_counts(dataset: Dataset) -> dict[str, int]:
    """Items left in the review queue (gold checks, which stay queued, left out) and items
    waiting to be scored."""
    from review.models import GoldItem

    queued = Item.objects.filter(dataset=dataset, state=Item.State.QUEUED).count()
    gold = GoldItem.objects.filter(dataset=dataset, item__state=Item.State.QUEUED).count()
    pending = Item.objects.filter(dataset=dataset, state=Item.State.PENDING).count()
    return {"queued": queued - gold, "pending": pending}


def figures_compute(*, dataset: Dataset) -> dict[str, Any]:
    return {
        "queue": queue_counts(dataset),
        "detector_histogram": detector_histogram(dataset),
        "depth_mix": depth_mix(dataset),
        "near_duplicates": near_duplicates(dataset),
        "agreement": reviewer_agreement(dataset),
    }


# --- 3. days -------------------------------------------------------------------------------------


def _flow(dataset: Dataset, since: datetime) -> dict[date, dict[str, int]]:
    days: dict[date, dict[str, int]] = {}

    def bump(day: date, key: str, n: int) -> None:
        days.setdefault(day, Counter())[key] += n

    items = Item.objects.filter(dataset=dataset, is_reference=False)
    intake = (
        items.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in intake:
        bump(row["day"], "ingested", row["n"])
        if row["state"] == Item.State.AUTO_REJECTED:
            bump(row["day"], "auto_rejected", row["n"])
        elif row["state"] in SENT_TO_REVIEW:
            bump(row["day"], "queued", row["n"])
    decided = (
        items.filter(decided_at__gte=since, state__in=[*DECIDED_APPROVED, Item.State.REJECTED])
        .annotate(day=TruncDate("decided_at"))
        .values("day", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in decided:
        bump(
            row["day"], "rejected" if row["state"] == Item.State.REJECTED else "approved", row["n"]
        )
    return days


def approved_snapshot(dataset: Dataset) -> dict[str, Any]:
    approved = Item.objects.filter(dataset=dataset, state=Item.State.APPROVED, is_reference=False)
    origins = dict(approved.values_list("origin").annotate(n=Count("id")).order_by())
    snapshot: dict[str, Any] = {
        f"approved_{origin}": origins.get(origin, 0) for origin in Item.Origin.values
    }
    for prefix, scores in (
        (
            "approved",
            Score.objects.filter(
                item__dataset=dataset, item__state=Item.State.APPROVED, item__is_reference=False
            ),
        ),
        ("reference", Score.objects.filter(item__dataset=dataset, item__is_reference=True)),
    ):
        for key, value in _lexical_means(scores).items():
            snapshot[f"{prefix}_{DIVERSITY[key]}"] = value
    snapshot["tail_coverage"] = tail_coverage_get(dataset=dataset)
    return snapshot


def days_update(*, dataset: Dataset, now: datetime, days: int) -> None:
    today = day_start(now)
    since = today - timedelta(days=days - 1)
    flow = _flow(dataset, since)
    snapshot = approved_snapshot(dataset)
    zero = {"ingested": 0, "auto_rejected": 0, "queued": 0, "approved": 0, "rejected": 0}
    with transaction.atomic():
        for offset in range(days):
            day = (since + timedelta(days=offset)).date()
            values: dict[str, Any] = {**zero, **flow.get(day, {}), "computed_at": now}
            if day == today.date():
                values.update(snapshot)
            elif (
                day not in flow
                and not DashboardDay.objects.filter(dataset=dataset, day=day).exists()
            ):
                continue  # nothing happened and nothing was recorded: no row
            DashboardDay.objects.update_or_create(dataset=dataset, day=day, defaults=values)


# --- the whole run -------------------------------------------------------------------------------


def dashboard_rollup(*, dataset: Dataset, now: datetime | None = None) -> DashboardState:
    """Bring a dataset's dashboard figures up to date (see the module docstring). Safe to run
    twice and concurrently: the tail counts move under the state row's lock, the rest is
    recomputed from the database."""
    now = now or timezone.now()
    first = not DashboardDay.objects.filter(dataset=dataset).exists()
    tail_update(dataset=dataset)
    figures = figures_compute(dataset=dataset)
    days_update(dataset=dataset, now=now, days=FIRST_RUN_DAYS if first else RECENT_DAYS)
    DashboardState.objects.filter(pk=dataset.pk).update(figures=figures, computed_at=now)
    return DashboardState.objects.get(pk=dataset.pk)


def rare_grams_sample(*, dataset: Dataset) -> np.ndarray:
    """The rare reference n-grams (for tests and diagnostics)."""
    return np.array(
        TailGram.objects.filter(
            dataset=dataset, reference_docs__gte=1, reference_docs__lte=RARE_MAX_DOCS
        ).values_list("gram", flat=True),
        dtype=np.int64,
    )
