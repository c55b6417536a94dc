"""No input gives a 500 (issue 14.2): deep JSON, bodies that would balloon in memory, NUL bytes
and lone surrogates wherever text reaches the database, numbers JSON cannot keep exactly."""

import json
import tracemalloc

import pytest
from django.contrib.auth.models import Group

from corpus.json_input import JsonInputError, JsonLimits, json_parse
from corpus.models import AuditEvent, Item
from corpus.services.audit import SYSTEM, audit_append
from corpus.services.audit_verify import audit_verify
from tests.conftest import _token
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

ITEMS = "/api/v1/datasets/demo/items/"
POLICY = "/api/v1/datasets/demo/export-policy/"
LIMITS = JsonLimits(max_values=2_000_000, max_depth=32)


@pytest.fixture
def root(dataset):  # type: ignore[no-untyped-def]
    """A token with every scope, for every dataset: gets past auth into the validation."""
    return _token(["produce", "consume", "admin"], None, name="root-all")


def _send(client, method, path, body: bytes, token):  # type: ignore[no-untyped-def]
    return getattr(client, method)(
        path,
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )


JSON_ENDPOINTS = [
    ("post", ITEMS),
    ("put", POLICY),
    ("post", "/api/v1/datasets/demo/exports/preview"),
    ("post", "/api/v1/datasets/demo/exports/"),
    ("post", "/api/v1/datasets/"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
@pytest.mark.parametrize("depth", [40, 1_100, 100_000])
def test_deep_json_is_400_on_every_endpoint(client, root, method, path, depth):
    body = b'{"items": ' + b"[" * depth + b"]" * depth + b"}"

    response = _send(client, method, path, body, root)

    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    if path == ITEMS and depth <= 1024:
        # Within orjson's cap, ingest's own schema refuses the shape (items are objects).
        assert "valid dictionary" in message
    else:
        assert "nested" in message


def test_depth_error_names_the_field(client, root):
    metadata: dict = {}
    inner = metadata
    for _ in range(40):
        inner["k"] = {}
        inner = inner["k"]
    body = json.dumps({"items": [{"text": "ok"}, {"text": "deep", "metadata": metadata}]})

    error = _send(client, "post", ITEMS, body.encode(), root).json()["errors"][0]

    assert (error["index"], error["field"]) == (1, "metadata")
    assert error["message"].startswith("k.k.k.")
    assert "nested deeper than 32 levels" in error["message"]


def test_a_body_of_millions_of_empty_items_is_refused_before_it_is_built():
    # 8 MiB of "{}," is 2.8 million values: refused by counting bytes, in far less memory than
    # the body itself (parsed, it would have been ~200 MB of dicts).
    body = b'{"items": [' + b"{}," * (8 * 1024 * 1024 // 3) + b"{}]}"
    tracemalloc.start()
    try:
        with pytest.raises(JsonInputError) as refused:
            json_parse(body, limits=LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert refused.value.status == 413
    assert peak < len(body) // 4


def test_too_many_values_is_413_over_http(client, root, settings):
    settings.SYNTHGATE_MAX_JSON_VALUES = 1000
    body = b'{"items": [' + b"{}," * 2000 + b"{}]}"

    response = _send(client, "post", ITEMS, body, root)

    assert response.status_code == 413
    assert "more than 1000 JSON values" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (b"123456789012345678901234567890", None),
        (b"1e400", None),
        (b"-1e400", None),
        (b"9007199254740993", None),  # 2^53 + 1
        (b"-9007199254740993", None),
        (b"18446744073709551615", None),
        (b"9007199254740992", 2**53),
        (b"1.5e308", None),
        (b"1e20", None),
        (b"12345678901234567", None),
        (b"1e15", 1e15),
        (b"0.1", 0.1),
        (b"1e-300", 1e-300),
        (b"-2.5E+3", -2500.0),
    ],
)
def test_metadata_numbers_are_kept_exactly_or_refused(client, root, value, stored):
    body = b'{"items": [{"text": "number ' + value + b'", "metadata": {"n": ' + value + b"}}]}"

    response = _send(client, "post", ITEMS, body, root)

    if stored is None:
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert (error["index"], error["field"]) == (0, "metadata")
        assert error["message"].startswith("n: ")
        assert "out of range" in error["message"] and "string" in error["message"]
        assert not Item.objects.exists()
    else:
        assert response.status_code == 201
        assert Item.objects.get().metadata == {"n": stored}


def test_long_digit_runs_inside_strings_are_accepted(client, root):
    body = b'{"items": [{"text": "id 123456789012345678901234567890", "metadata": {"n": 1}}]}'

    assert _send(client, "post", ITEMS, body, root).status_code == 201


@pytest.mark.parametrize(
    "key",
    ["\\u0000", "a\\u0000b", "\\ud800", "x\\udfff"],
)
def test_export_policy_keys_with_nul_or_lone_surrogates_are_400(client, root, key):
    body = ('{"source_caps": {"' + key + '": {"share": 0.5}}}').encode()

    response = _send(client, "put", POLICY, body, root)

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"].startswith("source_caps.")
    assert "key" in error["message"]


def test_export_policy_page_refuses_nul_keys(client, admin_user, dataset):
    client.force_login(admin_user)
    text = '{"source_caps": {"\\u0000": {"share": 0.5}}}'

    response = client.post(f"/datasets/{dataset.slug}/exports/policy", {"policy": text})

    assert response.status_code == 400
    assert "NUL" in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        ITEMS + "?source=a%00b",
        ITEMS + "?state=%00",
        "/api/v1/audit/?actor=%00",
        "/api/v1/audit/?action=x%00",
        "/api/v1/audit/?object=item:%00",
        "/api/v1/datasets/demo/feed/?cursor=%00",
        "/api/v1/datasets/demo/items/?%00=1",
    ],
)
def test_nul_in_api_query_filters_is_400(client, root, path):
    response = client.get(path, HTTP_AUTHORIZATION=f"Token {root.key}")

    assert response.status_code == 400
    assert "NUL" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("query", ["actor=%00", "action=a%00", "object=item:1%00", "dataset=%00"])
def test_nul_in_audit_page_filters_is_400(client, admin_user, query):
    client.force_login(admin_user)

    assert client.get(f"/audit/?{query}").status_code == 400


def test_nul_in_the_login_username_is_400_not_500(client, db):
    response = client.post("/accounts/login/", {"username": "ad\x00min", "password": "x"})

    assert response.status_code == 400


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "ad\x00min"},
        {"username": "lone \ud800 surrogate"},
        {"ke\x00y": ["a\x00", {"\udfff": 1}]},
    ],
)
def test_audit_payloads_store_nul_and_surrogates_escaped(payload):
    event = audit_append(
        actor=SYSTEM,
        action="test.hostile",
        object_type="login",
        object_id="ad\x00m",
        payload=payload,
    )

    stored = AuditEvent.objects.get(seq=event.seq)
    text = json.dumps(stored.payload)
    assert "\\u0000" in text or "\\ud" in text or "\\\\ud" in text
    assert stored.object_id == "ad\\u0000m"
    assert audit_verify()[1] is None


def test_review_form_with_nul_is_400(client, dataset, reviewer):
    reviewer.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    item = ItemFactory(dataset=dataset, state="queued")
    client.force_login(reviewer)

    response = client.post(
        f"/review/demo/items/{item.pk}/decide", {"verdict": "approve", "note": "x\x00"}
    )

    assert response.status_code == 400
