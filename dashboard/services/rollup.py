"""The dashboard rollup: what the dataset page reads, computed in the background.

A page view must not aggregate a million items (bench/dashboard.py holds it under 300 ms), so
a periodic task (``dashboard_rollup_task``, every ``SYNTHGATE_DASHBOARD_ROLLUP_SECONDS``) runs
``dashboard_rollup`` per dataset:

1. Tail n-gram counts, incrementally: reference items added since the last run, and feed entries
   (approvals, undos, retractions) since the last run, adjust ``TailGram`` counts. Both
   watermarks move in the same transaction as the counts, under the state row's lock, so a
   second run at the same time waits and then finds nothing new: nothing is counted twice.
2. Whole-dataset figures (detector histogram per generator, depth mix, near-duplicate clusters
   and rates, reviewer agreement and gold accuracy) into ``DashboardState.figures``: the sums
   of per-block figures (``dashboard.services.blocks``), of which a run recomputes only the
   blocks whose items changed since the last run.
3. ``DashboardDay`` rows: the flow of the last few days (from the same sums, since items
   ingested on a day are scored and decided later) and today's snapshot of the approved set.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from corpus.models import Dataset, FeedEntry, FeedKind, Item, ScoringRules
from dashboard.models import DashboardDay, DashboardState, TailGram
from dashboard.services.blocks import (
    DIVERSITY,
    MAX_DEPTH_SHOWN,
    blocks_sum,
    blocks_update,
    pairs_kappa,
)
from dashboard.tail import RARE_MAX_DOCS, tail_grams

logger = logging.getLogger(__name__)

# Days of flow recomputed on each run; the first run of a dataset fills this many.
RECENT_DAYS = 2
FIRST_RUN_DAYS = 30
DEFAULT_NEAR_DUPLICATE_THRESHOLD = 0.8
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


# --- 2. whole-dataset figures (summed from the blocks) ------------------------------------------


def near_duplicate_threshold(dataset: Dataset) -> float:
    rules = ScoringRules.objects.filter(dataset=dataset).values_list(
        "near_duplicate_threshold", flat=True
    )
    return next(iter(rules), DEFAULT_NEAR_DUPLICATE_THRESHOLD)


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two raters' labels on the same items (the figure scikit-learn's
    ``cohen_kappa_score`` gives, checked in the tests), from the counts of their label pairs."""
    kappa = pairs_kappa(Counter(zip(a, b, strict=True)))
    return 1.0 if kappa is None else kappa


def _agreement(total: dict[str, Any]) -> dict[str, Any]:
    """Cohen's kappa between the first and the second live vote on every non-gold item with
    several votes, and accuracy on gold checks overall and per reviewer."""
    pairs: Counter[tuple[str, str]] = Counter()
    for key, n in total["pairs"].items():
        first, second = key.split("|", 1)
        pairs[first, second] += n
    kappa = pairs_kappa(pairs)
    names = dict(
        get_user_model()
        .objects.filter(pk__in=[int(i) for i in total["gold"]])
        .values_list("pk", "username")
    )
    per_reviewer = sorted(
        (
            {
                "reviewer_id": int(reviewer_id),
                "reviewer": names.get(int(reviewer_id), ""),
                "answered": answered,
                "correct": correct,
            }
            for reviewer_id, (answered, correct) in total["gold"].items()
            if answered
        ),
        key=lambda row: (row["reviewer"], row["reviewer_id"]),
    )
    answered = sum(row["answered"] for row in per_reviewer)
    correct = sum(row["correct"] for row in per_reviewer)
    return {
        "items_with_several_votes": sum(pairs.values()),
        "agreeing": sum(n for (a, b), n in pairs.items() if a == b),
        "kappa": round(kappa, 6) if kappa is not None else None,
        "gold_answered": answered,
        "gold_correct": correct,
        "gold_accuracy": round(correct / answered, 6) if answered else None,
        "gold_per_reviewer": per_reviewer,
    }


def figures_from(total: dict[str, Any], *, dataset: Dataset, threshold: float) -> dict[str, Any]:
    queue = total["queue"]
    order = [str(d) for d in range(MAX_DEPTH_SHOWN)] + [f"{MAX_DEPTH_SHOWN}+"]
    near = total["near"]
    return {
        # Gold checks stay queued: they are not left in the queue.
        "queue": {"queued": queue["queued"] - queue["gold_queued"], "pending": queue["pending"]},
        "detector_histogram": [
            {"generator": generator, "bin": int(number), "items": n}
            for generator in sorted(total["histogram"])
            for number, n in sorted(total["histogram"][generator].items(), key=lambda b: int(b[0]))
            if n
        ],
        "depth_mix": [{"depth": depth, "items": total["depth"].get(depth, 0)} for depth in order],
        "near_duplicates": {
            "threshold": threshold,
            "clusters": total["clusters"],
            "generators": [
                {
                    "generator": generator,
                    "scored": scored,
                    "near_duplicates": found,
                    "rate": round(found / scored, 6) if scored else 0.0,
                }
                for generator, (scored, found) in sorted(near.items())
                if scored
            ],
        },
        "agreement": _agreement(total),
    }


# --- 3. days -------------------------------------------------------------------------------------


def _flow(total: dict[str, Any], since: datetime) -> dict[date, dict[str, int]]:
    first = since.date()
    days: dict[date, dict[str, int]] = {}
    for day_text, states in total["intake"].items():
        day = date.fromisoformat(day_text)
        if day < first:
            continue
        counts = days.setdefault(day, Counter())
        for state, n in states.items():
            counts["ingested"] += n
            if state == Item.State.AUTO_REJECTED:
                counts["auto_rejected"] += n
            elif state in SENT_TO_REVIEW:
                counts["queued"] += n
    for day_text, verdicts in total["decided"].items():
        day = date.fromisoformat(day_text)
        if day >= first:
            days.setdefault(day, Counter()).update(verdicts)
    return days


def approved_snapshot(total: dict[str, Any], *, dataset: Dataset) -> dict[str, Any]:
    snapshot: dict[str, Any] = {
        f"approved_{origin}": total["origin"].get(origin, 0) for origin in Item.Origin.values
    }
    for prefix in ("approved", "reference"):
        for key, column in DIVERSITY.items():
            values, added = total["lexical"][prefix].get(key, (0, 0.0))
            snapshot[f"{prefix}_{column}"] = round(added / values, 6) if values else None
    snapshot["tail_coverage"] = tail_coverage_get(dataset=dataset)
    return snapshot


def days_update(*, dataset: Dataset, total: dict[str, Any], now: datetime, days: int) -> None:
    today = day_start(now)
    since = today - timedelta(days=days - 1)
    flow = _flow(total, since)
    snapshot = approved_snapshot(total, dataset=dataset)
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


def dashboard_rollup(
    *, dataset: Dataset, now: datetime | None = None, full: bool = False
) -> DashboardState:
    """Bring a dataset's dashboard figures up to date (see the module docstring). Safe to run
    twice and concurrently: the tail counts move under the state row's lock, the blocks are
    stored only by a run that read the watermarks still in place."""
    now = now or timezone.now()
    first = not DashboardDay.objects.filter(dataset=dataset).exists()
    tail_update(dataset=dataset)
    threshold = near_duplicate_threshold(dataset)
    run = blocks_update(dataset=dataset, threshold=threshold, now=now, full=full)
    logger.info(
        "dashboard rollup of %s: %s blocks recomputed (%s with items, %s changed), full=%s",
        dataset.slug,
        len(run.changed),
        run.stored,
        run.written,
        run.full,
    )
    total = blocks_sum(dataset=dataset)
    figures = figures_from(total, dataset=dataset, threshold=threshold)
    days_update(
        dataset=dataset, total=total, now=now, days=FIRST_RUN_DAYS if first else RECENT_DAYS
    )
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
