"""Every ingest validation rule: a 400 naming index, field and reason, and nothing stored."""

import io

import orjson
import pytest
from django.test import override_settings

from corpus.api_support import JsonParser, PayloadTooLarge
from corpus.models import AuditEvent, Item, Source
from corpus.services.ingest import IngestError, items_parse

URL = "/api/v1/datasets/demo/items/"
GOOD = {"text": "A perfectly fine item."}


def _post(client, body):
    return client.post(URL, body, format="json")


def _raw(client, payload: bytes):
    return client.generic("POST", URL, payload, content_type="application/json")


@pytest.fixture
def producer(api, produce_token, dataset):
    return api.as_token(produce_token)


@pytest.fixture
def nothing_stored(db):
    """Asserts after the test that the refused request wrote nothing at all."""
    events = AuditEvent.objects.count()
    sources = Source.objects.count()
    yield
    assert not Item.objects.exists()
    assert Source.objects.count() == sources
    assert AuditEvent.objects.count() == events


def _single_error(response) -> dict:
    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    assert set(errors[0]) == {"index", "field", "message"}
    return errors[0]


# Each bad item is sent second, after a good one: the error must name index 1.
ITEM_RULES = [
    ("missing text", {"origin": "human"}, "text", "this field is required"),
    ("text not a string", {"text": 42}, "text", "valid string"),
    ("empty text", {"text": ""}, "text", "text is empty"),
    ("blank text", {"text": " \t\n\r "}, "text", "text is empty"),
    ("NUL", {"text": "before\x00after"}, "text", "control character U+0000 at position 6"),
    ("bell", {"text": "ding\x07"}, "text", "control character U+0007"),
    ("escape", {"text": "\x1b[31mred"}, "text", "control character U+001B"),
    ("delete", {"text": "rub\x7fout"}, "text", "control character U+007F"),
    ("C1 control", {"text": "next\x85line"}, "text", "control character U+0085"),
    ("control in prompt", {"text": "ok", "prompt": "p\x00"}, "prompt", "U+0000"),
    ("control in external_id", {"text": "ok", "external_id": "a\x01"}, "external_id", "U+0001"),
    ("empty external_id", {"text": "ok", "external_id": ""}, "external_id", "at least 1"),
    ("long external_id", {"text": "ok", "external_id": "x" * 201}, "external_id", "at most 200"),
    ("empty source", {"text": "ok", "source": ""}, "source", "at least 1"),
    ("origin outside the enum", {"text": "ok", "origin": "robot"}, "origin", "'human'"),
    ("origin wrong case", {"text": "ok", "origin": "Human"}, "origin", "'synthetic'"),
    ("negative generation", {"text": "ok", "generation": -1}, "generation", "greater than or"),
    ("generation as text", {"text": "ok", "generation": "2"}, "generation", "valid integer"),
    ("fractional generation", {"text": "ok", "generation": 1.5}, "generation", "valid integer"),
    ("metadata a list", {"text": "ok", "metadata": [1, 2]}, "metadata", "valid dictionary"),
    ("metadata a string", {"text": "ok", "metadata": "{}"}, "metadata", "valid dictionary"),
    (
        "metadata over 16 KB",
        {"text": "ok", "metadata": {"blob": "x" * 16_400}},
        "metadata",
        "the limit is 16384",
    ),
    ("metadata with NUL", {"text": "ok", "metadata": {"k": "a\x00"}}, "metadata", "NUL"),
    ("NUL in a metadata key", {"text": "ok", "metadata": {"\x00": 1}}, "metadata", "NUL"),
    ("sampling_params a list", {"text": "ok", "sampling_params": []}, "sampling_params", "dict"),
    ("unknown item field", {"text": "ok", "colour": "red"}, "colour", "unknown field"),
    ("parents not a list", {"text": "ok", "parents": 3}, "parents", "valid list"),
    ("parent a float", {"text": "ok", "parents": [1.5]}, "parents.0", "item id (integer) or"),
    ("parent a boolean", {"text": "ok", "parents": [True]}, "parents.0", "item id (integer) or"),
    ("parent id zero", {"text": "ok", "parents": [0]}, "parents.0", "out of range"),
    ("parent id huge", {"text": "ok", "parents": [2**63]}, "parents.0", "out of range"),
    ("parent empty string", {"text": "ok", "parents": [""]}, "parents.0", "1 to 200"),
    ("item not an object", "just a string", None, "valid dictionary"),
]


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [rule[1:] for rule in ITEM_RULES],
    ids=[rule[0] for rule in ITEM_RULES],
)
def test_invalid_item_is_refused_with_index_field_message(
    producer, nothing_stored, item, field, message
):
    error = _single_error(_post(producer, {"items": [GOOD, item]}))

    assert error["index"] == 1
    assert error["field"] == field
    assert message in error["message"]


def test_allowed_whitespace_controls_and_edge_values_are_accepted(producer):
    response = _post(
        producer,
        {
            "items": [
                {"text": "tab\there\nnewline\r\nCRLF"},
                {"text": "ok", "generation": 0, "origin": "human", "parents": []},
                # A literal backslash-u0000 in the JSON text is six characters, not a NUL.
                {"text": "ok 2", "metadata": {"k": "\\u0000", "nested": {"list": [1, None]}}},
                {"text": "ok 3", "metadata": {"blob": "x" * 16_000}},
                {"text": "Ünïcödé ✓ 中文 🙂", "external_id": "x" * 200},
            ]
        },
    )

    assert response.status_code == 201, response.json()
    assert Item.objects.count() == 5
    assert Item.objects.get(text="ok 2").metadata == {"k": "\\u0000", "nested": {"list": [1, None]}}


@override_settings(SYNTHGATE_MAX_TEXT_CHARS=10)
def test_text_over_max_chars_is_refused(producer, nothing_stored):
    error = _single_error(_post(producer, {"items": [{"text": "x" * 10}, {"text": "é" * 11}]}))

    assert error == {
        "index": 1,
        "field": "text",
        "message": "text has 11 characters; the limit is 10",
    }


@override_settings(SYNTHGATE_MAX_TEXT_CHARS=10)
def test_text_at_max_chars_is_accepted(producer):
    response = _post(producer, {"items": [{"text": "é" * 10}]})

    assert response.status_code == 201


def test_every_bad_item_is_reported_at_once(producer, nothing_stored):
    response = _post(
        producer,
        {"items": [{"text": ""}, GOOD, {"text": "ok", "origin": "alien", "extra": 1}]},
    )

    assert response.status_code == 400
    errors = sorted(response.json()["errors"], key=lambda e: (e["index"], e["field"]))
    assert [(e["index"], e["field"]) for e in errors] == [
        (0, "text"),
        (2, "extra"),
        (2, "origin"),
    ]


# Encoding -----------------------------------------------------------------------------------


def test_lone_surrogate_escape_is_refused_with_its_item_and_field(producer, nothing_stored):
    payload = b'{"items": [{"text": "fine"}, {"text": "half a pair: \\ud83d here"}]}'

    error = _single_error(_raw(producer, payload))

    assert error["index"] == 1
    assert error["field"] == "text"
    assert "lone surrogate" in error["message"]


def test_lone_surrogate_in_metadata_is_refused(producer, nothing_stored):
    payload = b'{"items": [{"text": "fine", "metadata": {"k": "\\udc00"}}]}'

    error = _single_error(_raw(producer, payload))

    assert (error["index"], error["field"]) == (0, "metadata")


def test_lone_surrogate_from_a_file_is_refused_by_the_parser():
    # import_items reads files with the stdlib, which lets lone surrogates through.
    with pytest.raises(IngestError) as caught:
        items_parse([{"text": "ok"}, {"text": "bad \udfff"}])

    assert caught.value.errors == [
        {
            "index": 1,
            "field": "text",
            "message": "text is not valid UTF-8 (it contains a lone surrogate)",
        }
    ]


def test_invalid_utf8_body_is_400(producer, nothing_stored):
    payload = b'{"items": [{"text": "caf\xe9"}]}'  # Latin-1, not UTF-8

    response = _raw(producer, payload)

    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"message": "The body is not valid UTF-8 (invalid byte at offset 24)."}]
    }


@pytest.mark.parametrize(
    "payload",
    [b'{"items": [', b"", b'{"items": [{"text": NaN}]}', b"{'items': []}"],
    ids=["truncated", "empty", "NaN", "single quotes"],
)
def test_malformed_json_is_400(producer, nothing_stored, payload):
    response = _raw(producer, payload)

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]


# Request shape ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"items": [GOOD], "dry_run": True}, "dry_run", "unknown field"),
        ({"item": [GOOD]}, "item", "unknown field"),
        ({"source": "s"}, "items", "this field is required"),
        ({"items": {"text": "x"}}, "items", "valid list"),
        ({"items": []}, "items", "no items"),
        ({"items": [GOOD], "source": 5}, "source", "valid string"),
        ({"items": [GOOD], "source": "s" * 201}, "source", "at most 200"),
        ({"items": [GOOD], "source": "bad\x00source"}, "source", "U+0000"),
        ([GOOD], None, "the body must be a JSON object"),
    ],
    ids=[
        "unknown top field",
        "misspelled items",
        "no items field",
        "items an object",
        "empty items",
        "source a number",
        "source too long",
        "source with NUL",
        "body a list",
    ],
)
def test_bad_request_shape_is_400(producer, nothing_stored, body, field, message):
    response = _post(producer, body)

    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert any(e["field"] == field and message in e["message"] for e in errors), errors
    assert all(e["index"] is None for e in errors)


@override_settings(SYNTHGATE_MAX_ITEMS_PER_REQUEST=3)
def test_more_items_than_allowed_is_refused(producer, nothing_stored):
    response = _post(producer, {"items": [{"text": f"item {n}"} for n in range(4)]})

    assert response.json() == {
        "errors": [{"index": None, "field": "items", "message": "at most 3 items per request"}]
    }
    assert response.status_code == 400


@override_settings(SYNTHGATE_MAX_ITEMS_PER_REQUEST=3)
def test_exactly_the_item_limit_is_accepted(producer):
    response = _post(producer, {"items": [{"text": f"item {n}"} for n in range(3)]})

    assert response.status_code == 201


@override_settings(SYNTHGATE_MAX_BODY_BYTES=500)
def test_body_over_the_limit_is_413(producer, nothing_stored):
    response = _post(producer, {"items": [{"text": "x" * 600}]})

    assert response.status_code == 413
    assert "limit is 500" in response.json()["errors"][0]["message"]


@override_settings(SYNTHGATE_MAX_BODY_BYTES=500)
def test_body_over_the_limit_without_content_length_is_413():
    # A chunked upload has no Content-Length: the parser stops reading past the limit.
    class _Request:
        META: dict[str, str] = {}

    stream = io.BytesIO(b'{"items": [{"text": "' + b"x" * 1000 + b'"}]}')

    with pytest.raises(PayloadTooLarge):
        JsonParser().parse(stream, parser_context={"request": _Request()})


# Parents ------------------------------------------------------------------------------------


def test_parent_id_that_does_not_exist_is_refused(producer, nothing_stored):
    error = _single_error(_post(producer, {"items": [GOOD, {"text": "c", "parents": [987654]}]}))

    assert error == {
        "index": 1,
        "field": "parents.0",
        "message": "item 987654 does not exist in 'demo'",
    }


def test_parent_from_another_dataset_is_refused(producer, other_dataset):
    from tests.factories import ItemFactory

    foreign = ItemFactory(dataset=other_dataset, text="lives elsewhere")
    events = AuditEvent.objects.count()

    error = _single_error(_post(producer, {"items": [{"text": "c", "parents": [foreign.pk]}]}))

    assert error == {
        "index": 0,
        "field": "parents.0",
        "message": f"item {foreign.pk} does not exist in 'demo'",
    }
    assert list(Item.objects.values_list("pk", flat=True)) == [foreign.pk]
    assert AuditEvent.objects.count() == events


def test_parent_external_id_from_another_source_is_refused(producer, nothing_stored):
    response = _post(
        producer,
        {
            "items": [
                {"text": "p", "external_id": "p1", "source": "a"},
                {"text": "c", "parents": ["p1"], "source": "b"},
            ]
        },
    )

    error = _single_error(response)
    assert error == {
        "index": 1,
        "field": "parents.0",
        "message": "no item with external_id 'p1' in this source",
    }


def test_item_cannot_be_its_own_parent(producer, nothing_stored):
    error = _single_error(
        _post(producer, {"items": [{"text": "me", "external_id": "me", "parents": ["me"]}]})
    )

    assert error == {
        "index": 0,
        "field": "parents.0",
        "message": "an item cannot be its own parent",
    }


def test_cycle_inside_a_batch_is_refused(producer, nothing_stored):
    response = _post(
        producer,
        {
            "items": [
                GOOD,
                {"text": "a", "external_id": "a", "parents": ["c"]},
                {"text": "b", "external_id": "b", "parents": ["a"]},
                {"text": "c", "external_id": "c", "parents": ["b"]},
            ]
        },
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": i, "field": "parents", "message": "parents form a cycle: [1, 2, 3]"}
        for i in (1, 2, 3)
    ]


def test_cycle_is_reported_beside_other_parent_errors(producer, nothing_stored):
    response = _post(
        producer,
        {
            "items": [
                {"text": "a", "external_id": "a", "parents": ["b"]},
                {"text": "b", "external_id": "b", "parents": ["a"]},
                {"text": "orphan", "parents": [424242]},
            ]
        },
    )

    assert response.status_code == 400
    assert {(e["index"], e["field"]) for e in response.json()["errors"]} == {
        (2, "parents.0"),
        (0, "parents"),
        (1, "parents"),
    }


PLAIN_BODY_CASES = [
    ("plain ASCII", b'{"items": [{"text": "fine, tab\\t newline\\n quote\\" slash\\/"}]}', True),
    ("plain UTF-8", '{"items": [{"text": "caf\u00e9 \u00a0 \u20ac \U0001f600"}]}'.encode(), True),
    ("escape \\u", b'{"items": [{"text": "a\\u0001"}]}', False),
    ("escape \\u of a letter", b'{"items": [{"text": "\\u0041"}]}', False),
    ("escape \\b", b'{"items": [{"text": "a\\bb"}]}', False),
    ("escape \\f", b'{"items": [{"text": "a\\fb"}]}', False),
    ("raw DEL", b'{"items": [{"text": "a\x7fb"}]}', False),
    ("raw C1", '{"items": [{"text": "next\u0085line"}]}'.encode(), False),
    ("escaped backslash before u", b'{"items": [{"text": "C:\\\\users"}]}', False),
]


@pytest.mark.parametrize(
    ("body", "plain"), [c[1:] for c in PLAIN_BODY_CASES], ids=[c[0] for c in PLAIN_BODY_CASES]
)
def test_json_strings_plain_only_for_bodies_without_control_escapes(body, plain):
    from corpus.api_support import json_strings_plain

    assert json_strings_plain(body) is plain


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"items": [{"text": "ok"}, {"text": "a\\u0007"}]}', "control character U+0007"),
        (b'{"items": [{"text": "ok"}, {"text": "a\\bb"}]}', "control character U+0008"),
        (b'{"items": [{"text": "ok"}, {"text": "a\\fb"}]}', "control character U+000C"),
        (b'{"items": [{"text": "ok"}, {"text": "a\x7fb"}]}', "control character U+007F"),
        ('{"items": [{"text": "ok"}, {"text": "a\u009fb"}]}'.encode(), "U+009F"),
        (b'{"items": [{"text": "ok"}, {"text": "a\\ud800b"}]}', "lone surrogate"),
    ],
)
def test_raw_bodies_with_control_characters_are_refused(producer, nothing_stored, payload, message):
    error = _single_error(_raw(producer, payload))
    assert (error["index"], error["field"]) == (1, "text")
    assert message in error["message"]


def test_a_plain_body_skips_the_per_string_checks(producer, monkeypatch):
    # The raw body was searched once, so its strings are not checked one by one; a body that
    # might hold a control character (an escape) is.
    from corpus.services import ingest

    calls = []
    check = ingest._check_string
    monkeypatch.setattr(
        ingest,
        "_check_string",
        lambda value, *, what: calls.append(value) or check(value, what=what),
    )
    item = {"text": "plain", "external_id": "e-1", "generator_model": "m"}
    assert _raw(producer, orjson.dumps({"items": [item]})).status_code == 201
    assert calls == []
    escaped = b'{"items": [{"text": "\\u0041 letter", "external_id": "e-2"}]}'
    assert _raw(producer, escaped).status_code == 201
    assert "A letter" in calls and "e-2" in calls
