"""Reads of the audit log: filtered keyset pages (the audit API and browser) and an item's
timeline (the item page)."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from django.db.models import Q, QuerySet

from corpus.models import AuditEvent, AuditEventItem, Dataset, ExportItem, Item

MAX_FILTER = 200

# Every action the code appends, for the browser's suggestions; README "Audit trail" says what
# each records.
KNOWN_ACTIONS = (
    "audit.chain_broken",
    "audit.chain_restored",
    "auth.login",
    "auth.login_failed",
    "auth.login_throttled",
    "auth.logout",
    "dataset.changed",
    "dataset.created",
    "dataset.deleted",
    "dataset.reviewers_added",
    "demo.users_seeded",
    "detector.trained",
    "export.built",
    "export.downloaded",
    "export.failed",
    "export.requested",
    "export.started",
    "export_policy.updated",
    "group.changed",
    "group.created",
    "group.deleted",
    "item.changed",
    "item.deleted",
    "item.retracted",
    "items.ingested",
    "items.reference_loaded",
    "items.scored",
    "review.bulk_job_cancelled",
    "review.bulk_job_failed",
    "review.bulk_job_finished",
    "review.bulk_job_requested",
    "review.bulk_job_resumed",
    "review.bulk_job_started",
    "review.claim_expired",
    "review.claim_released",
    "review.decided",
    "review.gold_marked",
    "review.gold_unmarked",
    "review.policy_changed",
    "review.quota_changed",
    "review.reasons_changed",
    "review.skipped",
    "review.undone",
    "score.changed",
    "source.changed",
    "source.created",
    "source.deleted",
    "token.created",
    "token.revoked",
    "user.changed",
    "user.created",
    "user.deleted",
    "user.password_changed",
    "user.roles_changed",
)


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    dataset: Dataset | None = None
    since: datetime | None = None
    until: datetime | None = None

    def as_query(self) -> dict[str, str]:
        """The filters as they appear in a URL query string (for pager links)."""
        query = {
            "actor": self.actor,
            "action": self.action,
            "object": f"{self.object_type}:{self.object_id}"
            if self.object_id
            else self.object_type,
            "dataset": self.dataset.slug if self.dataset else "",
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {key: value for key, value in query.items() if value}


def _parse_time(value: str) -> datetime:
    """ISO 8601; a bare date is midnight; no zone is UTC (what a datetime-local input sends)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date or time, like 2026-01-31T12:00") from None
    if len(value) == 10:
        parsed = datetime.combine(parsed.date(), time.min)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def audit_filters_parse(
    params: Mapping[str, str],
) -> tuple[AuditFilters, list[dict[str, str]]]:
    """Query parameters to filters, and field-level errors (the API error format)."""
    errors: list[dict[str, str]] = []
    values: dict[str, Any] = {}
    for name in ("actor", "action", "object", "dataset", "since", "until"):
        raw = (params.get(name) or "").strip()
        if len(raw) > MAX_FILTER:
            errors.append({"field": name, "message": f"at most {MAX_FILTER} characters"})
        elif raw:
            values[name] = raw
    filters: dict[str, Any] = {
        "actor": values.get("actor", ""),
        "action": values.get("action", ""),
    }
    if "object" in values:
        object_type, _, object_id = values["object"].partition(":")
        if not object_type or (object_type == "item" and object_id and not object_id.isdigit()):
            errors.append(
                {"field": "object", "message": "a type, or type:id (item:42, dataset:demo)"}
            )
        filters["object_type"], filters["object_id"] = object_type, object_id
    if "dataset" in values:
        dataset = Dataset.objects.filter(slug=values["dataset"]).first()
        if dataset is None:
            errors.append({"field": "dataset", "message": f"no dataset '{values['dataset']}'"})
        filters["dataset"] = dataset
    for name in ("since", "until"):
        if name in values:
            try:
                filters[name] = _parse_time(values[name])
            except ValueError as exc:
                errors.append({"field": name, "message": str(exc)})
    return AuditFilters(**filters), errors


def _about_item(item_id: int) -> Q:
    """Events whose object is the item, or that name it in their payload."""
    return Q(object_type="item", object_id=str(item_id)) | Q(
        seq__in=AuditEventItem.objects.filter(item_id=item_id).values("event_id")
    )


def _filtered(filters: AuditFilters) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.select_related("dataset")
    if filters.actor:
        # "user:3" matches "user:3:alice"; a full actor matches itself.
        events = events.filter(Q(actor=filters.actor) | Q(actor__startswith=f"{filters.actor}:"))
    if filters.action:
        if filters.action.endswith((".", "*")):
            events = events.filter(action__startswith=filters.action.rstrip("*"))
        else:
            events = events.filter(action=filters.action)
    if filters.object_type == "item" and filters.object_id:
        # Every event that concerns the item, not only those whose object it is.
        events = events.filter(_about_item(int(filters.object_id)))
    elif filters.object_type:
        events = events.filter(object_type=filters.object_type)
        if filters.object_id:
            events = events.filter(object_id=filters.object_id)
    if filters.dataset is not None:
        events = events.filter(dataset=filters.dataset)
    if filters.since is not None:
        events = events.filter(time__gte=filters.since)
    if filters.until is not None:
        events = events.filter(time__lt=filters.until)
    return events


def audit_event_list(
    *,
    filters: AuditFilters,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> list[AuditEvent]:
    """One keyset page in seq order (``newest_first`` for the browser), read in one query."""
    events = _filtered(filters)
    if after_seq is not None:
        events = events.filter(seq__gt=after_seq)
    if before_seq is not None:
        events = events.filter(seq__lt=before_seq)
    return list(events.order_by("-seq" if newest_first else "seq")[:limit])


# Timeline ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    event: AuditEvent
    label: str
    detail: str
    who: str


def actor_display(actor: str) -> str:
    """ "user:3:alice" -> "alice", "token:5:loader" -> "token loader"."""
    kind, _, rest = actor.partition(":")
    if kind in ("user", "token") and rest:
        _, _, name = rest.partition(":")
        return name if kind == "user" else f"token {name}"
    return actor


EXPORT_ACTIONS = ("export.built", "export.downloaded")


def _describe(event: AuditEvent, item_id: int) -> tuple[str, str]:
    action, payload = event.action, event.payload or {}
    key = str(item_id)
    if action in ("items.ingested", "items.reference_loaded"):
        return "ingested", "as reference" if action == "items.reference_loaded" else ""
    if action == "items.scored":
        if key in (payload.get("auto_rejected") or {}):
            return "scored", f"auto-rejected: {payload['auto_rejected'][key]}"
        for bucket, text in (
            ("queued", "queued for review"),
            ("score_failed", "scoring failed"),
            ("rescored", "rescored"),
        ):
            if item_id in (payload.get(bucket) or []):
                return "scored", text
        return "scored", ""
    if action == "review.claimed":
        return "claimed", ""
    if action in ("review.claim_expired", "review.claim_released"):
        return "claim ended", action.rpartition("_")[2]
    if action == "review.decided":
        verdict = payload.get("verdict", "")
        outcome = payload.get("outcome")
        return "decided", f"{verdict}" + (f" → {outcome}" if outcome else "")
    if action == "review.undone":
        return "decision undone", f"{payload.get('state_before', '')} → queued"
    if action == "review.skipped":
        return "skipped", ""
    if action == "item.retracted":
        return "retracted", payload.get("reason", "")
    if action == "export.built":
        return "exported", f"in export #{event.object_id}"
    if action == "export.downloaded":
        return "downloaded", f"export #{event.object_id}"
    return action, ""


def item_timeline(*, item: Item, limit: int = 500) -> list[TimelineEntry]:
    """Everything that happened to ``item``, oldest first: the events that name it, and the
    building and downloading of the exports it is in."""
    direct = list(
        AuditEvent.objects.filter(_about_item(item.pk))
        .select_related("dataset")
        .order_by("seq")[:limit]
    )
    export_ids = [
        str(pk)
        for pk in ExportItem.objects.filter(item_id=item.pk, included=True).values_list(
            "export_id", flat=True
        )[:limit]
    ]
    exported = (
        list(
            AuditEvent.objects.filter(
                object_type="export", object_id__in=export_ids, action__in=EXPORT_ACTIONS
            )
            .select_related("dataset")
            .order_by("seq")[:limit]
        )
        if export_ids
        else []
    )
    events = sorted({e.seq: e for e in direct + exported}.values(), key=lambda e: e.seq)[:limit]
    return [
        TimelineEntry(event, *_describe(event, item.pk), who=actor_display(event.actor))
        for event in events
    ]
