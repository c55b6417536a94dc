"""One URL, one API view per operation: ``methods(get=ItemListApi, post=ItemIngestApi)``.

Django maps a path to one view, so the URL that lists and creates needs a small dispatcher in
front of the two views. Each operation still runs its own view's whole DRF pipeline
(authentication, permissions, throttles, CSRF for sessions, the exception handler); the
dispatcher only picks the view and answers for the route as a whole in ``Allow``.

drf-spectacular reads URL patterns through ``callback.cls`` (the methods served) and then builds
each operation from the callback; ``expand_method_routes``, a preprocessing hook, swaps the
dispatcher for the operation's own view so its ``extend_schema`` and serializers are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from rest_framework.views import APIView

ViewFunc = Callable[..., HttpResponseBase]
Endpoint = tuple[str, str, str, Any]


def methods(**views: type[APIView]) -> ViewFunc:
    """A view function serving each HTTP method (``get=``, ``post=``, ``put=``...) with its
    own API view. Any other method goes to the first view given, which refuses it the DRF way
    (after authentication, as before the split: 405, or 401/403 first); every response says
    ``Allow`` for the whole route."""
    if not views:
        raise ValueError("methods() needs at least one view")
    table: dict[str, ViewFunc] = {}
    for method, cls in views.items():
        if method not in APIView.http_method_names or not hasattr(cls, method):
            raise ValueError(f"{cls.__name__} does not serve {method.upper()}")
        table[method.upper()] = cls.as_view()
    if "GET" in table:
        table.setdefault("HEAD", table["GET"])
    fallback = next(iter(table.values()))
    served = list(table)
    # In DRF's order, as one APIView serving all these methods answered before the split.
    allow = ", ".join(
        m.upper() for m in APIView.http_method_names if m.upper() in table or m == "options"
    )

    # CSRF is DRF's business (SessionAuthentication enforces it per view), as for as_view().
    @csrf_exempt
    def route(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        view = table.get(request.method or "", fallback)
        response = view(request, *args, **kwargs)
        response["Allow"] = allow
        return response

    # What drf-spectacular's EndpointEnumerator reads: an APIView class listing the methods.
    route.cls = type(  # type: ignore[attr-defined]
        "MethodRoutes", (APIView,), {"allowed_methods": served, "__doc__": None}
    )
    route.initkwargs = {}  # type: ignore[attr-defined]
    route.method_views = table  # type: ignore[attr-defined]
    return route


def expand_method_routes(endpoints: Iterable[Endpoint], **_: Any) -> list[Endpoint]:
    """drf-spectacular preprocessing hook: each method of a ``methods()`` route is documented
    from the view that serves it."""
    expanded = []
    for path, path_regex, method, callback in endpoints:
        table = getattr(callback, "method_views", None)
        if table is not None:
            callback = table[method]
        expanded.append((path, path_regex, method, callback))
    return expanded
