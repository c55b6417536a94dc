"""State changes on items that come from outside the corpus (review decisions, undo).

``review`` decides; these functions write the outcome onto the item so that exports and the feed
read corpus tables only. Each is a conditional UPDATE on the state the action expects, so two
processes racing on one item cannot both win.

The outcome writes take the caller's unit of work (``corpus.services.write_batch``), which holds
the audit chain lock from its first statement: the feed numbers approvals and undos under it (so
feed order is commit order), and an export's snapshot holds it while it fixes which items it
contains, so an undo can never slip in between.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from django.db import connection, transaction
from django.utils import timezone

from corpus.db.arrays import values_source
from corpus.db.batch import Rows, Statement
from corpus.models import Export, ExportItem, ExportStatus, FeedKind, Item
from corpus.services.audit import audit_lock
from corpus.services.feed import feed_append, feed_entries_statement
from corpus.services.write_batch import WriteBatch

DECIDED = (Item.State.APPROVED, Item.State.REJECTED)


class ItemStateError(ValueError):
    """The item is not in a state that allows the change; the message says why."""


def _export_holding(item_id: int) -> int | None:
    """The export (being built, or ready) that includes this item, if any: one probe of the
    export rows' (export, item) key per export of the item's dataset."""
    dataset_id = Item.objects.filter(pk=item_id).values_list("dataset_id", flat=True).first()
    if dataset_id is None:
        return None
    exports = list(
        Export.objects.filter(
            dataset_id=dataset_id, status__in=[ExportStatus.BUILDING, ExportStatus.READY]
        ).values_list("id", flat=True)
    )
    if not exports:
        return None
    return (
        ExportItem.objects.filter(export_id__in=exports, item_id=item_id, included=True)
        .values_list("export_id", flat=True)
        .first()
    )


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """What review decided for one item: ``approved`` or ``rejected``, by these reviewers
    (``reason``: the reject reason key)."""

    item_id: int
    state: str
    reviewer_ids: Sequence[int]
    reason: str = ""


def _outcomes_statement(*, outcomes: Sequence[ItemOutcome], now: object) -> Statement:
    """The conditional UPDATE from ``queued`` of every item at once (each its own values),
    returning the ids of the items it moved (none for an item that was not queued)."""
    ops = connection.ops
    column = {f.name: ops.quote_name(cast(str, f.column)) for f in Item._meta.concrete_fields}
    table = ops.quote_name(Item._meta.db_table)
    rows = [
        (
            o.item_id,
            o.state,
            o.reason if o.state == Item.State.REJECTED else "",
            json.dumps(sorted(set(o.reviewer_ids))),
        )
        for o in outcomes
    ]
    source, params = values_source(rows, ["BIGINT", "TEXT", "TEXT", "JSONB"])
    decided_at = Item._meta.get_field("decided_at").get_db_prep_save(now, connection)
    sql = (
        f"WITH v(id, state, reason, decided_by) AS ({source})"
        f" UPDATE {table} SET {column['state']} = v.state, {column['state_reason']} = v.reason,"
        f" {column['decided_at']} = %s, {column['decided_by']} = v.decided_by,"
        f" {column['updated_at']} = %s"
        f" FROM v WHERE {table}.id = v.id AND {table}.{column['state']} = %s"
        f" RETURNING {table}.id"
    )
    return sql, [*params, decided_at, decided_at, Item.State.QUEUED]


def item_outcome_set(
    wb: WriteBatch,
    *,
    item_id: int,
    state: str,
    reviewer_ids: Sequence[int],
    reason: str = "",
) -> None:
    """``item_outcomes_set`` of one item."""
    item_outcomes_set(
        wb,
        outcomes=[
            ItemOutcome(item_id=item_id, state=state, reviewer_ids=reviewer_ids, reason=reason)
        ],
    )


def item_outcomes_set(wb: WriteBatch, *, outcomes: Sequence[ItemOutcome]) -> None:
    """Move ``queued`` items to ``approved`` or ``rejected`` by their reviewers, in ``wb``
    (with its next round trip on PostgreSQL), one statement for all of them; the approvals
    enter the feed (in item id order) in the same trip, one statement too.

    ``reason`` is the reject reason key (kept in ``Item.state_reason``: the detector retrains on
    items rejected as ``machine_written``). The caller (a review service) audits the decisions
    in ``wb``. An item that is not queued raises ``ItemStateError`` once the UPDATE's rows are
    back, which rolls the unit of work back: nothing it wrote stays.
    """
    if not outcomes:
        return
    for outcome in outcomes:
        if outcome.state not in DECIDED:
            raise ItemStateError(f"'{outcome.state}' is not a review outcome")
    now = timezone.now()

    def applied(rows: Rows) -> None:
        moved = {row[0] for row in rows}
        stuck = next((o.item_id for o in outcomes if o.item_id not in moved), None)
        if stuck is not None:
            current = Item.objects.filter(pk=stuck).values_list("state", flat=True).first()
            raise ItemStateError(f"item {stuck} is {current or 'gone'}, not queued")

    wb.add(_outcomes_statement(outcomes=outcomes, now=now), then=applied)
    approved = [o.item_id for o in outcomes if o.state == Item.State.APPROVED]
    if approved:
        # Appends only for the items the UPDATE above moved (their decided_at is this one).
        wb.add(feed_entries_statement(item_ids=approved, kind=FeedKind.APPROVED, decided_at=now))


def item_outcome_reopen(wb: WriteBatch, *, item_id: int) -> Item:
    """Return a decided item to ``queued`` (an undo), in ``wb``.

    Refused once the item is part of an export being built or ready: a snapshot never changes,
    so from then on the only way back is a retraction (``corpus.services.retractions``).
    """
    exported = _export_holding(item_id)
    if exported is not None:
        raise ItemStateError(
            f"item {item_id} is part of export {exported} and can no longer be undone; "
            "an admin can retract it instead"
        )
    previous = Item.objects.filter(pk=item_id).values_list("state", flat=True).first()
    now = timezone.now()
    updated = Item.objects.filter(pk=item_id, state__in=DECIDED).update(
        state=Item.State.QUEUED, state_reason="", decided_at=None, decided_by=[], updated_at=now
    )
    if not updated:
        current = Item.objects.filter(pk=item_id).values_list("state", flat=True).first()
        raise ItemStateError(f"item {item_id} is {current or 'gone'}, not decided")
    item = Item.objects.get(pk=item_id)
    if previous == Item.State.APPROVED:
        # Consumers that synced the approval from the feed learn that it was undone.
        feed_append(
            dataset_id=item.dataset_id,
            item_ids=[item.pk],
            kind=FeedKind.REOPENED,
            audit_locked=True,
        )
    return item


@transaction.atomic
def item_gold_set(*, item_id: int, is_gold: bool) -> Item:
    """Mark an item as a gold item (or not). Gold items never leave: exports leave them out and
    the feed passes over them. Refused for an item already part of an export being built or
    ready, which would contradict that. The caller (review) appends the audit event in the same
    transaction.
    """
    audit_lock()
    if is_gold:
        exported = _export_holding(item_id)
        if exported is not None:
            raise ItemStateError(
                f"item {item_id} is part of export {exported}; it cannot become a gold item"
            )
    updated = Item.objects.filter(pk=item_id).update(is_gold=is_gold, updated_at=timezone.now())
    if not updated:
        raise ItemStateError(f"item {item_id} is gone")
    return Item.objects.get(pk=item_id)
