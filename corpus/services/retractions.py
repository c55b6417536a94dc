"""Retractions: an admin takes an approved item back, with a reason.

The item moves to ``retracted`` (terminal), so every later export leaves it out; the feed gets a
``retracted`` entry and the next manifest lists it under ``retractions_since_previous``. Exports
already built keep it: a ready export never changes, and the manifest of the next one tells
consumers what to drop.
"""

from django.db import transaction
from django.utils import timezone

from corpus.models import FeedKind, Item, Retraction
from corpus.services.audit import audit_append, audit_lock
from corpus.services.feed import feed_append
from corpus.services.items import ItemStateError

MAX_REASON = 500


@transaction.atomic
def item_retract(*, item_id: int, reason: str, actor: str) -> Retraction:
    """Retract an approved item. Raises ItemStateError unless it is approved, ValueError for a
    missing or overlong reason. Takes the audit chain lock before touching the item."""
    reason = reason.strip()
    if not reason:
        raise ValueError("a retraction needs a reason")
    if len(reason) > MAX_REASON:
        raise ValueError(f"the reason is {len(reason)} characters; at most {MAX_REASON}")
    audit_lock()
    now = timezone.now()
    updated = Item.objects.filter(pk=item_id, state=Item.State.APPROVED).update(
        state=Item.State.RETRACTED, state_reason=reason, updated_at=now
    )
    if not updated:
        current = Item.objects.filter(pk=item_id).values_list("state", flat=True).first()
        raise ItemStateError(
            f"item {item_id} is {current or 'gone'}; only approved items can be retracted"
        )
    item = Item.objects.select_related("dataset").get(pk=item_id)
    seq = feed_append(dataset_id=item.dataset_id, item_ids=[item.pk], kind=FeedKind.RETRACTED)
    retraction = Retraction.objects.create(
        item=item, dataset=item.dataset, reason=reason, actor=actor, feed_seq=seq, created_at=now
    )
    audit_append(
        actor=actor,
        action="item.retracted",
        object_type="item",
        object_id=item.pk,
        dataset=item.dataset,
        payload={"reason": reason, "feed_seq": seq},
    )
    return retraction
