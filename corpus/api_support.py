"""API plumbing shared by every endpoint: JSON parsing with a body limit, the error format,
opaque keyset cursors."""

import base64
import binascii
from typing import Any

import orjson
from django.conf import settings
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from corpus.json_input import JsonInputError, json_limits, json_parse, json_strings_plain

__all__ = ["json_strings_plain"]  # where it lived before corpus.json_input


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class JsonInvalid(exceptions.APIException):
    """Bad JSON input, with the field-level errors ``corpus.json_input`` found."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "parse_error"

    def __init__(self, error: JsonInputError) -> None:
        super().__init__(error.errors[0]["message"] if error.errors else "bad JSON")
        self.errors = error.errors
        self.status_code = error.status


class JsonParser(BaseParser):
    """Every API body goes through ``corpus.json_input.json_parse`` (limits on size, values,
    depth; text PostgreSQL can store; exact numbers).

    Tells the view, as ``request.json_strings_plain``, whether ``json_strings_plain`` holds
    for the body. A view that validates the body against a strict schema and checks each
    free-form value itself (``json_input.json_value_problem``) sets ``json_values_checked``."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.SYNTHGATE_MAX_BODY_BYTES
        request = parser_context["request"] if parser_context else None
        view = parser_context.get("view") if parser_context else None
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"The body is {length} bytes; the limit is {limit}.")
        if stream is None:
            raise exceptions.ParseError("The request body is empty.")
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(f"The body is over the limit of {limit} bytes.")
        try:
            parsed = json_parse(
                data,
                limits=json_limits(),
                check_values=not getattr(view, "json_values_checked", False),
            )
        except JsonInputError as exc:
            raise JsonInvalid(exc) from None
        if request is not None:
            request.json_strings_plain = parsed.strings_plain
        return parsed.value


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
    if isinstance(exc, JsonInvalid):
        response.data = {"errors": exc.errors}
    elif isinstance(exc, exceptions.ValidationError):
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
