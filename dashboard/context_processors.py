"""``dataset_alerts``: the open alerts of the dataset a page is about (any URL with a ``slug``),
for the banner in _base.html. Read from the cache ``alerts_evaluate`` writes, never from the
database, so a page pays no query for it; a cache outage shows no banner."""

import logging
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest

from dashboard.services.alerts import alerts_cache_key

logger = logging.getLogger(__name__)


def dataset_alerts(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    match = getattr(request, "resolver_match", None)
    slug = match.kwargs.get("slug") if match is not None else None
    if not slug or user is None or not user.is_authenticated:
        return {}
    try:
        alerts = cache.get(alerts_cache_key(slug))
    except Exception:  # noqa: BLE001 - the banner must not take a page down
        logger.warning("could not read the alerts of %s from the cache", slug, exc_info=True)
        return {}
    return {"dataset_alerts": alerts, "dataset_alerts_slug": slug} if alerts else {}
