"""At the door of every request: refuse text PostgreSQL cannot store, and answer 503 (not 500)
while the database is away (``server_error``, the ``handler500``).

A NUL character is valid in a URL (``%00``) and a form field, but no PostgreSQL text or jsonb
column can hold it: a query filter, a form field or a username carrying one used to fail deep
inside a query or an audit append, as a 500. Query parameters and form fields are checked here,
once, for every page and endpoint (JSON bodies: ``corpus.json_input``). Lone surrogates cannot
arrive this way: Django decodes query strings and forms with replacement characters.
"""

import contextlib
import sys
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.request import QueryDict
from django.views import defaults

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MESSAGE = "contains a NUL character (U+0000), which is not allowed"


def nul_field(params: QueryDict) -> str | None:
    """The first parameter name whose name or any value holds a NUL, else None."""
    for name, values in params.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "\\u0000")
    return None


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = nul_field(request.GET)
        if name is None and request.method == "POST" and request.content_type in FORM_TYPES:
            name = nul_field(request.POST)
        if name is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"errors": [{"field": name, "message": MESSAGE}]}, status=400)
        return HttpResponseBadRequest(f"The field '{name}' {MESSAGE}.", content_type="text/plain")


# Errors that mean "the database is not there right now" (restarting, failing over, the network
# between): not a bug, so 503 with Retry-After rather than 500. Django closes a connection that
# failed at the end of the request, so the next request reconnects by itself.
DATABASE_AWAY = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: 503 while the database is away (whatever raised it: a view, DRF, a
    middleware reading the session), Django's plain 500 page otherwise."""
    exc = sys.exc_info()[1]
    if not isinstance(exc, DATABASE_AWAY):
        return defaults.server_error(request)
    # Drop the broken connection now (Django's handler would at the end of the request too),
    # so whatever this process serves next opens a fresh one.
    with contextlib.suppress(Exception):
        connection.close()
    message = "The database is unavailable; try again in a few seconds."
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"errors": [{"message": message}]}, status=503)
    else:
        response = HttpResponse(message, status=503, content_type="text/plain")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
