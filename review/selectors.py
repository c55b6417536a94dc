"""Reads of the review app: who may see what, the review settings of a dataset, the item and
its evidence, the list page, the dashboard numbers and the per-reviewer statistics."""

import contextlib
import logging
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, User
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    Exists,
    F,
    FloatField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Substr
from django.http import Http404
from django.utils import timezone
from redis.exceptions import RedisError

from corpus import roles
from corpus.models import Dataset, Item, Score, Source
from corpus.selectors import item_matches
from review import evidence, rendering
from review.models import (
    BulkJob,
    Claim,
    Decision,
    GoldItem,
    ReviewerQuota,
    ReviewPolicy,
    Skip,
)
from review.sql import dataset_for_user, item_for_review, quota_row

logger = logging.getLogger(__name__)

FOLD_CHARS = 3000
REFERENCE_CACHE_SECONDS = 600


# --- roles ---------------------------------------------------------------------------------------


# One definition of each role lives in corpus.roles; these names are what review code calls.
is_admin = roles.is_site_admin
is_reviewer = roles.is_reviewer


def review_datasets(*, user: Any) -> QuerySet[Dataset]:
    """Admins see every dataset; reviewers the ones they are listed on; others none."""
    if is_admin(user):
        return Dataset.objects.order_by("slug")
    if is_reviewer(user):
        return Dataset.objects.filter(reviewers=user).order_by("slug")
    return Dataset.objects.none()


def listed_without_role(*, user: Any) -> list[str]:
    """Datasets a user is listed on while lacking the reviewer role (to explain an empty page)."""
    if is_reviewer(user) or not user.is_authenticated:
        return []
    return list(Dataset.objects.filter(reviewers=user).values_list("slug", flat=True))


def dataset_for_review(*, user: Any, slug: str) -> Dataset:
    """The dataset, if the user may review it; 404 otherwise (its existence is not disclosed).

    One statement on every review request: the dataset, its review policy (``review_policy_get``
    then reads none), and the user's role groups and listing on it (what ``review_datasets``
    would ask in two more)."""
    if not user.is_authenticated:
        raise Http404("No such dataset among the ones you review.")
    found = dataset_for_user(slug=slug, user_id=user.pk, groups=roles.ROLE_GROUPS)
    if found is not None:
        roles.role_groups_remember(user, found.groups)
    if found is None or not (is_admin(user) or (is_reviewer(user) and found.listed)):
        raise Http404("No such dataset among the ones you review.")
    dataset = found.dataset
    setattr(dataset, _POLICY_READ, found.policy or ReviewPolicy(dataset=dataset))
    return dataset


def dataset_for_admin(*, user: Any, slug: str) -> Dataset:
    dataset = dataset_for_review(user=user, slug=slug)
    if not is_admin(user):
        raise PermissionDenied("Only admins change review settings.")
    return dataset


def dataset_for_bulk_jobs(*, user: Any, slug: str) -> Dataset:
    """The dataset, if the user may decide every item matching a filter at once in it
    (``roles.may_bulk_decide_all``); 404 for who may not see it, 403 for its reviewers."""
    dataset = dataset_for_review(user=user, slug=slug)
    if not roles.may_bulk_decide_all(user, dataset):
        raise PermissionDenied("Only admins decide every item matching a filter at once.")
    return dataset


# --- settings of a dataset -----------------------------------------------------------------------


# Where dataset_for_review leaves the policy it read with the dataset, for the same request.
_POLICY_READ = "_review_policy_read"


def review_policy_get(*, dataset: Dataset) -> ReviewPolicy:
    """The saved policy, or the defaults (unsaved) when an admin never changed them. A dataset
    from ``dataset_for_review`` carries the policy read with it; others cost a query."""
    read = getattr(dataset, _POLICY_READ, None)
    if read is not None:
        return read
    policy = ReviewPolicy.objects.filter(dataset=dataset).first()
    return policy if policy is not None else ReviewPolicy(dataset=dataset)


def day_start(now: datetime) -> datetime:
    """Quotas count per calendar day in the site's time zone (UTC unless configured)."""
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    limit: int | None
    used: int

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def quota_status_get(
    *, dataset: Dataset, reviewer: User, now: datetime | None = None
) -> QuotaStatus:
    """The reviewer's daily limit (their own, else the dataset default, else none) and their
    live decisions today (an undone decision gives its slot back), in one statement: it runs
    on every claim and every decision."""
    limit, used = quota_row(
        dataset_id=dataset.pk, reviewer_id=reviewer.pk, since=day_start(now or timezone.now())
    )
    return QuotaStatus(limit=limit, used=used)


def quota_list(*, dataset: Dataset) -> list[ReviewerQuota]:
    return list(
        ReviewerQuota.objects.filter(dataset=dataset)
        .select_related("reviewer")
        .order_by(F("reviewer__username").asc(nulls_first=True))
    )


def gold_list(*, dataset: Dataset) -> list[GoldItem]:
    return list(
        GoldItem.objects.filter(dataset=dataset).select_related("item").order_by("-created_at")
    )


# --- the item and its evidence -------------------------------------------------------------------


def item_for_review_get(
    *, dataset: Dataset, item_id: int, read: tuple[Item, list[int]] | None = None
) -> Item:
    """One item with everything the item view shows (source, score, nearest near duplicate,
    parent ids as ``item.parent_ids``), in one statement. ``read``: the same, already read
    (a new lease reads its item in its own round trip), used when it is this item."""
    found = read if read is not None and read[0].pk == item_id else None
    found = found or item_for_review(item_id=item_id, dataset_id=dataset.pk)
    if found is None:
        raise Http404("No such item in this dataset.")
    item, parent_ids = found
    item.parent_ids = parent_ids  # type: ignore[attr-defined]
    return item


class _Median(Aggregate):
    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _reference_medians_compute(dataset: Dataset) -> dict[str, float]:
    keys = [key for key, _, _ in evidence.LEXICAL_METRICS]
    scores = Score.objects.filter(item__dataset=dataset, item__is_reference=True)
    extracted = {k: Cast(KeyTextTransform(k, "lexical"), FloatField()) for k in keys}
    if connection.vendor == "postgresql":
        row = scores.aggregate(**{k: _Median(expr) for k, expr in extracted.items()})
        return {k: v for k, v in row.items() if v is not None}
    # SQLite has no ordered-set aggregate; a recent sample of the reference corpus is enough
    # for a median shown to one decimal place.
    rows = list(
        scores.annotate(**{f"m_{k}": e for k, e in extracted.items()})
        .order_by("-item_id")
        .values_list(*[f"m_{k}" for k in keys])[:50_000]
    )
    medians = {}
    for index, key in enumerate(keys):
        values = [row[index] for row in rows if row[index] is not None]
        if values:
            medians[key] = statistics.median(values)
    return medians


def reference_medians(*, dataset: Dataset) -> dict[str, float]:
    """Median lexical statistics of the dataset's human reference items, cached for a while:
    the reference corpus changes rarely and the median of many rows is not free. Redis being
    down costs a query, not the page."""
    key = f"review:reference-medians:{dataset.pk}"
    try:
        cached = cache.get(key)
    except (RedisError, OSError):
        logger.warning("cache unavailable; computing reference medians directly")
        cached = None
    if cached is not None:
        return cached
    medians = _reference_medians_compute(dataset)
    with contextlib.suppress(RedisError, OSError):
        cache.set(key, medians, REFERENCE_CACHE_SECONDS)
    return medians


def item_evidence(*, item: Item, reference: dict[str, float]) -> dict[str, Any]:
    """Everything the item fragment shows, derived from rows already loaded, and the item's
    near-duplicate matches (one query)."""
    score = getattr(item, "score", None)
    shown, folded = evidence.fold(item.text, FOLD_CHARS)
    near = None
    if score is not None and score.near_duplicate_of_id and score.near_duplicate_of is not None:
        comparison = evidence.shared_spans(item.text, score.near_duplicate_of.text)
        near = {
            "item": score.near_duplicate_of,
            "jaccard": score.near_duplicate_jaccard,
            "comparison": comparison,
        }
    if near is not None and item.kind != Item.Kind.TEXT:
        # Code and transcripts line up line by line (turn by turn), not as running prose.
        near["aligned"] = rendering.aligned_lines(item.text, near["item"].text)
    lexical = score.lexical if score is not None and score.lexical else None
    matches, matches_total = item_matches(item_id=item.pk)
    return {
        "turns": rendering.chat_turns(item.messages) if item.kind == Item.Kind.CHAT else None,
        "code_lines": (
            rendering.code_lines(item.text, item.language) if item.kind == Item.Kind.CODE else None
        ),
        "item": item,
        "score": score,
        "text_shown": shown,
        "text_folded": folded,
        "parent_ids": item.parent_ids,  # type: ignore[attr-defined]
        "detector_text": evidence.detector_explanation(
            score.detector_probability if score is not None else None
        ),
        "detector_band": evidence.detector_band(
            score.detector_probability if score is not None else None
        ),
        "detector_rows": evidence.detector_rows(
            score.detectors if score is not None else None,
            legacy=(score.detector_name, score.detector_version, score.detector_probability)
            if score is not None
            else None,
        ),
        "near": near,
        "matches": matches,
        "matches_total": matches_total,
        "lexical_rows": evidence.lexical_rows(lexical, reference) if lexical else None,
        "has_reference": bool(reference),
    }


def item_decisions(*, item: Item) -> list[Decision]:
    return list(
        Decision.objects.filter(item=item).select_related("reviewer").order_by("created_at")
    )


def last_decision_get(*, dataset: Dataset, reviewer: User) -> Decision | None:
    """The reviewer's most recent decision in the dataset, if it can still be undone."""
    last = (
        Decision.objects.filter(dataset=dataset, reviewer=reviewer)
        .order_by("-created_at", "-id")
        .first()
    )
    return last if last is not None and last.undone_at is None else None


def is_gold(*, item_id: int) -> bool:
    return GoldItem.objects.filter(item_id=item_id).exists()


# --- dashboard -----------------------------------------------------------------------------------


@dataclass
class DatasetRow:
    dataset: Dataset
    queued: int = 0
    decided_today: int = 0
    quota: int | None = None


def dashboard_rows(*, user: Any) -> list[DatasetRow]:
    """The user's datasets with queue depth (gold checks not counted) and their decisions today;
    a fixed number of grouped queries whatever the number of datasets."""
    datasets = list(review_datasets(user=user))
    if not datasets:
        return []
    rows = {ds.pk: DatasetRow(dataset=ds) for ds in datasets}
    ids = list(rows)
    queued = (
        Item.objects.filter(dataset_id__in=ids, state=Item.State.QUEUED, is_gold=False)
        .values("dataset_id")
        .annotate(n=Count("id"))
        .values_list("dataset_id", "n")
    )
    for dataset_id, n in queued:
        rows[dataset_id].queued = n
    today = (
        Decision.objects.filter(
            dataset_id__in=ids,
            reviewer=user,
            created_at__gte=day_start(timezone.now()),
            undone_at__isnull=True,
        )
        .values("dataset_id")
        .annotate(n=Count("id"))
        .values_list("dataset_id", "n")
    )
    for dataset_id, n in today:
        rows[dataset_id].decided_today = n
    quotas = ReviewerQuota.objects.filter(dataset_id__in=ids).filter(
        Q(reviewer=user) | Q(reviewer__isnull=True)
    )
    # A reviewer's own limit overrides the dataset default, whatever order the rows come in.
    for quota in sorted(quotas, key=lambda q: q.reviewer_id is not None):
        rows[quota.dataset_id].quota = quota.daily_limit
    return [rows[ds.pk] for ds in datasets]


def skipped_returning_count(*, dataset: Dataset, reviewer: User, now: datetime) -> int:
    cutoff = now - timedelta(seconds=settings.SYNTHGATE_SKIP_HIDE_SECONDS)
    return (
        Skip.objects.filter(
            dataset=dataset,
            reviewer=reviewer,
            created_at__gt=cutoff,
            item__state=Item.State.QUEUED,
        )
        .values("item_id")
        .distinct()
        .count()
    )


# --- list mode -----------------------------------------------------------------------------------

SORTS = {
    "priority": "Priority",
    "detector": "Detector score",
    "oldest": "Oldest first",
    "newest": "Newest first",
}
BANDS = {
    "high": "0.8 and above",
    "mid": "0.5 to 0.8",
    "low": "below 0.5",
    "unscored": "not scored",
}


# The list's filters: what narrows it, as opposed to its order and page.
FILTER_FIELDS = ("state", "source", "origin", "generator", "band", "near_duplicate", "degenerate")


@dataclass
class ListQuery:
    state: str = Item.State.QUEUED
    source: int | None = None
    origin: str = ""
    generator: str = ""
    band: str = ""
    near_duplicate: str = ""  # "", "yes", "no"
    degenerate: str = ""  # "", "yes", "no"
    sort: str = "priority"
    cursor: dict[str, Any] | None = None
    limit: int = 50

    def filters(self) -> dict[str, Any]:
        """The filters alone, as JSON (source by id): what a bulk job keeps of the list."""
        return {name: getattr(self, name) for name in FILTER_FIELDS}

    @classmethod
    def of_filters(cls, filters: dict[str, Any]) -> "ListQuery":
        """The query of stored ``filters()``, in id order."""
        return cls(**{k: v for k, v in filters.items() if k in FILTER_FIELDS}, sort="oldest")


@dataclass
class ItemPage:
    items: list[Item]
    next_cursor: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)


def _list_filters(query: ListQuery, items: QuerySet[Item]) -> QuerySet[Item]:
    if query.state:
        items = items.filter(state=query.state)
    if query.source is not None:
        items = items.filter(source_id=query.source)
    if query.origin:
        items = items.filter(origin=query.origin)
    if query.generator:
        items = items.filter(generator_model=query.generator)
    if query.band == "high":
        items = items.filter(score__detector_probability__gte=0.8)
    elif query.band == "mid":
        items = items.filter(
            score__detector_probability__gte=0.5, score__detector_probability__lt=0.8
        )
    elif query.band == "low":
        items = items.filter(score__detector_probability__lt=0.5)
    elif query.band == "unscored":
        items = items.filter(Q(score__isnull=True) | Q(score__detector_probability__isnull=True))
    if query.near_duplicate == "yes":
        items = items.filter(score__near_duplicate_of__isnull=False)
    elif query.near_duplicate == "no":
        items = items.filter(Q(score__isnull=True) | Q(score__near_duplicate_of__isnull=True))
    if query.degenerate == "yes":
        items = items.filter(score__degenerate=True)
    elif query.degenerate == "no":
        items = items.filter(Q(score__isnull=True) | Q(score__degenerate=False))
    return items


def _keyset(query: ListQuery, items: QuerySet[Item]) -> tuple[QuerySet[Item], list[str]]:
    """Order and position: each sort is a total order ending in id, and the cursor holds the
    last row's sort key so the next page starts right after it (no OFFSET)."""
    position = query.cursor or {}
    if query.sort == "detector":
        items = items.annotate(det=Coalesce("score__detector_probability", Value(-1.0)))
        if position:
            d, i = float(position["det"]), int(position["id"])
            items = items.filter(Q(det__lt=d) | Q(det=d, id__gt=i))
        return items, ["-det", "id"]
    if query.sort == "oldest":
        if position:
            items = items.filter(id__gt=int(position["id"]))
        return items, ["id"]
    if query.sort == "newest":
        if position:
            items = items.filter(id__lt=int(position["id"]))
        return items, ["-id"]
    if position:
        p, i = float(position["priority"]), int(position["id"])
        # The redundant "priority <= p" is what the (dataset, -priority, id) index can seek
        # to; the OR alone is only a filter over every row before the page.
        items = items.filter(Q(priority__lt=p) | Q(priority=p, id__gt=i), priority__lte=p)
    return items, ["-priority", "id"]


def _cursor_of(query: ListQuery, row: dict[str, Any]) -> dict[str, Any]:
    if query.sort == "detector":
        return {"det": row["det"], "id": row["id"]}
    if query.sort == "priority":
        return {"priority": row["priority"], "id": row["id"]}
    return {"id": row["id"]}


PREVIEW_CHARS = 140


def _matching(*, dataset: Dataset, user: Any, query: ListQuery) -> QuerySet[Item]:
    """The items of the list's filters as ``user`` sees the list: gold checks are hidden from
    reviewers (they would stop being checks), shown to admins."""
    items = Item.objects.filter(dataset=dataset)
    if not is_admin(user):
        items = items.filter(is_gold=False)
    return _list_filters(query, items)


def review_item_list(*, dataset: Dataset, user: Any, query: ListQuery) -> ItemPage:
    """One keyset page of items in one query, as plain rows (no model instances: a page of
    fifty is rendered on every click). Gold checks are flagged for admins; each row says
    whether someone holds it and what this user voted."""
    now = timezone.now()
    items = _matching(dataset=dataset, user=user, query=query)
    items, order = _keyset(query, items)
    # The page's ids first (the filters, the sort and the cursor, nothing else), then only
    # those rows get their columns: one query still, but the score, claim and vote lookups
    # run for fifty rows. Joined in one flat query, PostgreSQL may merge-join the item and
    # score tables in id order and read the score index from its start up to the cursor on
    # every page (it does not carry "id > cursor" over to the score side): at 1M items a
    # page from the middle of the "oldest" order took about 1 s.
    page = Item.objects.filter(id__in=items.order_by(*order).values("id")[: query.limit + 1])
    if query.sort == "detector":
        page = page.annotate(det=Coalesce("score__detector_probability", Value(-1.0)))
    my_vote = Decision.objects.filter(
        item_id=OuterRef("pk"), reviewer=user, undone_at__isnull=True
    ).values("verdict")[:1]
    fields = [
        "id",
        "state",
        "origin",
        "generator_model",
        "priority",
        "is_gold",
        "source_name",
        "detector_probability",
        "near_duplicate_of_id",
        "degenerate",
        "held",
        "my_vote",
        "preview",
    ]
    if query.sort == "detector":
        fields.append("det")
    items = (
        page.annotate(
            source_name=F("source__name"),
            detector_probability=F("score__detector_probability"),
            near_duplicate_of_id=F("score__near_duplicate_of_id"),
            degenerate=F("score__degenerate"),
            held=Exists(Claim.objects.filter(item_id=OuterRef("pk"), expires_at__gt=now)),
            my_vote=Subquery(my_vote),
            # One character more than shown tells whether the text goes on.
            preview=Substr("text", 1, PREVIEW_CHARS + 1),
        )
        .order_by(*order)
        .values(*fields)
    )
    rows = list(items)
    next_cursor = _cursor_of(query, rows[query.limit - 1]) if len(rows) > query.limit else None
    rows = rows[: query.limit]
    for row in rows:
        row["long"] = len(row["preview"]) > PREVIEW_CHARS
        row["preview"] = row["preview"][:PREVIEW_CHARS]
    return ItemPage(items=rows, next_cursor=next_cursor)


LIST_COUNT_CAP = 10_000


def review_item_count(*, dataset: Dataset, user: Any, query: ListQuery) -> int:
    """How many items match the list's filters, counted up to ``LIST_COUNT_CAP`` + 1 (one index
    range scan at most that long, so a filter over a million items costs what a page does)."""
    items = _matching(dataset=dataset, user=user, query=query)
    return items.values("id")[: LIST_COUNT_CAP + 1].count()


# --- filter-wide bulk jobs -----------------------------------------------------------------------


@dataclass(frozen=True)
class BulkJobScope:
    count: int  # items matching the filters, exactly (no cap: an admin confirms this number)
    first: int  # the smallest and largest id among them (0 when none)
    last: int


def bulk_job_scope(
    *, dataset: Dataset, user: Any, query: ListQuery, ceiling: int | None = None
) -> BulkJobScope:
    """The items matching the list's filters, none above ``ceiling``, in one aggregate. A job
    decides nothing above the largest id of when the admin was asked, so items ingested after
    that are never swept in; its walk starts at the smallest."""
    items = _matching(dataset=dataset, user=user, query=query)
    if ceiling is not None:
        items = items.filter(id__lte=ceiling)
    row = items.aggregate(n=Count("id"), first=Min("id"), last=Max("id"))
    return BulkJobScope(count=row["n"], first=row["first"] or 0, last=row["last"] or 0)


def bulk_job_chunk_ids(
    *, dataset: Dataset, user: Any, query: ListQuery, after: int, ceiling: int, limit: int
) -> list[int]:
    """The next ``limit`` ids of the items matching the filters, in id order, after ``after``
    and up to ``ceiling``: a keyset walk, each chunk reading on from where the last stopped."""
    items = _matching(dataset=dataset, user=user, query=query).filter(id__gt=after, id__lte=ceiling)
    with _in_index_order():
        return list(items.order_by("id").values_list("id", flat=True)[:limit])


@contextlib.contextmanager
def _in_index_order() -> Iterator[None]:
    """PostgreSQL plans the query inside without sorting, so it reads an index in id order
    (the primary key, or the dataset's) and stops at ``limit``: a whole job then reads each row
    of its id range once. Left to choose, with statistics that do not yet know a source just
    ingested (the usual case: a new batch, then "approve all from it"), it drove the walk from
    the (source, external_id) index and sorted, reading every item of the source on every
    chunk: 21,500 rows for 500 (bench/RESULTS.md, "Filter-wide bulk jobs"), quadratic over a
    job. Transaction-local, put back after the query."""
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_sort')")
        before = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('enable_sort', 'off', true)")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('enable_sort', %s, true)", [before])


def bulk_job_get(*, dataset: Dataset, job_id: int) -> BulkJob:
    job = (
        BulkJob.objects.select_related("dataset", "requested_by")
        .filter(pk=job_id, dataset=dataset)
        .first()
    )
    if job is None:
        raise Http404("No such bulk job in this dataset.")
    return job


def bulk_job_active(*, dataset: Dataset) -> BulkJob | None:
    """The dataset's queued or running job (one at most)."""
    return BulkJob.objects.filter(dataset=dataset, state__in=BulkJob.ACTIVE).first()


def bulk_job_list(*, dataset: Dataset, limit: int = 50) -> list[BulkJob]:
    return list(
        BulkJob.objects.filter(dataset=dataset)
        .select_related("requested_by")
        .order_by("-id")[:limit]
    )


@dataclass
class QueueProgress:
    queued: int  # awaiting review (gold checks not counted), up to LIST_COUNT_CAP + 1
    pending: int  # waiting to be scored, up to LIST_COUNT_CAP + 1
    oldest_pending: datetime | None
    cap: int

    @property
    def queued_capped(self) -> bool:
        return self.queued > self.cap

    @property
    def pending_capped(self) -> bool:
        return self.pending > self.cap


def queue_progress(*, dataset: Dataset) -> QueueProgress:
    """The queue left and the scoring backlog of a dataset. Counted up to ``LIST_COUNT_CAP`` + 1
    each (short index range scans: an exact count of a million-item queue reads the whole
    table); the oldest pending item is the one with the lowest id (ids grow with time)."""
    items = Item.objects.filter(dataset=dataset)
    queued = items.filter(state=Item.State.QUEUED, is_gold=False)
    pending = items.filter(state=Item.State.PENDING)
    return QueueProgress(
        queued=queued.values("id")[: LIST_COUNT_CAP + 1].count(),
        pending=pending.values("id")[: LIST_COUNT_CAP + 1].count(),
        oldest_pending=pending.order_by("id").values_list("created_at", flat=True).first(),
        cap=LIST_COUNT_CAP,
    )


def dataset_sources(*, dataset: Dataset) -> list[Source]:
    return list(Source.objects.filter(dataset=dataset).only("id", "name").order_by("name"))


# --- statistics for admins -----------------------------------------------------------------------


@dataclass
class ReviewerStats:
    reviewer_id: int
    username: str
    decisions: int = 0
    approvals: int = 0
    median_seconds: float | None = None
    gold_answered: int = 0
    gold_correct: int = 0

    @property
    def approval_rate(self) -> float | None:
        return self.approvals / self.decisions if self.decisions else None

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None


def reviewer_stats(*, dataset: Dataset, since: datetime) -> list[ReviewerStats]:
    """Per reviewer since a date: live decisions, approval rate, median seconds per item (triage
    decisions only; bulk ones have no timing) and accuracy on gold checks. A rubber stamp shows
    as a near-100% approval rate, a tiny median and poor gold accuracy."""
    decisions = Decision.objects.filter(
        dataset=dataset, created_at__gte=since, undone_at__isnull=True
    )
    gold = ~Q(gold_expected="")
    grouped = (
        decisions.values("reviewer_id", "reviewer__username")
        .annotate(
            n=Count("id", filter=~gold),
            approvals=Count("id", filter=~gold & Q(verdict=Decision.Verdict.APPROVE)),
            gold_n=Count("id", filter=gold),
            gold_ok=Count("id", filter=gold & Q(verdict=F("gold_expected"))),
        )
        .order_by("reviewer__username")
    )
    stats = {
        row["reviewer_id"]: ReviewerStats(
            reviewer_id=row["reviewer_id"],
            username=row["reviewer__username"],
            decisions=row["n"],
            approvals=row["approvals"],
            gold_answered=row["gold_n"],
            gold_correct=row["gold_ok"],
        )
        for row in grouped
    }
    timed = decisions.filter(seconds__isnull=False)
    if connection.vendor == "postgresql":
        medians = timed.values("reviewer_id").annotate(m=_Median("seconds"))
        for row in medians:
            stats[row["reviewer_id"]].median_seconds = row["m"]
    else:
        by_reviewer: dict[int, list[float]] = {}
        for reviewer_id, seconds in timed.values_list("reviewer_id", "seconds"):
            by_reviewer.setdefault(reviewer_id, []).append(float(seconds or 0))
        for reviewer_id, values in by_reviewer.items():
            stats[reviewer_id].median_seconds = statistics.median(values)
    return list(stats.values())


def reviewer_choices(*, dataset: Dataset) -> list[AbstractBaseUser]:
    return list(dataset.reviewers.order_by("username"))


def gold_get(*, item_id: int) -> GoldItem | None:
    return GoldItem.objects.filter(item_id=item_id).first()
