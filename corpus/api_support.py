"""API plumbing shared by every endpoint: JSON parsing with a body limit, the error format,
opaque keyset cursors."""

import base64
import binascii
import json
import re
from typing import Any

import orjson
from django.conf import settings
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser
from rest_framework.response import Response


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


# U+0080 - U+009F (C1 controls) in UTF-8, and the JSON escapes that can make a control
# character or a lone surrogate.
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")
_CONTROL_ESCAPE = re.compile(rb"\\[bfu]")


def json_strings_plain(data: bytes) -> bool:
    """True when no string in the JSON text ``data`` (valid JSON, UTF-8) can hold a control
    character (C0 but tab, newline and carriage return; DEL; C1) or a lone surrogate.

    JSON forbids raw C0 characters inside strings, so they can only come from the escapes
    ``\\b``, ``\\f`` and ``\\u``, and a lone surrogate only from ``\\u``; DEL and C1 can
    also be raw. A few searches of the raw bytes (0.04 ms for 1 MB without a backslash, 0.5 ms
    with escapes) then spare every string of the body its own check (bench/RESULTS.md, "Ingest
    over HTTP"). A false alarm (an escaped backslash before a "u", say) only means the strings
    are checked one by one.
    """
    if b"\x7f" in data or (b"\xc2" in data and _C1_UTF8.search(data) is not None):
        return False
    return b"\\" not in data or _CONTROL_ESCAPE.search(data) is None


class JsonParser(BaseParser):
    """orjson: several times faster than the stdlib on 1 MB ingest bodies, and strict UTF-8.

    Tells the view, as ``request.json_strings_plain``, whether ``json_strings_plain`` holds
    for the body."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.SYNTHGATE_MAX_BODY_BYTES
        request = parser_context["request"] if parser_context else None
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"The body is {length} bytes; the limit is {limit}.")
        if stream is None:
            raise exceptions.ParseError("The request body is empty.")
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(f"The body is over the limit of {limit} bytes.")
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            orjson_error = exc
        else:
            if request is not None:
                request.json_strings_plain = json_strings_plain(data)
            return parsed
        # The slow path runs only for bodies orjson refused, to say precisely why.
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(
                f"The body is not valid UTF-8 (invalid byte at offset {exc.start})."
            ) from None
        # orjson refuses a \ud800-style escape of a lone surrogate. The stdlib accepts it, and the
        # item validation then names the item and field that holds it, which is more useful.
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except ValueError:
            raise exceptions.ParseError(f"The body is not valid JSON: {orjson_error}") from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _flatten(detail: Any, field: str | None = None) -> list[dict[str, Any]]:
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            name = None if key == "non_field_errors" else (f"{field}.{key}" if field else key)
            out.extend(_flatten(value, name))
        return out
    if isinstance(detail, list):
        out = []
        for value in detail:
            out.extend(_flatten(value, field))
        return out
    entry: dict[str, Any] = {"message": str(detail)}
    if field:
        entry["field"] = field
    return [entry]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error is ``{"errors": [{"field"?, "index"?, "message"}]}``."""
    # Imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES (our JsonParser) when it
    # is first imported, so a module-level import made importing this module first circular.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"errors": _flatten(exc.detail)}
    else:
        detail = getattr(exc, "detail", None) or str(exc)
        response.data = {"errors": [{"message": str(detail)}]}
    return response


def errors_response(errors: list[dict[str, Any]], status_code: int = 400) -> Response:
    return Response({"errors": errors}, status=status_code)


def cursor_encode(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def cursor_decode(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from None
    if not isinstance(position, dict):
        raise exceptions.ValidationError({"cursor": ["Invalid cursor."]})
    return position
