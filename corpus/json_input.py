"""The one way a JSON request body becomes Python values (every API endpoint: ``JsonParser``).

Whatever the body, the answer is the parsed value or ``JsonInputError`` (HTTP 400 or 413 with
field-level messages), never an exception the caller did not expect:

- **Memory bounded before parsing.** The body's bytes are counted for ``,`` ``{`` ``[`` (an upper
  bound on the number of JSON values it holds; C loops, ~0.1 ms per MB) and a body that could
  hold more than ``SYNTHGATE_MAX_JSON_VALUES`` is refused (413) before a single object is
  built. A 64 MiB body of empty items used to become 2 GiB of dicts.
- **Depth.** Nothing nested deeper than ``SYNTHGATE_MAX_JSON_DEPTH`` (400 naming where): deep
  values would otherwise hit Python's recursion limit later, in a validator or an encoder.
- **Text PostgreSQL can store.** No NUL character and no lone surrogate in any key or value
  (400 naming the field): jsonb and text columns refuse both, which used to surface as a 500.
- **Numbers kept exactly.** An integer beyond 2^53 (which JSON readers in other languages, and
  orjson here, turn into an approximate double), a number outside the double range (which
  became ``null``) or a double beyond 2^53 (a whole number PostgreSQL hands back as an integer)
  is refused with a clear message; send such values as strings.

orjson parses (several times faster than the stdlib on 1 MB ingest bodies, strict UTF-8, capped
at depth 1024). The checks that need a walk over the values run only when cheap tests on the raw
bytes say they could fail: the common ingest body pays for three ``bytes.count`` calls, two
searches and one walk over its containers.
"""

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

# Integers JavaScript and every double-based reader hold exactly.
MAX_EXACT_INT = 2**53


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


class JsonInputError(Exception):
    """Bad JSON input: ``errors`` in the API's format, ``status`` 400 or 413."""

    def __init__(self, errors: list[dict[str, Any]], status: int = 400) -> None:
        super().__init__(errors[0]["message"] if errors else "bad JSON")
        self.errors = errors
        self.status = status


@dataclass
class JsonLimits:
    max_values: int
    max_depth: int


def json_limits() -> JsonLimits:
    """The limits from the settings (what the API's parser uses too)."""
    from django.conf import settings

    return JsonLimits(
        max_values=settings.SYNTHGATE_MAX_JSON_VALUES, max_depth=settings.SYNTHGATE_MAX_JSON_DEPTH
    )


@dataclass
class ParsedJson:
    value: Any
    # No string in the body can hold a control character or a lone surrogate
    # (``json_strings_plain``); the ingest validation then skips its checks.
    strings_plain: bool
    notes: list[str] = field(default_factory=list)


def field_error(path: list[str | int], message: str) -> dict[str, Any]:
    """An error for the value at ``path``; under ``items.N`` it names the item by index, as the
    ingest contract does (``{"index": 3, "field": "text", ...}``)."""
    if len(path) >= 2 and path[0] == "items" and isinstance(path[1], int):
        rest = ".".join(str(p) for p in path[2:])
        return {"index": path[1], "field": rest or None, "message": message}
    if not path:
        return {"message": message}
    return {"field": ".".join(str(p) for p in path), "message": message}


def values_bound(data: bytes) -> int:
    """At least the number of JSON values ``data`` holds (commas and openers inside strings
    count too: an overestimate, never an under one)."""
    return data.count(b",") + data.count(b"{") + data.count(b"[") + 1


def json_parse(data: bytes, *, limits: JsonLimits, check_values: bool = True) -> ParsedJson:
    """Parse a request body under the rules above; raises JsonInputError.

    ``check_values=False`` is for a caller that validates the body against a strict schema and
    runs ``json_value_problem`` on each free-form value itself, with its own per-item messages
    (ingest: walking a whole 1000-item body in Python would cost more than parsing it). The
    memory bound, orjson's depth cap of 1024 and the stdlib's recursion still hold for it.
    """
    # Each value takes at least two bytes (itself and a separator), so a short body needs no
    # counting: 2M values are only possible past 4 MB.
    if len(data) // 2 > limits.max_values and values_bound(data) > limits.max_values:
        raise JsonInputError(
            [{"message": f"the body holds more than {limits.max_values} JSON values"}],
            status=413,
        )
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        value = _parse_slow(data, exc)
    plain = json_strings_plain(data)
    if check_values:
        # Only a \u escape can put a NUL or a lone surrogate into a string: not in a plain body.
        strings = not plain
        problem = json_value_problem(value, max_depth=limits.max_depth, strings=strings)
        if problem is not None:
            raise JsonInputError([field_error(*problem)])
    return ParsedJson(value=value, strings_plain=plain)


_TOO_DEEP = {"message": "the body is nested too deeply"}


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse_slow(data: bytes, orjson_error: orjson.JSONDecodeError | None) -> Any:
    """The stdlib parser: for bodies orjson refused (to say precisely why, or to accept a lone
    surrogate escape that the checks then name with its field) and for exact numbers."""
    if orjson_error is not None and "depth" in str(orjson_error):
        raise JsonInputError([_TOO_DEEP])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonInputError(
            [{"message": f"The body is not valid UTF-8 (invalid byte at offset {exc.start})."}]
        ) from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonInputError([_TOO_DEEP]) from None
    except ValueError as exc:
        reason = orjson_error if orjson_error is not None else exc
        raise JsonInputError([{"message": f"The body is not valid JSON: {reason}"}]) from None


def json_value_problem(
    value: Any, *, max_depth: int, strings: bool = True
) -> tuple[list[str | int], str] | None:
    """The first (path, problem) in a parsed JSON value: nested deeper than ``max_depth``, a
    number not kept exactly, or (``strings``) a NUL or lone surrogate in a key or string."""
    if not _has_problem(value, max_depth=max_depth, strings=strings):
        return None
    return _inspect(value, max_depth=max_depth, strings=strings, numbers=True)


def _has_problem(value: Any, *, max_depth: int, strings: bool) -> bool:
    """Whether ``_inspect`` would find anything, without building paths: the hot path (a
    1000-item ingest body is walked in well under a millisecond)."""
    top = type(value)
    if top is not dict and top is not list:
        return _scalar_bad(value, strings)
    low, high = -MAX_EXACT_INT, MAX_EXACT_INT
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            return True
        if type(node) is dict:
            if strings and any(_string_problem(key) for key in node):
                return True
            children = node.values()
        else:
            children = node
        for child in children:
            kind = type(child)
            if kind is str:
                if strings and _string_problem(child) is not None:
                    return True
            elif kind is dict or kind is list:
                push((child, depth + 1))
            elif (kind is int or kind is float) and not low <= child <= high:
                return True  # NaN fails both comparisons, so it is caught too
    return False


def _scalar_bad(value: Any, strings: bool) -> bool:
    if type(value) is str:
        return strings and _string_problem(value) is not None
    return _number_problem(value) is not None


def _string_problem(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character (U+0000), which cannot be stored"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid UTF-8 (it contains a lone surrogate)"
    return None


def _number_problem(value: Any) -> str | None:
    if type(value) is int:
        if -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
            return None
        return (
            f"the integer {value} is out of range: beyond 2^53 it would not be kept exactly; "
            "send it as a string"
        )
    if type(value) is float and not (math.isfinite(value) and abs(value) <= MAX_EXACT_INT):
        # Past 2^53 a double is a whole number that PostgreSQL's jsonb hands back as an
        # integer (1.5e308 as 309 digits): not the value that was sent either.
        return f"the number {value} is out of range: beyond 2^53; send it as a string"
    return None


def _inspect(
    value: Any, *, max_depth: int, strings: bool, numbers: bool
) -> tuple[list[str | int], str] | None:
    """The first (path, problem) in ``value``, walking iteratively (no recursion to exhaust)."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if len(path) >= max_depth and type(node) in (dict, list):
            return path, f"nested deeper than {max_depth} levels"
        if type(node) is dict:
            for key, child in node.items():
                if strings and (problem := _string_problem(key)) is not None:
                    return [*path, key.encode("utf-8", "backslashreplace").decode()], (
                        f"a key {problem}"
                    )
                child_type = type(child)
                if child_type is dict or child_type is list:
                    stack.append((child, [*path, _printable(key)]))
                elif strings and child_type is str:
                    if (problem := _string_problem(child)) is not None:
                        return [*path, _printable(key)], problem
                elif numbers and (problem := _number_problem(child)) is not None:
                    return [*path, _printable(key)], problem
        elif type(node) is list:
            for index, child in enumerate(node):
                child_type = type(child)
                if child_type is dict or child_type is list:
                    stack.append((child, [*path, index]))
                elif strings and child_type is str:
                    if (problem := _string_problem(child)) is not None:
                        return [*path, index], problem
                elif numbers and (problem := _number_problem(child)) is not None:
                    return [*path, index], problem
        elif strings and type(node) is str:
            if (problem := _string_problem(node)) is not None:
                return path, problem
        elif numbers and (problem := _number_problem(node)) is not None:
            return path, problem
    return None


def _printable(key: str) -> str:
    # A key is only ever shown back inside an error message; make it safe to encode.
    return key.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()
