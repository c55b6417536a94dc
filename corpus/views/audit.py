"""The audit browser for admins: filters by actor, action, object, dataset and time, newest
first, keyset paginated; htmx swaps the table (``#audit-table``) and the URL keeps the filters."""

import json
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from corpus.models import AuditVerification, Dataset
from corpus.roles import site_admin_required
from corpus.selectors_audit import (
    KNOWN_ACTIONS,
    actor_display,
    audit_event_list,
    audit_filters_parse,
)

PAGE = "corpus/audit.html"
PAGE_SIZE = 50


def _seq(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _rows(events: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "event": event,
            "who": actor_display(event.actor),
            "item_id": int(event.object_id)
            if event.object_type == "item" and event.object_id.isdigit()
            else None,
            "payload_text": json.dumps(event.payload, indent=2, sort_keys=True, ensure_ascii=False),
        }
        for event in events
    ]


@site_admin_required("Only admins read the audit log.")
@require_GET
@vary_on_headers("HX-Request")
def audit_browser(request: HttpRequest) -> HttpResponse:
    filters, errors = audit_filters_parse(request.GET)
    before, after = _seq(request.GET.get("before")), _seq(request.GET.get("after"))
    events: list[Any] = []
    older = newer = None
    if not errors:
        if after is not None:
            # Newer page: read upwards from the cursor, then show newest first like every page.
            events = audit_event_list(filters=filters, after_seq=after, limit=PAGE_SIZE + 1)
            more = len(events) > PAGE_SIZE
            events = list(reversed(events[:PAGE_SIZE]))
            newer_exists, older_exists = more, bool(events)
        else:
            events = audit_event_list(
                filters=filters, before_seq=before, limit=PAGE_SIZE + 1, newest_first=True
            )
            more = len(events) > PAGE_SIZE
            events = events[:PAGE_SIZE]
            newer_exists, older_exists = before is not None and bool(events), more
        query = filters.as_query()
        if events and older_exists:
            older = urlencode({**query, "before": events[-1].seq})
        if events and newer_exists:
            newer = urlencode({**query, "after": events[0].seq})
    context = {
        "rows": _rows(events),
        "filters": filters,
        "object_filter": request.GET.get("object", ""),
        "errors": errors,
        "older": older,
        "newer": newer,
        "page_size": PAGE_SIZE,
    }
    if request.htmx:
        return render(request, f"{PAGE}#audit-table", context)
    context.update(
        datasets=list(Dataset.objects.order_by("slug").values_list("slug", flat=True)),
        actions=KNOWN_ACTIONS,
        verification=AuditVerification.objects.filter(pk=1).first(),
    )
    return render(request, PAGE, context)
