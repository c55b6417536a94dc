"""GET /api/v1/audit/: admin tokens only; filters; a keyset cursor."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from corpus.api_support import cursor_encode
from corpus.services.audit import SYSTEM, audit_append
from tests.audit.conftest import make_chain

URL = "/api/v1/audit/"


def _append(**kwargs):
    with transaction.atomic():
        return audit_append(**{"actor": SYSTEM, "object_type": "test", "object_id": 1, **kwargs})


def test_admin_token_reads_events_in_chain_order(api, admin_token):
    # Given the token's own creation event and three more
    make_chain(3, start=2)

    response = api.as_token(admin_token).get(URL)

    assert response.status_code == 200
    body = response.json()
    assert [e["seq"] for e in body["results"]] == [1, 2, 3, 4]
    first = body["results"][0]
    assert first["action"] == "token.created"
    assert first["object_type"] == "token"
    assert first["dataset"] is None
    assert len(first["hash"]) == 64 and first["prev_hash"] == "0" * 64
    assert body["next"] == cursor_encode({"after": 4})


def test_the_cursor_pages_through_everything_once(api, admin_token):
    make_chain(6, start=2)
    client = api.as_token(admin_token)
    seen, url = [], f"{URL}?limit=3"

    for _ in range(4):
        body = client.get(url).json()
        seen += [e["seq"] for e in body["results"]]
        url = f"{URL}?limit=3&cursor={body['next']}"

    assert seen == list(range(1, 8))
    # Polling past the end returns nothing new and the same cursor.
    assert client.get(url).json() == {"results": [], "next": cursor_encode({"after": 7})}


def test_filters_combine(api, admin_token, dataset, reviewer):
    _append(
        action="review.decided",
        object_type="item",
        object_id=42,
        dataset=dataset,
        actor=f"user:{reviewer.pk}:alice",
    )
    _append(
        action="review.skipped",
        object_type="item",
        object_id=43,
        dataset=dataset,
        actor=f"user:{reviewer.pk}:alice",
    )
    _append(
        action="items.scored",
        object_type="dataset",
        object_id="demo",
        dataset=dataset,
        payload={"queued": [42]},
    )
    client = api.as_token(admin_token)

    def seqs(query: str) -> list[str]:
        response = client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.json()
        return [e["action"] for e in response.json()["results"]]

    assert seqs("action=review.decided") == ["review.decided"]
    assert seqs("action=review.") == ["review.decided", "review.skipped"]
    assert seqs(f"actor=user:{reviewer.pk}") == ["review.decided", "review.skipped"]
    assert seqs("actor=user:9999") == []
    # An item's events include those that name it in their payload.
    assert seqs("object=item:42") == ["review.decided", "items.scored"]
    assert seqs("object=dataset:demo") == ["items.scored"]
    assert seqs("object=token") == ["token.created"]
    assert seqs("dataset=demo&action=review.") == ["review.decided", "review.skipped"]


def test_time_filters(api, admin_token):
    make_chain(2, start=2)
    client = api.as_token(admin_token)
    now = timezone.now()

    later = (now + timedelta(hours=1)).isoformat()
    earlier = (now - timedelta(hours=1)).isoformat()
    assert client.get(URL, {"since": later}).json()["results"] == []
    assert len(client.get(URL, {"since": earlier, "until": later}).json()["results"]) == 3
    assert client.get(URL, {"until": earlier}).json()["results"] == []


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("since=yesterday", "since", "must be an ISO 8601 date or time, like 2026-01-31T12:00"),
        ("dataset=nope", "dataset", "no dataset 'nope'"),
        ("object=item:abc", "object", "a type, or type:id (item:42, dataset:demo)"),
        ("limit=0", "limit", "must be an integer from 1 to 1000"),
        ("limit=1001", "limit", "must be an integer from 1 to 1000"),
        ("cursor=!!!", "cursor", "Invalid cursor."),
        (f"cursor={cursor_encode({'after': 'x'})}", "cursor", "Invalid cursor."),
    ],
)
def test_bad_parameters_are_400_with_the_field(api, admin_token, query, field, message):
    response = api.as_token(admin_token).get(f"{URL}?{query}")

    assert response.status_code == 400
    assert {"field": field, "message": message} in response.json()["errors"]


def test_a_dataset_admin_token_sees_its_dataset_only(api, dataset, other_dataset):
    from tests.conftest import _token

    token = _token(["admin"], dataset, name="demo-admin")
    _append(action="test.other", dataset=other_dataset)
    client = api.as_token(token)

    actions = [e["action"] for e in client.get(URL).json()["results"]]
    assert actions == ["token.created"]
    assert client.get(f"{URL}?dataset=other").status_code == 403


def test_one_query_for_the_page(api, admin_token, django_assert_num_queries):
    make_chain(20, start=2)
    client = api.as_token(admin_token)
    client.get(URL)  # the token's last_used_at is written once a minute, not per call

    with django_assert_num_queries(2):  # the token, the page
        response = client.get(f"{URL}?action=test.event")

    assert len(response.json()["results"]) == 20


def test_produce_and_consume_tokens_are_refused(api, produce_token, consume_token):
    for token in (produce_token, consume_token):
        response = api.as_token(token).get(URL)
        assert response.status_code == 403
        assert response.json() == {"errors": [{"message": "This token lacks the 'admin' scope."}]}


def test_no_token_is_401(api, db):
    assert api.get(URL).status_code == 401


def test_post_is_405(api, admin_token):
    assert api.as_token(admin_token).post(URL, {}, format="json").status_code == 405
