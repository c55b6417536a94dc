"""The dashboard's figures, one ``Chart`` per chart: the table behind it (what the CSV and
JSON downloads hold) and its SVG geometry (``dashboard.charts``).

Whole-dataset figures come from the rollup (``DashboardDay``, ``DashboardState``); what must be
live (the queue and the scoring backlog, reviewers' days, gold answers of one reviewer) is one
indexed query each. No selector here scans the items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from django.db.models import Count, F, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from corpus.models import Dataset, Export, Item
from dashboard import charts
from dashboard.models import Alert, DashboardDay, DashboardState
from dashboard.services.blocks import HISTOGRAM_BINS

HISTORY_DAYS = 60
EXPORTS_SHOWN = 30
ORIGINS = ("human", "synthetic", "unknown")


@dataclass
class Chart:
    key: str
    title: str
    # One line: what a healthy and an unhealthy chart look like.
    explanation: str
    columns: list[str]
    rows: list[list[Any]]
    svg: dict[str, Any] | None = None
    # A figure shown above the chart (a count, kappa, an age).
    headline: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "chart": self.key,
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "headline": self.headline,
        }


def _days(dataset: Dataset, now: datetime) -> list[DashboardDay]:
    since = (timezone.localtime(now) - timedelta(days=HISTORY_DAYS)).date()
    return list(DashboardDay.objects.filter(dataset=dataset, day__gt=since).order_by("day"))


def _share(part: int | None, whole: int) -> float | None:
    return round((part or 0) / whole, 6) if whole else None


def approved_share_chart(days: list[DashboardDay]) -> Chart:
    rows: list[list[Any]] = []
    for d in days:
        if d.approved_human is None:
            continue
        total = (d.approved_human or 0) + (d.approved_synthetic or 0) + (d.approved_unknown or 0)
        rows.append(
            [
                d.day.isoformat(),
                total,
                _share(d.approved_human, total),
                _share(d.approved_synthetic, total),
                _share(d.approved_unknown, total),
            ]
        )
    return Chart(
        "approved_share",
        "Origin of the approved set",
        "Healthy: the synthetic share stays flat at the level you chose; unhealthy: it creeps up "
        "while the human share shrinks.",
        ["day", "approved", "human_share", "synthetic_share", "unknown_share"],
        rows,
        charts.line_chart(
            [r[0] for r in rows],
            {origin: [r[2 + i] for r in rows] for i, origin in enumerate(ORIGINS)},
            percent=True,
            y_max=1.0,
        ),
    )


def export_share_chart(dataset: Dataset) -> Chart:
    exports = list(
        Export.objects.filter(dataset=dataset, status=Export.Status.READY)
        .order_by("-id")
        .values("id", "finished_at", "rows_written")
        .annotate(
            human=KT("manifest__human_share"),
            synthetic=KT("manifest__synthetic_share"),
            unknown=KT("manifest__unknown_share"),
        )[:EXPORTS_SHOWN]
    )
    exports.reverse()
    rows: list[list[Any]] = [
        [
            e["id"],
            e["finished_at"].isoformat() if e["finished_at"] else None,
            e["rows_written"],
            *(float(e[o]) if e[o] is not None else 0.0 for o in ORIGINS),
        ]
        for e in cast(list[dict[str, Any]], exports)
    ]
    return Chart(
        "export_share",
        "Origin of each export",
        "Healthy: every export keeps the mix its policy caps; unhealthy: successive exports "
        "carry more and more synthetic rows.",
        ["export", "finished_at", "rows", "human_share", "synthetic_share", "unknown_share"],
        rows,
        charts.bar_chart(
            [f"#{r[0]}" for r in rows],
            {origin: [r[3 + i] for r in rows] for i, origin in enumerate(ORIGINS)},
            stacked=True,
            percent=True,
        ),
    )


DIVERSITY_CHARTS = (
    (
        "compression",
        "Compression ratio (lower is more diverse)",
        "Healthy: the approved line stays near the reference; unhealthy: it climbs above it "
        "(repetitive text compresses well).",
    ),
    (
        "distinct_2",
        "Distinct word bigrams per item",
        "Healthy: the approved line stays near the reference; unhealthy: it sinks below it "
        "(the same phrases again and again).",
    ),
    (
        "repetition",
        "Self-repetition (share of repeated 4-grams)",
        "Healthy: near the reference and flat; unhealthy: rising (looping, padded text).",
    ),
)


def diversity_charts(days: list[DashboardDay]) -> list[Chart]:
    out = []
    for key, title, explanation in DIVERSITY_CHARTS:
        rows: list[list[Any]] = [
            [d.day.isoformat(), getattr(d, f"approved_{key}"), getattr(d, f"reference_{key}")]
            for d in days
            if d.approved_human is not None
        ]
        out.append(
            Chart(
                key,
                title,
                explanation,
                ["day", "approved", "reference"],
                rows,
                charts.line_chart(
                    [r[0] for r in rows],
                    {"approved": [r[1] for r in rows], "reference": [r[2] for r in rows]},
                ),
            )
        )
    return out


def tail_coverage_chart(days: list[DashboardDay]) -> Chart:
    rows: list[list[Any]] = [
        [d.day.isoformat(), d.tail_coverage] for d in days if d.approved_human is not None
    ]
    latest = next((r[1] for r in reversed(rows) if r[1] is not None), None)
    return Chart(
        "tail_coverage",
        "Tail coverage",
        "Share of the reference's rare words that the approved set still contains. Healthy: "
        "flat or rising; unhealthy: falling (the tail is disappearing, the collapse signal).",
        ["day", "tail_coverage"],
        rows,
        charts.line_chart(
            [r[0] for r in rows], {"tail coverage": [r[1] for r in rows]}, percent=True, y_max=1.0
        ),
        headline=f"{latest:.1%} now" if latest is not None else "",
    )


def detector_histogram_chart(figures: dict[str, Any]) -> Chart:
    rows_in = figures.get("detector_histogram", [])
    generators = sorted({r["generator"] for r in rows_in})
    counts = {(r["generator"], r["bin"]): r["items"] for r in rows_in}
    rows: list[list[Any]] = []
    for b in range(HISTOGRAM_BINS):
        low, high = b / HISTOGRAM_BINS, (b + 1) / HISTOGRAM_BINS
        rows.append([round(low, 2), round(high, 2), *(counts.get((g, b), 0) for g in generators)])
    names = [g or "(no generator)" for g in generators]
    return Chart(
        "detector_histogram",
        "Detector score per generator",
        "Healthy: human data piles up on the left, each generator's mass where you expect it; "
        "unhealthy: a generator's bars drift right release after release.",
        ["bin_low", "bin_high", *names],
        rows,
        charts.bar_chart(
            [f"{r[0]:.1f}" for r in rows],
            {name: [r[2 + i] for r in rows] for i, name in enumerate(names)},
        ),
    )


def depth_mix_chart(figures: dict[str, Any]) -> Chart:
    rows = [[r["depth"], r["items"]] for r in figures.get("depth_mix", [])]
    return Chart(
        "depth_mix",
        "Generation depth of the approved set",
        "Healthy: most items at depth 0-1; unhealthy: mass moving to 3 and 4+ (data generated "
        "from generated data).",
        ["depth", "items"],
        rows,
        charts.bar_chart([str(r[0]) for r in rows], {"items": [r[1] for r in rows]}),
    )


def near_duplicates_chart(figures: dict[str, Any]) -> Chart:
    near = figures.get("near_duplicates", {})
    rows: list[list[Any]] = [
        [g["generator"] or "(no generator)", g["scored"], g["near_duplicates"], g["rate"]]
        for g in near.get("generators", [])
    ]
    clusters = near.get("clusters")
    return Chart(
        "near_duplicates",
        "Near-duplicates per generator",
        "Healthy: a low, steady rate and a cluster count that grows slower than the data; "
        "unhealthy: one generator repeating itself.",
        ["generator", "scored", "near_duplicates", "rate"],
        rows,
        charts.bar_chart([r[0] for r in rows], {"rate": [r[3] for r in rows]}, percent=True),
        headline=f"{clusters} near-duplicate clusters" if clusters is not None else "",
    )


def flow_chart(days: list[DashboardDay]) -> Chart:
    keys = ["ingested", "auto_rejected", "queued", "approved", "rejected"]
    rows = [[d.day.isoformat(), *(getattr(d, k) for k in keys)] for d in days]
    return Chart(
        "flow",
        "Flow per day",
        "Ingested, auto-rejected and sent to review by day of arrival; approved and rejected by "
        "day of decision. Healthy: decisions keep pace with the intake; unhealthy: the gap "
        "widens, or auto-rejections jump.",
        ["day", *keys],
        rows,
        charts.line_chart(
            [r[0] for r in rows], {k: [r[1 + i] for r in rows] for i, k in enumerate(keys)}
        ),
    )


def queue_chart(dataset: Dataset, figures: dict[str, Any], now: datetime) -> Chart:
    """The queue and the backlog as of the last rollup (counting 350k queued rows costs more
    than the whole page may), and the age of the oldest unscored item now: the first row of the
    pending-only index, however long the backlog."""
    queue = figures.get("queue", {})
    oldest = (
        Item.objects.filter(dataset=dataset, state=Item.State.PENDING)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    age = round((now - oldest).total_seconds() / 60, 1) if oldest else 0.0
    rows: list[list[Any]] = [
        ["queue_left", queue.get("queued")],
        ["scoring_backlog", queue.get("pending")],
        ["oldest_unscored_minutes", age],
    ]
    labels = (
        "Items left in the queue (last rollup)",
        "Waiting to be scored (last rollup)",
        "Oldest unscored, now (minutes)",
    )
    return Chart(
        "queue",
        "Queue and scoring backlog",
        "Healthy: the backlog waits seconds to minutes; unhealthy: it grows and its oldest item "
        "ages (workers down or too few).",
        ["figure", "value"],
        rows,
        extra={"table": [(label, row[1]) for label, row in zip(labels, rows, strict=True)]},
    )


def throughput_chart(dataset: Dataset, now: datetime, reviewer: Any | None) -> Chart:
    from review.models import ReviewerDay

    since = (timezone.localtime(now) - timedelta(days=HISTORY_DAYS)).date()
    days_q = ReviewerDay.objects.filter(dataset=dataset, day__gt=since)
    if reviewer is not None:
        days_q = days_q.filter(reviewer=reviewer)
    data = list(days_q.values_list("day", "reviewer__username", "decided").order_by("day"))
    names = sorted({name for _, name, _ in data})
    by_day: dict[str, dict[str, int]] = {}
    for day, name, decided in data:
        by_day.setdefault(day.isoformat(), {})[name] = decided
    rows: list[list[Any]] = [
        [day, *(values.get(n, 0) for n in names)] for day, values in by_day.items()
    ]
    return Chart(
        "throughput",
        "Decisions per reviewer per day" if reviewer is None else "Your decisions per day",
        "Healthy: steady days within quota; unhealthy: bursts far above the usual pace (rubber "
        "stamping) or a queue nobody works.",
        ["day", *names],
        rows,
        charts.line_chart(
            [r[0] for r in rows], {n: [r[1 + i] for r in rows] for i, n in enumerate(names)}
        ),
    )


def agreement_chart(dataset: Dataset, figures: dict[str, Any], reviewer: Any | None) -> Chart:
    agreement = figures.get("agreement", {})
    if reviewer is None:
        per = agreement.get("gold_per_reviewer", [])
        kappa = agreement.get("kappa")
        headline = (
            f"Cohen's kappa {kappa:.2f} on {agreement.get('items_with_several_votes', 0)} items "
            "with several votes"
            if kappa is not None
            else "Cohen's kappa: not enough items with several votes"
        )
        rows: list[list[Any]] = [
            [p["reviewer"], p["answered"], p["correct"], round(p["correct"] / p["answered"], 6)]
            for p in per
            if p["answered"]
        ]
    else:
        from review.models import Decision

        mine = Decision.objects.filter(
            dataset=dataset, reviewer=reviewer, undone_at__isnull=True
        ).exclude(gold_expected="")
        got = mine.aggregate(
            answered=Count("id"), correct=Count("id", filter=Q(verdict=F("gold_expected")))
        )
        rows = []
        if got["answered"]:
            rows.append(
                [
                    reviewer.get_username(),
                    got["answered"],
                    got["correct"],
                    round(got["correct"] / got["answered"], 6),
                ]
            )
        headline = ""
    return Chart(
        "agreement",
        "Agreement and gold accuracy",
        "Healthy: kappa above 0.6 and gold accuracy above 90%; unhealthy: reviewers who "
        "disagree with each other or miss the known answers.",
        ["reviewer", "gold_answered", "gold_correct", "gold_accuracy"],
        rows,
        charts.bar_chart(
            [r[0] for r in rows], {"gold accuracy": [r[3] for r in rows]}, percent=True
        ),
        headline=headline,
    )


@dataclass
class Dashboard:
    dataset: Dataset
    is_admin: bool
    charts: list[Chart]
    computed_at: datetime | None
    alerts: list[Alert]

    def chart(self, key: str) -> Chart | None:
        return next((c for c in self.charts if c.key == key), None)


CHART_KEYS = (
    "approved_share",
    "export_share",
    "compression",
    "distinct_2",
    "repetition",
    "tail_coverage",
    "detector_histogram",
    "depth_mix",
    "near_duplicates",
    "flow",
    "queue",
    "throughput",
    "agreement",
)
REVIEWER_CHART_KEYS = ("queue", "throughput", "agreement")
DIVERSITY_KEYS = ("compression", "distinct_2", "repetition")
DAY_CHARTS = {"approved_share", *DIVERSITY_KEYS, "tail_coverage", "flow"}


def dashboard_get(
    *,
    dataset: Dataset,
    user: Any,
    is_admin: bool,
    now: datetime | None = None,
    only: str | None = None,
) -> Dashboard:
    """Everything the page shows (or only the chart ``only``). Admins get every chart; reviewers
    the queue and their own figures (their days, their gold answers)."""
    now = now or timezone.now()
    reviewer = None if is_admin else user
    state = DashboardState.objects.filter(dataset=dataset).first()
    figures = state.figures if state else {}
    keys = CHART_KEYS if is_admin else REVIEWER_CHART_KEYS
    wanted = [k for k in keys if only is None or k == only]
    days = _days(dataset, now) if DAY_CHARTS & set(wanted) else []
    builders: dict[str, Any] = {
        "approved_share": lambda: [approved_share_chart(days)],
        "export_share": lambda: [export_share_chart(dataset)],
        "compression": lambda: diversity_charts(days),  # also distinct_2 and repetition
        "tail_coverage": lambda: [tail_coverage_chart(days)],
        "detector_histogram": lambda: [detector_histogram_chart(figures)],
        "depth_mix": lambda: [depth_mix_chart(figures)],
        "near_duplicates": lambda: [near_duplicates_chart(figures)],
        "flow": lambda: [flow_chart(days)],
        "queue": lambda: [queue_chart(dataset, figures, now)],
        "throughput": lambda: [throughput_chart(dataset, now, reviewer)],
        "agreement": lambda: [agreement_chart(dataset, figures, reviewer)],
    }
    found: list[Chart] = []
    for key in wanted:
        if key in DIVERSITY_KEYS:
            # The three diversity charts come from one builder: run it once.
            if key != (only or DIVERSITY_KEYS[0]):
                continue
            key = DIVERSITY_KEYS[0]
        found += [chart for chart in builders[key]() if only is None or chart.key == only]
    alerts = (
        list(Alert.objects.filter(dataset=dataset, cleared_at__isnull=True).order_by("id"))
        if only is None
        else []
    )
    return Dashboard(
        dataset=dataset,
        is_admin=is_admin,
        charts=found,
        computed_at=state.computed_at if state else None,
        alerts=alerts,
    )


def chart_get(*, dataset: Dataset, user: Any, is_admin: bool, key: str) -> Chart | None:
    """One chart (for its CSV / JSON); None when it does not exist or is not for this user."""
    if key not in (CHART_KEYS if is_admin else REVIEWER_CHART_KEYS):
        return None
    return dashboard_get(dataset=dataset, user=user, is_admin=is_admin, only=key).chart(key)
