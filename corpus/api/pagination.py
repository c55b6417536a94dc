"""Keyset paging for every list endpoint: the ``limit`` and ``cursor`` query parameters, parsed
in one place. A cursor is opaque to clients (``api_support.cursor_encode``): a small JSON object
naming the position, under a key of the endpoint's own (``after`` an id or seq, ``before`` an
id, ``feed`` a feed seq)."""

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from corpus.api_support import cursor_decode


@dataclass(frozen=True)
class PageQuery:
    limit: int
    position: int | None  # None: from the start


def page_query(
    params: Any,
    *,
    key: str,
    errors: list[dict[str, Any]],
    default_limit: int | None = None,
    max_limit: int = 1000,
) -> PageQuery:
    """``limit`` (1 to ``max_limit``, default ``SYNTHGATE_PAGE_SIZE``) and the cursor's ``key``
    (a non-negative integer) from the query ``params``. Problems are added to ``errors`` as
    field errors, for the view to answer with the rest of its own; a cursor that is not one of
    ours at all raises the 400 ``ValidationError`` of ``cursor_decode``."""
    default = settings.SYNTHGATE_PAGE_SIZE if default_limit is None else default_limit
    raw = params.get("limit", str(default))
    limit = int(raw) if raw.isdigit() else 0
    if not 1 <= limit <= max_limit:
        errors.append({"field": "limit", "message": f"must be an integer from 1 to {max_limit}"})
    decoded = cursor_decode(params.get("cursor"))
    position = decoded.get(key) if decoded else None
    if position is not None and (
        isinstance(position, bool) or not isinstance(position, int) or position < 0
    ):
        errors.append({"field": "cursor", "message": "Invalid cursor."})
        position = None
    return PageQuery(limit=limit, position=position)
