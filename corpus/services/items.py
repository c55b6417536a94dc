"""State changes on items that come from outside the corpus (review decisions, undo).

``review`` decides; these functions write the outcome onto the item so that exports and the feed
read corpus tables only. Each is a conditional UPDATE on the state the action expects, so two
processes racing on one item cannot both win.

Each takes the audit chain lock (``audit_lock()``) before touching the item: the feed numbers
approvals and undos under it (so feed order is commit order), and an export's snapshot holds it
while it fixes which items it contains, so an undo can never slip in between. Callers that lock
item rows themselves should take ``audit_lock()`` first, to keep one lock order everywhere; a
caller that did says so (``audit_locked=True``) and the lock is not asked for a second time.
"""

from collections.abc import Sequence
from typing import Any, cast

from django.db import connection, transaction
from django.utils import timezone

from corpus.models import Export, ExportItem, ExportStatus, FeedKind, Item
from corpus.services.audit import audit_lock
from corpus.services.feed import feed_append, feed_append_returning

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


def _outcome_sql(
    *, item_id: int, state: str, reviewer_ids: Sequence[int], reason: str, feed: bool = False
) -> tuple[str, list[Any]]:
    """The conditional UPDATE from ``queued``, returning the updated row (none when the item
    was not queued). ``feed``: the same statement appends the item's ``approved`` feed entry
    when it updated the row (PostgreSQL)."""
    now = timezone.now()
    ops = connection.ops
    fields = {f.name: f for f in Item._meta.concrete_fields}
    table = ops.quote_name(Item._meta.db_table)
    columns = ("state", "state_reason", "decided_at", "decided_by", "updated_at")
    values = (
        state,
        reason if state == Item.State.REJECTED else "",
        now,
        sorted(set(reviewer_ids)),
        now,
    )
    assignments = ", ".join(f"{ops.quote_name(cast(str, fields[c].column))} = %s" for c in columns)
    params = [
        fields[c].get_db_prep_save(v, connection) for c, v in zip(columns, values, strict=True)
    ]
    sql = f"UPDATE {table} SET {assignments} WHERE id = %s AND state = %s RETURNING *"
    params = [*params, item_id, Item.State.QUEUED]
    if feed:
        sql, params = feed_append_returning(sql, params, kind=FeedKind.APPROVED, now=now)
    return sql, params


def _outcome_update(
    *, item_id: int, state: str, reviewer_ids: Sequence[int], reason: str, feed: bool = False
) -> Item | None:
    """``_outcome_sql`` run, its row as an Item (one statement; None when not queued)."""
    sql, params = _outcome_sql(
        item_id=item_id, state=state, reviewer_ids=reviewer_ids, reason=reason, feed=feed
    )
    rows = list(Item.objects.raw(sql, params))
    return rows[0] if rows else None


def item_outcome_set(
    *,
    item_id: int,
    state: str,
    reviewer_ids: Sequence[int],
    reason: str = "",
    audit_locked: bool = False,
) -> Item:
    """Move a ``queued`` item to ``approved`` or ``rejected`` by these reviewers.

    ``reason`` is the reject reason key (kept in ``Item.state_reason``: the detector retrains on
    items rejected as ``machine_written``). The caller (a review service) appends the audit event
    for the decision in the same transaction. ``audit_locked``: the caller holds the audit chain
    lock in its open transaction already (review services take it first), so it is not asked
    for again. No savepoint: an error inside leaves the caller's transaction to roll back, and a
    refusal (not queued) is raised after the block, having changed nothing.
    """
    if state not in DECIDED:
        raise ItemStateError(f"'{state}' is not a review outcome")
    with transaction.atomic(savepoint=False):
        if not audit_locked:
            audit_lock()
        # An approval enters the feed. On PostgreSQL the entry is appended by the UPDATE's
        # own statement (one round trip); elsewhere it is a second statement.
        one_statement = state == Item.State.APPROVED and connection.vendor == "postgresql"
        item = _outcome_update(
            item_id=item_id,
            state=state,
            reviewer_ids=reviewer_ids,
            reason=reason,
            feed=one_statement,
        )
        if item is not None and state == Item.State.APPROVED and not one_statement:
            feed_append(
                dataset_id=item.dataset_id,
                item_ids=[item.pk],
                kind=FeedKind.APPROVED,
                audit_locked=True,
            )
    if item is None:
        current = Item.objects.filter(pk=item_id).values_list("state", flat=True).first()
        raise ItemStateError(f"item {item_id} is {current or 'gone'}, not queued")
    return item


def item_outcome_statement(
    *, item_id: int, state: str, reviewer_ids: Sequence[int], reason: str = ""
) -> tuple[str, list[Any]]:
    """``item_outcome_set`` as one statement for the caller to send with its own (PostgreSQL:
    review sends it in the round trip that leases the next item), an approval's feed entry
    included. The caller holds the audit chain lock and the item's row lock in its open
    transaction, and passes the rows the statement returned to ``item_outcome_applied``."""
    if state not in DECIDED:
        raise ItemStateError(f"'{state}' is not a review outcome")
    if connection.vendor != "postgresql":
        raise RuntimeError("item_outcome_statement() is for PostgreSQL; use item_outcome_set()")
    return _outcome_sql(
        item_id=item_id,
        state=state,
        reviewer_ids=reviewer_ids,
        reason=reason,
        feed=state == Item.State.APPROVED,
    )


def item_outcome_applied(*, item_id: int, rows: Sequence[Any]) -> None:
    """Refuse (as ``item_outcome_set`` does) when the statement of ``item_outcome_statement``
    changed nothing: the item was not queued. The caller's transaction then rolls back."""
    if not rows:
        current = Item.objects.filter(pk=item_id).values_list("state", flat=True).first()
        raise ItemStateError(f"item {item_id} is {current or 'gone'}, not queued")


@transaction.atomic
def item_outcome_reopen(*, item_id: int) -> Item:
    """Return a decided item to ``queued`` (an undo).

    Refused once the item is part of an export being built or ready: a snapshot never changes,
    so from then on the only way back is a retraction (``corpus.services.retractions``).
    """
    audit_lock()
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
        feed_append(dataset_id=item.dataset_id, item_ids=[item.pk], kind=FeedKind.REOPENED)
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
