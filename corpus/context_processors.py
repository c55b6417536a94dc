"""Template context every page gets."""

import logging
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest

from corpus.roles import Roles, is_site_admin
from corpus.services.audit_verify import ALERT_CACHE_KEY

logger = logging.getLogger(__name__)


def audit_alert(request: HttpRequest) -> dict[str, Any]:
    """``audit_alert``: the verifier's finding while the audit chain is broken, for the admins
    (who may open the audit page it links to).

    Read from the cache the verifier sets, never from the database, so a page costs no query for
    it; /healthz reads the database.
    """
    user = getattr(request, "user", None)
    if not is_site_admin(user):
        return {}
    try:
        alert = cache.get(ALERT_CACHE_KEY)
    except Exception:  # noqa: BLE001 - a cache outage must not take every admin page down
        logger.warning("could not read the audit alert from the cache", exc_info=True)
        return {}
    return {"audit_alert": alert} if alert else {}


def roles(request: HttpRequest) -> dict[str, Any]:
    """``roles``: what the user may open (``corpus.roles``), for the navigation and the links of
    every page; each answer is computed on first use."""
    return {"roles": Roles(getattr(request, "user", None))}
