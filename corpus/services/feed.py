"""The feed: approvals, undos and retractions of a dataset in commit order.

Why not order by item id or by a database sequence: ids and sequence values are handed out when
a transaction asks for them, not when it commits, so a reader paging by them can pass over a
value whose transaction commits later, and never see it. ``FeedEntry.seq`` is instead taken as
(largest seq) + 1 while holding the audit chain head lock (``audit_lock()``), which every state
change holds until it commits. Two writers therefore get their seqs in the order they commit,
and a reader that sees entry n can already see every entry below n: a cursor "after n" never
skips an entry and never repeats one, however many approvals keep arriving.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Max
from django.utils import timezone

from corpus.db.batch import Statement, ids_param, in_ids
from corpus.models import Dataset, FeedEntry, FeedKind, Item, Retraction
from corpus.services.audit import audit_lock
from corpus.services.exports.rows import rows_for_items


def feed_append(
    *, dataset_id: int, item_ids: Iterable[int], kind: str, audit_locked: bool = False
) -> int:
    """Append one entry per item, in the caller's transaction. Returns the last seq.

    Takes the audit chain lock, unless the caller says it holds it already (``audit_locked``:
    a service that took ``audit_lock()`` earlier in this transaction, as lock order requires
    of every caller that also locks item rows). One entry, the common case of a review
    decision, is one statement: the next seq is read and used by the INSERT itself.
    """
    if kind not in FeedKind.values:
        raise ValueError(f"unknown feed kind {kind!r}")
    if not audit_locked:
        audit_lock()
    ids = list(item_ids)
    if len(ids) == 1:
        return _append_one(dataset_id=dataset_id, item_id=ids[0], kind=kind)
    seq = FeedEntry.objects.aggregate(last=Max("seq"))["last"] or 0
    entries = []
    for item_id in ids:
        seq += 1
        entries.append(FeedEntry(seq=seq, dataset_id=dataset_id, item_id=item_id, kind=kind))
    FeedEntry.objects.bulk_create(entries, batch_size=1000)
    return seq


def _append_one(*, dataset_id: int, item_id: int, kind: str) -> int:
    ops = connection.ops
    table = ops.quote_name(FeedEntry._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (seq, dataset_id, item_id, kind, created_at)"
            f" SELECT COALESCE(MAX(seq), 0) + 1, %s, %s, %s, %s FROM {table} RETURNING seq",
            [dataset_id, item_id, kind, ops.adapt_datetimefield_value(timezone.now())],
        )
        return int(cursor.fetchone()[0])


def feed_entry_statement(*, item_id: int, kind: str, decided_at: datetime) -> Statement:
    """One entry of ``kind`` for the item (``feed_entries_statement`` of one item)."""
    return feed_entries_statement(item_ids=[item_id], kind=kind, decided_at=decided_at)


def feed_entries_statement(
    *, item_ids: Iterable[int], kind: str, decided_at: datetime
) -> Statement:
    """One entry of ``kind`` per item, in item id order, as a statement for the caller's batch,
    each appended only if the item was decided at ``decided_at`` (by the outcome write just
    before it, under the same row lock); its rows are the new seqs. The caller holds the audit
    chain lock (feed seqs are taken under it)."""
    if kind not in FeedKind.values:
        raise ValueError(f"unknown feed kind {kind!r}")
    ops = connection.ops
    table = ops.quote_name(FeedEntry._meta.db_table)
    items = ops.quote_name(Item._meta.db_table)
    at = ops.adapt_datetimefield_value(decided_at)
    # The largest seq is read once, before the statement's own rows (an uncorrelated subquery).
    return (
        f"INSERT INTO {table} (seq, dataset_id, item_id, kind, created_at)"
        f" SELECT (SELECT COALESCE(MAX(seq), 0) FROM {table})"
        " + ROW_NUMBER() OVER (ORDER BY i.id), i.dataset_id, i.id, %s, %s"
        f" FROM {items} i WHERE {in_ids('i.id')} AND i.decided_at = %s RETURNING seq",
        [kind, at, ids_param(item_ids), at],
    )


def feed_head() -> int:
    """The newest seq (0 for an empty feed). Read it under ``audit_lock()`` for a snapshot."""
    return FeedEntry.objects.aggregate(last=Max("seq"))["last"] or 0


@dataclass(frozen=True)
class FeedPage:
    entries: list[dict[str, Any]]
    last_seq: int


def feed_list(*, dataset: Dataset, after_seq: int, limit: int) -> FeedPage:
    """Entries after ``after_seq`` in seq order. Approved entries carry the item as an export
    row; reopened and retracted ones name the item (and the retraction's reason). Gold items
    never appear: their entries are passed over, the cursor still moves past them."""
    raw = list(
        FeedEntry.objects.filter(dataset=dataset, seq__gt=after_seq)
        .order_by("seq")
        .values_list("seq", "kind", "item_id", "created_at", "item__is_gold")[:limit]
    )
    if not raw:
        return FeedPage(entries=[], last_seq=after_seq)
    visible = [r for r in raw if not r[4]]
    approved_ids = {item_id for _, kind, item_id, _, _ in visible if kind == FeedKind.APPROVED}
    rows = {row["id"]: row for row in rows_for_items(sorted(approved_ids))}
    retracted = {r[2] for r in visible if r[1] == FeedKind.RETRACTED}
    reasons = dict(
        Retraction.objects.filter(item_id__in=retracted).values_list("item_id", "reason")
    )
    entries: list[dict[str, Any]] = []
    for seq, kind, item_id, created_at, _ in visible:
        entry: dict[str, Any] = {"seq": seq, "kind": kind, "at": created_at, "item_id": item_id}
        if kind == FeedKind.APPROVED:
            entry["item"] = rows.get(item_id)
        elif kind == FeedKind.RETRACTED:
            entry["reason"] = reasons.get(item_id, "")
        entries.append(entry)
    return FeedPage(entries=entries, last_seq=raw[-1][0])
