"""Hand-written SQL for the statements every triage request runs (next item, quota, the item a
decision locks). The ORM spells them too, but compiling a queryset with three correlated
subqueries costs more Python time than the database takes to answer it, and these run on every
keystroke of every reviewer. Table and column names come from the models, so a rename cannot
leave them behind; ``tests/review`` runs them on SQLite and PostgreSQL.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from corpus.db.arrays import typed_param, values_source
from corpus.db.batch import (
    Rows,
    Statement,
    StatementBatch,
    for_update,
    id_array,
    id_list,
    ids_param,
    in_ids,
)
from corpus.db.rows import field_value, model_from_row, select_columns, width
from corpus.models import Dataset, Item, ItemParent, Score, Source
from review.models import (
    Claim,
    Decision,
    GoldItem,
    ReviewerDay,
    ReviewerQuota,
    ReviewPolicy,
    Skip,
)
from review.services.consensus import ItemFacts


def _t(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _dt(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


@cache
def _next_item_sql(vendor: str, excluded: int) -> str:
    # FOR UPDATE ... SKIP LOCKED spreads concurrent reviewers over different rows.
    lock = for_update(of="i", skip_locked=True)
    not_tried = f" AND i.id NOT IN ({', '.join(['%s'] * excluded)})" if excluded else ""
    # The reviewer's own decisions and skips are probed per candidate, by item, whatever the
    # statistics say: with statistics taken before a reviewer's history (no autovacuum, or
    # between two ANALYZEs) PostgreSQL planned an anti-join that read all their decisions once
    # per candidate, and under consensus the items they decided stay at the head of the queue:
    # 42 s for one claim at 36,000 decisions (45 ms with the probe). "OFFSET 0" keeps each
    # NOT EXISTS a subplan (not pulled up into a join); "reviewer_id + 0" keeps the reviewer's
    # indexes out of it (tests/review/test_claims.py, the plan test).
    fence = " OFFSET 0" if vendor == "postgresql" else ""
    return (
        f"SELECT i.id FROM {_t(Item)} i "
        "WHERE i.dataset_id = %s AND i.state = %s AND i.is_gold = %s"
        f" AND NOT EXISTS (SELECT 1 FROM {_t(Claim)} c"
        "  WHERE c.item_id = i.id AND c.expires_at > %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {_t(Decision)} d"
        f"  WHERE d.item_id = i.id AND d.reviewer_id + 0 = %s AND d.undone_at IS NULL{fence})"
        f" AND NOT EXISTS (SELECT 1 FROM {_t(Skip)} k"
        f"  WHERE k.item_id = i.id AND k.reviewer_id + 0 = %s AND k.created_at > %s{fence})"
        f"{not_tried} ORDER BY i.priority DESC, i.id ASC LIMIT 1{lock}"
    )


def _next_item_params(
    dataset_id: int,
    reviewer_id: int,
    gold: bool,
    now: datetime,
    skip_cutoff: datetime,
    excluded: list[int],
) -> list[Any]:
    return [
        dataset_id,
        Item.State.QUEUED,
        gold,
        _dt(now),
        reviewer_id,
        reviewer_id,
        _dt(skip_cutoff),
        *excluded,
    ]


@cache
def _stale_sql() -> str:
    return f"SELECT EXISTS (SELECT 1 FROM {_t(Claim)} WHERE dataset_id = %s AND expires_at <= %s)"


@cache
def _lease_next_sql(vendor: str) -> str:
    # The queue read of next_item_id as the source of the lease's INSERT: the row it locks
    # (SKIP LOCKED) is the one leased, in the same statement. "WHERE true": SQLite would read
    # the ON of ON CONFLICT as a join's.
    return (
        f"INSERT INTO {_t(Claim)} (item_id, dataset_id, reviewer_id, claimed_at, expires_at)"
        f" SELECT q.id, %s, %s, %s, %s FROM ({_next_item_sql(vendor, 0)}) q WHERE true"
        " ON CONFLICT DO NOTHING RETURNING item_id"
    )


@dataclass(frozen=True, slots=True)
class LeaseReads:
    stale: bool  # the dataset has leases that ran out
    leased: int | None  # the item leased to the reviewer by this statement
    item: tuple[Item, list[int]] | None  # the item the reviewer holds now, as item_for_review


def stale_and_lease_next(
    wb: StatementBatch,
    *,
    dataset_id: int,
    reviewer_id: int,
    gold: bool,
    now: datetime,
    skip_cutoff: datetime,
    expires_at: datetime,
) -> LeaseReads:
    """Whether the dataset has leases that ran out (to end before leasing), and the item just
    leased to the reviewer: the first of the queue (as ``next_item_id``), picked and leased by
    one INSERT ... SELECT, then read as ``item_for_review`` reads it, for the page that shows
    it; with the writes ``wb`` holds, in one round trip where the database allows. None for the
    item when nothing was leased: the queue is empty or the insert met another lease (a run-out
    one not ended yet, the reviewer's other tab); the caller's steps then tell which."""
    stale, leased, held = wb.send(
        (_stale_sql(), [dataset_id, _dt(now)]),
        (
            _lease_next_sql(connection.vendor),
            [dataset_id, reviewer_id, _dt(now), _dt(expires_at)]
            + _next_item_params(dataset_id, reviewer_id, gold, now, skip_cutoff, []),
        ),
        (_item_sql(connection.vendor, by_claim=True), [dataset_id, reviewer_id, dataset_id]),
    )
    return LeaseReads(
        stale=bool(stale[0][0]),
        leased=leased[0][0] if leased else None,
        item=_item_of(held[0] if held else None),
    )


# Each column of Decision as one typed array (PostgreSQL) or VALUES column (SQLite).
_ARRAY_TYPES = {
    "ForeignKey": "BIGINT",
    "CharField": "TEXT",
    "TextField": "TEXT",
    "FloatField": "DOUBLE PRECISION",
    "DateTimeField": "TIMESTAMPTZ",
}


def _decision_fields() -> list[Any]:
    return [f for f in Decision._meta.concrete_fields if not f.primary_key]


def decisions_insert(decisions: Sequence[Decision]) -> Statement:
    """The INSERT of unsaved decisions, one statement however many, as a statement for a
    batch; its rows are ``(id, item_id)`` of each stored decision, in no particular order.
    A value all the decisions share (a bulk decision's reviewer, verdict, time...) is one
    parameter; the others are one array each (``values_source``)."""
    shared: dict[int, Any] = {}
    varying: list[tuple[int, list[Any]]] = []
    fields = _decision_fields()
    for n, f in enumerate(fields):
        values = [getattr(d, f.attname) for d in decisions]
        if all(v == values[0] for v in values):
            shared[n] = f.get_db_prep_save(values[0], connection)
        else:
            varying.append((n, [f.get_db_prep_save(v, connection) for v in values]))
    types = [_ARRAY_TYPES[f.get_internal_type()] for f in fields]
    names = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    selected = [typed_param(types[n]) if n in shared else f"v.c{n}" for n in range(len(fields))]
    params = [shared[n] for n in range(len(fields)) if n in shared]
    sql = f"INSERT INTO {_t(Decision)} ({names}) SELECT {', '.join(selected)}"
    if varying:
        rows = list(zip(*(column for _, column in varying), strict=True))
        source, source_params = values_source(rows, [types[n] for n, _ in varying])
        sql = f"WITH v({', '.join(f'c{n}' for n, _ in varying)}) AS ({source}) {sql} FROM v"
        params = source_params + params
    return f"{sql} RETURNING id, item_id", params


def decisions_of(rows: Rows) -> list[Decision]:
    """The decisions of ``live_decisions``'s rows, as the ORM would have loaded them."""
    return [model_from_row(Decision, row) for row in rows]


@cache
def _live_decisions_sql(vendor: str) -> str:
    # Gold answers measure reviewers, not the item: they never count toward its outcome.
    return (
        f"SELECT {select_columns(Decision)} FROM {_t(Decision)}"
        f" WHERE {in_ids('item_id')} AND undone_at IS NULL AND gold_expected = ''"
    )


def live_decisions(wb: StatementBatch, *, item_ids: Sequence[int]) -> dict[int, list[Decision]]:
    """The live decisions that count toward each item's outcome, after ``wb``'s pending writes
    (a decision just added among them), in one round trip where the database allows."""
    [rows] = wb.send((_live_decisions_sql(connection.vendor), [ids_param(item_ids)]))
    live: dict[int, list[Decision]] = {}
    for decision in decisions_of(rows):
        live.setdefault(decision.item_id, []).append(decision)
    return live


def next_item_id(
    *,
    dataset_id: int,
    reviewer_id: int,
    gold: bool,
    now: datetime,
    skip_cutoff: datetime,
    excluded: list[int],
) -> int | None:
    """The first queued item in review order that nobody holds, this reviewer has not decided
    and has not skipped since ``skip_cutoff``; its row stays locked (PostgreSQL) until commit."""
    params = _next_item_params(dataset_id, reviewer_id, gold, now, skip_cutoff, excluded)
    with connection.cursor() as cursor:
        cursor.execute(_next_item_sql(connection.vendor, len(excluded)), params)
        row = cursor.fetchone()
    return row[0] if row else None


@cache
def _quota_sql() -> str:
    quota = _t(ReviewerQuota)
    return (
        f"SELECT (SELECT daily_limit FROM {quota} WHERE dataset_id = %s AND reviewer_id = %s),"
        f" (SELECT daily_limit FROM {quota} WHERE dataset_id = %s AND reviewer_id IS NULL),"
        f" (SELECT decided FROM {_t(ReviewerDay)} WHERE reviewer_id = %s AND dataset_id = %s"
        "   AND day = %s)"
    )


def _day(since: datetime) -> Any:
    """The day that starts at ``since`` (a midnight in the site's time zone), as stored."""
    return connection.ops.adapt_datefield_value(timezone.localtime(since).date())


def _quota_params(dataset_id: int, reviewer_id: int, since: datetime) -> list[Any]:
    return [dataset_id, reviewer_id, dataset_id, reviewer_id, dataset_id, _day(since)]


@cache
def _day_count_sql() -> str:
    table = _t(ReviewerDay)
    return (
        f"INSERT INTO {table} (dataset_id, reviewer_id, day, decided) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (reviewer_id, dataset_id, day)"
        f" DO UPDATE SET decided = {table}.decided + excluded.decided RETURNING decided"
    )


def day_count(*, dataset_id: int, reviewer_id: int, since: datetime, change: int) -> Statement:
    """The statement that adds ``change`` to the reviewer's live decisions of the day starting
    at ``since`` (``day_start``); its row is the new count."""
    return _day_count_sql(), [dataset_id, reviewer_id, _day(since), change]


def _quota_of(row: tuple[Any, ...]) -> tuple[int | None, int]:
    own, default, used = row
    return (own if own is not None else default), int(used or 0)


def quota_row(*, dataset_id: int, reviewer_id: int, since: datetime) -> tuple[int | None, int]:
    """(daily limit: the reviewer's own, else the dataset default, else None; live decisions
    since ``since``)."""
    with connection.cursor() as cursor:
        cursor.execute(_quota_sql(), _quota_params(dataset_id, reviewer_id, since))
        return _quota_of(cursor.fetchone())


@dataclass(frozen=True, slots=True)
class LockedItem:
    state: str
    facts: ItemFacts
    decided_by: list[int]
    voted: bool  # the reviewer has a live decision on it
    gold: str  # the expected verdict when it is a gold check, else ""
    live_votes: int  # live decisions on it that count toward its outcome (gold answers do not)


def _locked_columns() -> str:
    """What a decision reads of the item it locks (``LockedItem``); one parameter, the
    reviewer."""
    # "voted" counts rather than asks EXISTS: over a selection of 500 rows PostgreSQL would
    # plan an EXISTS as one hashed scan of every live decision of the reviewer (growing with
    # their history) instead of a probe of the (item, reviewer) index per row.
    # "reviewer_id + 0" keeps the reviewer's indexes out of the plan: with statistics taken
    # before the reviewer's latest decisions (a filter-wide job deciding 20,000 items as one
    # admin), PostgreSQL estimated one decision for them and read all of them once per item,
    # 40,000 rows x 500 items, 4.5 s per chunk. An item has a handful of decisions at most.
    return (
        "i.state, i.generation, i.origin, s.detector_probability, i.decided_by,"
        f" (SELECT COUNT(*) FROM {_t(Decision)} d"
        "  WHERE d.item_id = i.id AND d.reviewer_id + 0 = %s AND d.undone_at IS NULL),"
        f" (SELECT g.expected FROM {_t(GoldItem)} g WHERE g.item_id = i.id),"
        f" (SELECT COUNT(*) FROM {_t(Decision)} v"
        "  WHERE v.item_id = i.id AND v.undone_at IS NULL AND v.gold_expected = '')"
    )


@cache
def _lock_item_sql(vendor: str) -> str:
    lock = for_update(of="i")
    return (
        f"SELECT {_locked_columns()}"
        f" FROM {_t(Item)} i LEFT JOIN {_t(Score)} s ON s.item_id = i.id"
        f" WHERE i.id = %s AND i.dataset_id = %s{lock}"
    )


def lock_item(
    wb: StatementBatch, *, item_id: int, dataset_id: int, reviewer_id: int
) -> LockedItem | None:
    """Lock the item row for the rest of the transaction and read what a decision needs (with
    ``wb``'s pending writes, in one round trip where the database allows)."""
    [row] = wb.send((_lock_item_sql(connection.vendor), [reviewer_id, item_id, dataset_id]))
    return _locked_item_of(row[0] if row else None)


def _locked_item_of(row: tuple[Any, ...] | None) -> LockedItem | None:
    if row is None:
        return None
    state, generation, origin, probability, decided_by, voted, gold, live_votes = row
    decided_by = field_value(Item, "decided_by", decided_by)
    return LockedItem(
        state=state,
        facts=ItemFacts(generation=generation, origin=origin, detector_probability=probability),
        decided_by=list(decided_by or []),
        voted=bool(voted),
        gold=gold or "",
        live_votes=int(live_votes),
    )


@cache
def _lock_items_sql(vendor: str) -> str:
    # SKIP LOCKED: a row another transaction holds is left out, never waited for (and so two
    # bulk decisions cannot deadlock over the order they lock rows in).
    lock = for_update(of="i", skip_locked=True)
    return (
        f"SELECT i.id, {_locked_columns()},"
        f" EXISTS (SELECT 1 FROM {_t(Claim)} c"
        "  WHERE c.item_id = i.id AND c.expires_at > %s AND c.reviewer_id <> %s)"
        f" FROM {_t(Item)} i LEFT JOIN {_t(Score)} s ON s.item_id = i.id"
        f" WHERE {in_ids('i.id')} AND i.dataset_id = %s{lock}"
    )


@cache
def _found_items_sql(vendor: str) -> str:
    return (
        f"SELECT i.id, EXISTS (SELECT 1 FROM {_t(GoldItem)} g WHERE g.item_id = i.id)"
        f" FROM {_t(Item)} i WHERE {in_ids('i.id')} AND i.dataset_id = %s"
    )


@dataclass(frozen=True, slots=True)
class BulkReads:
    limit: int | None  # the reviewer's daily limit
    used: int  # their live decisions today
    found: dict[int, bool]  # the items in the dataset: whether each is a gold check
    locked: dict[int, tuple[LockedItem, bool]]  # locked by this call: as ``lock_item``, and
    # whether another reviewer holds a live lease on it


def bulk_reads(
    wb: StatementBatch,
    *,
    item_ids: Sequence[int],
    dataset_id: int,
    reviewer_id: int,
    now: datetime,
    since: datetime,
) -> BulkReads:
    """What a bulk decision reads before it writes, with what ``wb`` holds (its audit chain
    lock first), in one round trip where the database allows: the quota (``quota_row``), then
    every item's row lock and what ``lock_item`` reads of it, skipping rows another
    transaction has locked, then which of the items the dataset has (those locked elsewhere
    included)."""
    ids = ids_param(item_ids)
    quota, locked, found = wb.send(
        (_quota_sql(), _quota_params(dataset_id, reviewer_id, since)),
        (
            _lock_items_sql(connection.vendor),
            [reviewer_id, _dt(now), reviewer_id, ids, dataset_id],
        ),
        (_found_items_sql(connection.vendor), [ids, dataset_id]),
    )
    limit, used = _quota_of(quota[0])
    items = {}
    for row in locked:
        item = _locked_item_of(row[1:-1])
        assert item is not None
        items[row[0]] = (item, bool(row[-1]))
    return BulkReads(
        limit=limit,
        used=used,
        found={item_id: bool(gold) for item_id, gold in found},
        locked=items,
    )


@cache
def _claims_end_sql(vendor: str) -> str:
    return (
        f"DELETE FROM {_t(Claim)} WHERE dataset_id = %s AND reviewer_id = %s"
        f" AND {in_ids('item_id')} RETURNING item_id"
    )


def claims_end(*, dataset_id: int, reviewer_id: int, item_ids: Sequence[int]) -> Statement:
    """The statement that ends the reviewer's leases (live or run out) on these items."""
    return _claims_end_sql(connection.vendor), [dataset_id, reviewer_id, ids_param(item_ids)]


@cache
def _take_claim_sql() -> str:
    return (
        f"DELETE FROM {_t(Claim)} WHERE item_id = %s AND dataset_id = %s AND reviewer_id = %s"
        " AND expires_at > %s RETURNING claimed_at, expires_at"
    )


def take_claim(
    *, item_id: int, dataset_id: int, reviewer_id: int, now: datetime
) -> tuple[datetime, datetime] | None:
    """End the reviewer's live lease on the item in one statement; (claimed_at, expires_at),
    or None when there was no live lease to end. The check and the delete cannot be split by a
    concurrent request: the row is gone for whoever comes second."""
    with connection.cursor() as cursor:
        cursor.execute(_take_claim_sql(), [item_id, dataset_id, reviewer_id, _dt(now)])
        return _taken_of(cursor.fetchone())


def _taken_of(row: tuple[Any, ...] | None) -> tuple[datetime, datetime] | None:
    if row is None:
        return None
    claimed_at, expires_at = row
    return (
        field_value(Claim, "claimed_at", claimed_at),
        field_value(Claim, "expires_at", expires_at),
    )


@cache
def _dataset_sql() -> str:
    d_cols = select_columns(Dataset, "d")
    p_cols = select_columns(ReviewPolicy, "p")
    q = connection.ops.quote_name
    # The two many-to-many tables and their columns, from the fields (a custom user model
    # names its own).
    reviewers: Any = Dataset._meta.get_field("reviewers")
    r_dataset, r_user = q(reviewers.m2m_column_name()), q(reviewers.m2m_reverse_name())
    groups: Any = get_user_model()._meta.get_field("groups")
    g_user, g_group = q(groups.m2m_column_name()), q(groups.m2m_reverse_name())
    in_group = (
        f"EXISTS (SELECT 1 FROM {_t(groups.remote_field.through)} ug"
        f" JOIN {_t(groups.related_model)} g ON g.id = ug.{g_group}"
        f" WHERE ug.{g_user} = %s AND g.name = %s)"
    )
    return (
        f"SELECT {d_cols}, {p_cols},"
        f" EXISTS (SELECT 1 FROM {_t(reviewers.remote_field.through)} r"
        f" WHERE r.{r_dataset} = d.id AND r.{r_user} = %s),"
        f" {in_group}, {in_group}"
        f" FROM {_t(Dataset)} d LEFT JOIN {_t(ReviewPolicy)} p ON p.dataset_id = d.id"
        " WHERE d.slug = %s"
    )


@dataclass(frozen=True, slots=True)
class DatasetForUser:
    dataset: Dataset
    policy: ReviewPolicy | None  # None: never saved, the defaults apply
    listed: bool  # the user is one of its reviewers
    groups: frozenset[str]  # which of the asked-for groups the user is in


def dataset_for_user(*, slug: str, user_id: int, groups: tuple[str, str]) -> DatasetForUser | None:
    """The dataset by slug with its review policy, whether the user reviews it and which of two
    groups they are in: what every review request checks first, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_dataset_sql(), [user_id, user_id, groups[0], user_id, groups[1], slug])
        row = cursor.fetchone()
    if row is None:
        return None
    n_dataset = len(Dataset._meta.concrete_fields)
    n_policy = len(ReviewPolicy._meta.concrete_fields)
    dataset = model_from_row(Dataset, row[:n_dataset])
    policy_values = row[n_dataset : n_dataset + n_policy]
    policy = None
    if policy_values[0] is not None:  # the policy's key: NULL when the LEFT JOIN found none
        policy = model_from_row(ReviewPolicy, policy_values)
        ReviewPolicy.dataset.field.set_cached_value(policy, dataset)
    listed, first, second = row[n_dataset + n_policy :]
    return DatasetForUser(
        dataset=dataset,
        policy=policy,
        listed=bool(listed),
        groups=frozenset(g for g, inside in zip(groups, (first, second), strict=True) if inside),
    )


# What the item view never shows: the MinHash signature, the near duplicate's metadata.
_SCORE_UNSHOWN = ("minhash",)
_NEAR_UNSHOWN = ("metadata",)


@cache
def _item_sql(vendor: str, by_claim: bool = False) -> str:
    """The item by id and dataset; ``by_claim``: the item a reviewer holds in the dataset (the
    lease statement just inserted it, in the same round trip)."""
    parents = (
        f"SELECT p.parent_id FROM {_t(ItemParent)} p WHERE p.child_id = i.id ORDER BY p.parent_id"
    )
    parent_ids = id_array(parents, "parent_id")
    return (
        f"SELECT {select_columns(Item, 'i')}, {select_columns(Source, 'src')},"
        f" {select_columns(Score, 's', _SCORE_UNSHOWN)},"
        f" {select_columns(Item, 'n', _NEAR_UNSHOWN)}, {parent_ids}"
        f" FROM {_t(Item)} i JOIN {_t(Source)} src ON src.id = i.source_id"
        f" LEFT JOIN {_t(Score)} s ON s.item_id = i.id"
        f" LEFT JOIN {_t(Item)} n ON n.id = s.near_duplicate_of_id"
        + (
            f" WHERE i.id = (SELECT c.item_id FROM {_t(Claim)} c"
            "  WHERE c.dataset_id = %s AND c.reviewer_id = %s) AND i.dataset_id = %s"
            if by_claim
            else " WHERE i.id = %s AND i.dataset_id = %s"
        )
    )


def item_for_review(*, item_id: int, dataset_id: int) -> tuple[Item, list[int]] | None:
    """The item with its source, score and nearest near duplicate attached (as
    ``select_related`` would), and its parent ids in order: one statement, no queryset to
    compile on every triage keystroke."""
    with connection.cursor() as cursor:
        cursor.execute(_item_sql(connection.vendor), [item_id, dataset_id])
        return _item_of(cursor.fetchone())


def _item_of(row: tuple[Any, ...] | None) -> tuple[Item, list[int]] | None:
    if row is None:
        return None
    widths = [width(Item), width(Source), width(Score, _SCORE_UNSHOWN)]
    a, b, c = widths[0], widths[0] + widths[1], sum(widths)
    item = model_from_row(Item, row[:a])
    Item.source.field.set_cached_value(item, model_from_row(Source, row[a:b]))
    score = None
    if row[b] is not None:  # the score's key (its item): NULL when the item has no score
        score = model_from_row(Score, row[b:c], _SCORE_UNSHOWN)
        Score.item.field.set_cached_value(score, item)
        near = None
        if row[c] is not None:
            near = model_from_row(Item, row[c:-1], _NEAR_UNSHOWN)
        Score.near_duplicate_of.field.set_cached_value(score, near)
    Item.score.related.set_cached_value(item, score)
    return item, id_list(row[-1])


@dataclass(frozen=True, slots=True)
class DecisionReads:
    limit: int | None  # the reviewer's daily limit
    used: int  # their live decisions today
    taken: tuple[datetime, datetime] | None  # the lease the decision ended, as ``take_claim``
    item: LockedItem | None  # the item, locked, as ``lock_item``


def decision_reads(
    wb: StatementBatch,
    *,
    item_id: int,
    dataset_id: int,
    reviewer_id: int,
    now: datetime,
    since: datetime,
) -> DecisionReads:
    """What a triage decision reads before it writes, with what ``wb`` holds (its audit chain
    lock first), in one round trip where the database allows: the quota (``quota_row``), the
    end of the reviewer's lease (``take_claim``), then the item's row lock (``lock_item``).
    The caller refuses (rolling all back) if the lease was not there."""
    quota, taken, item = wb.send(
        (_quota_sql(), _quota_params(dataset_id, reviewer_id, since)),
        (_take_claim_sql(), [item_id, dataset_id, reviewer_id, _dt(now)]),
        (_lock_item_sql(connection.vendor), [reviewer_id, item_id, dataset_id]),
    )
    limit, used = _quota_of(quota[0])
    return DecisionReads(
        limit=limit,
        used=used,
        taken=_taken_of(taken[0] if taken else None),
        item=_locked_item_of(item[0] if item else None),
    )
