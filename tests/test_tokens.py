"""API tokens: only a hash is stored, scopes are checked, revocation is final and audited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from corpus.models import ApiToken, AuditEvent
from corpus.services.audit import SYSTEM
from corpus.services.tokens import KEY_PREFIX, TokenError, token_create, token_revoke

ITEMS_URL = "/api/v1/datasets/demo/items/"


def test_token_create_stores_only_a_hash_of_the_key(dataset):
    token, key = token_create(
        actor=SYSTEM, name="pipeline", scopes=["produce", "consume", "produce"], dataset=dataset
    )

    token.refresh_from_db()
    assert key.startswith(KEY_PREFIX)
    assert len(key) > 40
    assert token.key_hash == ApiToken.hash_key(key)
    assert token.key_prefix == key[:10]
    assert token.scopes == ["consume", "produce"]
    assert token.dataset == dataset
    stored = [str(value) for value in ApiToken.objects.filter(pk=token.pk).values().get().values()]
    assert not any(key in value for value in stored)
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.action, event.object_id) == ("token.created", str(token.pk))
    assert event.payload == {
        "name": "pipeline",
        "scopes": ["consume", "produce"],
        "prefix": key[:10],
    }


def test_two_tokens_get_different_keys(db):
    _, first = token_create(actor=SYSTEM, name="a", scopes=["consume"])
    _, second = token_create(actor=SYSTEM, name="a", scopes=["consume"])

    assert first != second


@pytest.mark.parametrize(
    ("name", "scopes", "message"),
    [
        ("t", [], "at least one scope"),
        ("t", ["produce", "delete"], "unknown scope(s): delete"),
        ("  ", ["produce"], "needs a name"),
    ],
)
def test_token_create_refuses_bad_input_and_stores_nothing(db, name, scopes, message):
    events = AuditEvent.objects.count()

    with pytest.raises(TokenError, match=message.replace("(", r"\(").replace(")", r"\)")):
        token_create(actor=SYSTEM, name=name, scopes=scopes)

    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.count() == events


def test_revoke_is_audited_once(produce_token):
    events = AuditEvent.objects.count()

    token_revoke(actor=SYSTEM, token=produce_token)
    token_revoke(actor=SYSTEM, token=produce_token)

    produce_token.refresh_from_db()
    assert produce_token.revoked_at is not None
    assert not produce_token.is_active
    assert AuditEvent.objects.count() == events + 1
    assert AuditEvent.objects.order_by("-seq").first().action == "token.revoked"


def test_revoked_token_is_refused_everywhere(api, produce_token, dataset):
    token_revoke(actor=SYSTEM, token=produce_token)
    client = api.as_token(produce_token)

    for response in (
        client.get(ITEMS_URL),
        client.post(ITEMS_URL, {"items": [{"text": "x"}]}, format="json"),
        client.get("/api/v1/datasets/"),
    ):
        assert response.status_code == 401
        assert response.json() == {"errors": [{"message": "Invalid or revoked token."}]}


@pytest.mark.parametrize(
    "header",
    ["Token", "Token a b", "Token sg_unknown", "Bearer sg_whatever", "token"],
    ids=["no key", "two keys", "unknown key", "other scheme", "lowercase keyword"],
)
def test_bad_authorization_header_is_401(api, dataset, header):
    api.credentials(HTTP_AUTHORIZATION=header)

    response = api.get(ITEMS_URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_last_used_is_recorded_at_most_once_a_minute(api, consume_token, dataset):
    client = api.as_token(consume_token)
    assert consume_token.last_used_at is None

    client.get(ITEMS_URL)
    consume_token.refresh_from_db()
    first_use = consume_token.last_used_at
    client.get(ITEMS_URL)
    consume_token.refresh_from_db()
    unchanged = consume_token.last_used_at
    ApiToken.objects.filter(pk=consume_token.pk).update(
        last_used_at=timezone.now() - timedelta(minutes=2)
    )
    client.get(ITEMS_URL)
    consume_token.refresh_from_db()

    assert first_use is not None
    assert unchanged == first_use
    assert timezone.now() - consume_token.last_used_at < timedelta(seconds=30)


def test_token_without_dataset_reaches_every_dataset(api, dataset, other_dataset, db):
    token, key = token_create(actor=SYSTEM, name="global", scopes=["consume"])
    token.key = key

    assert api.as_token(token).get(ITEMS_URL).status_code == 200
    assert api.as_token(token).get("/api/v1/datasets/other/items/").status_code == 200


def test_token_bound_to_a_dataset_reaches_only_it(api, consume_token, other_dataset):
    client = api.as_token(consume_token)

    assert client.get(ITEMS_URL).status_code == 200
    assert client.get("/api/v1/datasets/other/items/").status_code == 403


def test_scopes_do_not_imply_each_other(api, dataset):
    token, key = token_create(actor=SYSTEM, name="reader", scopes=["consume"], dataset=dataset)
    token.key = key

    ingest = api.as_token(token).post(ITEMS_URL, {"items": [{"text": "x"}]}, format="json")
    admin = api.as_token(token).get("/api/v1/datasets/")

    assert ingest.status_code == 403
    assert ingest.json() == {"errors": [{"message": "This token lacks the 'produce' scope."}]}
    assert admin.status_code == 403
