"""Refuse text that PostgreSQL cannot store, at the door of every request.

A NUL character is valid in a URL (``%00``) and a form field, but no PostgreSQL text or jsonb
column can hold it: a query filter, a form field or a username carrying one used to fail deep
inside a query or an audit append, as a 500. Query parameters and form fields are checked here,
once, for every page and endpoint (JSON bodies: ``corpus.json_input``). Lone surrogates cannot
arrive this way: Django decodes query strings and forms with replacement characters.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.request import QueryDict

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
