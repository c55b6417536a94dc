"""Hand-written SQL for the statements every triage request runs (next item, quota, the item a
decision locks). The ORM spells them too, but compiling a queryset with three correlated
subqueries costs more Python time than the database takes to answer it, and these run on every
keystroke of every reviewer. Table and column names come from the models, so a rename cannot
leave them behind; ``tests/review`` runs them on SQLite and PostgreSQL.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.db import connection
from django.utils import timezone

from corpus.models import Item, Score
from review.models import Claim, Decision, GoldItem, ReviewerQuota, Skip
from review.services.consensus import ItemFacts


def _t(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _dt(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


@cache
def _next_item_sql(vendor: str, excluded: int) -> str:
    # FOR UPDATE ... SKIP LOCKED spreads concurrent reviewers over different rows; SQLite has
    # no row locks (its write transactions are serialized) and no such clause.
    lock = " FOR UPDATE OF i SKIP LOCKED" if vendor == "postgresql" else ""
    not_tried = f" AND i.id NOT IN ({', '.join(['%s'] * excluded)})" if excluded else ""
    return (
        f"SELECT i.id FROM {_t(Item)} i "
        "WHERE i.dataset_id = %s AND i.state = %s AND i.is_gold = %s"
        f" AND NOT EXISTS (SELECT 1 FROM {_t(Claim)} c"
        "  WHERE c.item_id = i.id AND c.expires_at > %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {_t(Decision)} d"
        "  WHERE d.item_id = i.id AND d.reviewer_id = %s AND d.undone_at IS NULL)"
        f" AND NOT EXISTS (SELECT 1 FROM {_t(Skip)} k"
        "  WHERE k.item_id = i.id AND k.reviewer_id = %s AND k.created_at > %s)"
        f"{not_tried} ORDER BY i.priority DESC, i.id ASC LIMIT 1{lock}"
    )


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
    params = [
        dataset_id,
        Item.State.QUEUED,
        gold,
        _dt(now),
        reviewer_id,
        reviewer_id,
        _dt(skip_cutoff),
        *excluded,
    ]
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
        f" (SELECT COUNT(*) FROM {_t(Decision)} WHERE dataset_id = %s AND reviewer_id = %s"
        "   AND created_at >= %s AND undone_at IS NULL)"
    )


def quota_row(*, dataset_id: int, reviewer_id: int, since: datetime) -> tuple[int | None, int]:
    """(daily limit: the reviewer's own, else the dataset default, else None; live decisions
    since ``since``)."""
    params = [dataset_id, reviewer_id, dataset_id, dataset_id, reviewer_id, _dt(since)]
    with connection.cursor() as cursor:
        cursor.execute(_quota_sql(), params)
        own, default, used = cursor.fetchone()
    return (own if own is not None else default), int(used or 0)


@dataclass(frozen=True, slots=True)
class LockedItem:
    state: str
    facts: ItemFacts
    decided_by: list[int]
    voted: bool  # the reviewer has a live decision on it
    gold: str  # the expected verdict when it is a gold check, else ""
    live_votes: int  # live decisions on it that count toward its outcome (gold answers do not)


@cache
def _lock_item_sql(vendor: str) -> str:
    lock = " FOR UPDATE OF i" if vendor == "postgresql" else ""
    return (
        "SELECT i.state, i.generation, i.origin, s.detector_probability, i.decided_by,"
        f" EXISTS (SELECT 1 FROM {_t(Decision)} d"
        "  WHERE d.item_id = i.id AND d.reviewer_id = %s AND d.undone_at IS NULL),"
        f" (SELECT g.expected FROM {_t(GoldItem)} g WHERE g.item_id = i.id),"
        f" (SELECT COUNT(*) FROM {_t(Decision)} v"
        "  WHERE v.item_id = i.id AND v.undone_at IS NULL AND v.gold_expected = '')"
        f" FROM {_t(Item)} i LEFT JOIN {_t(Score)} s ON s.item_id = i.id"
        f" WHERE i.id = %s AND i.dataset_id = %s{lock}"
    )


def lock_item(*, item_id: int, dataset_id: int, reviewer_id: int) -> LockedItem | None:
    """Lock the item row for the rest of the transaction and read what a decision needs."""
    with connection.cursor() as cursor:
        cursor.execute(_lock_item_sql(connection.vendor), [reviewer_id, item_id, dataset_id])
        row = cursor.fetchone()
    if row is None:
        return None
    state, generation, origin, probability, decided_by, voted, gold, live_votes = row
    if isinstance(decided_by, str | bytes):  # JSON text on SQLite (and psycopg 3 via Django)
        decided_by = json.loads(decided_by)
    return LockedItem(
        state=state,
        facts=ItemFacts(generation=generation, origin=origin, detector_probability=probability),
        decided_by=list(decided_by or []),
        voted=bool(voted),
        gold=gold or "",
        live_votes=int(live_votes),
    )


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
        row = cursor.fetchone()
    if row is None:
        return None
    field = Claim._meta.get_field("claimed_at")
    claimed_at, expires_at = (
        field.to_python(v) if isinstance(v, str) else v
        for v in row  # SQLite returns text
    )
    if timezone.is_naive(claimed_at):
        claimed_at = timezone.make_aware(claimed_at, UTC)
        expires_at = timezone.make_aware(expires_at, UTC)
    return claimed_at, expires_at
