"""Template context for the navigation: whether the user administers datasets. Lazy: a page
that does not show it costs no query."""

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from review import selectors


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {
        "nav_admin": SimpleLazyObject(lambda: selectors.is_admin(user)),
    }
