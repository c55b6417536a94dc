"""GET, POST /api/v1/datasets/: admin tokens only."""

import pytest

from corpus.models import AuditEvent, Dataset
from corpus.services.audit import SYSTEM
from corpus.services.audit_verify import audit_verify
from corpus.services.tokens import token_create, token_revoke

URL = "/api/v1/datasets/"


def _slugs(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [d["slug"] for d in response.json()["results"]]


def test_admin_lists_all_datasets(api, admin_token, dataset, other_dataset):
    response = api.as_token(admin_token).get(URL)

    assert response.status_code == 200
    assert _slugs(response) == ["demo", "other"]
    assert set(response.json()["results"][0]) == {"slug", "name", "description", "created_at"}


def test_admin_creates_a_dataset_with_one_audit_event(api, admin_token):
    events = AuditEvent.objects.count()

    response = api.as_token(admin_token).post(
        URL, {"slug": "poems", "name": "Poems", "description": "short verse"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["slug"] == "poems"
    dataset = Dataset.objects.get(slug="poems")
    assert (dataset.name, dataset.description) == ("Poems", "short verse")
    assert AuditEvent.objects.count() == events + 1
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.action, event.object_id, event.dataset_id) == (
        "dataset.created",
        "poems",
        dataset.pk,
    )
    assert event.actor == f"token:{admin_token.pk}:root"
    assert audit_verify()[1] is None


def test_description_is_optional(api, admin_token):
    response = api.as_token(admin_token).post(URL, {"slug": "bare", "name": "Bare"}, format="json")

    assert response.status_code == 201
    assert Dataset.objects.get(slug="bare").description == ""


@pytest.mark.parametrize("token_fixture", ["produce_token", "consume_token", "other_produce_token"])
def test_tokens_without_admin_scope_are_refused(api, request, dataset, token_fixture):
    client = api.as_token(request.getfixturevalue(token_fixture))

    listed = client.get(URL)
    created = client.post(URL, {"slug": "sneaky", "name": "Sneaky"}, format="json")

    assert listed.status_code == 403
    assert created.status_code == 403
    assert created.json() == {"errors": [{"message": "This token lacks the 'admin' scope."}]}
    assert not Dataset.objects.filter(slug="sneaky").exists()


def test_admin_token_bound_to_a_dataset_sees_only_it_and_cannot_create(api, dataset, other_dataset):
    token, key = token_create(actor=SYSTEM, name="demo-admin", scopes=["admin"], dataset=dataset)
    token.key = key
    client = api.as_token(token)

    listed = client.get(URL)
    created = client.post(URL, {"slug": "more", "name": "More"}, format="json")

    assert _slugs(listed) == ["demo"]
    assert created.status_code == 403
    assert not Dataset.objects.filter(slug="more").exists()


def test_revoked_admin_token_is_401(api, admin_token):
    token_revoke(actor=SYSTEM, token=admin_token)

    assert api.as_token(admin_token).get(URL).status_code == 401
    assert api.as_token(admin_token).post(URL, {"slug": "x", "name": "X"}).status_code == 401


def test_no_token_is_401_with_challenge(api, db):
    for response in (api.get(URL), api.post(URL, {"slug": "x", "name": "X"}, format="json")):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_wrong_method_is_405(api, admin_token, method):
    response = getattr(api.as_token(admin_token), method)(URL, {}, format="json")

    assert response.status_code == 405


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "has space", "name": "X"}, "slug"),
        ({"slug": "", "name": "X"}, "slug"),
        ({"slug": "s" * 65, "name": "X"}, "slug"),
        ({"name": "X"}, "slug"),
        ({"slug": "ok"}, "name"),
        ({"slug": "ok", "name": "n" * 201}, "name"),
    ],
)
def test_invalid_dataset_is_400(api, admin_token, body, field):
    events = AuditEvent.objects.count()

    response = api.as_token(admin_token).post(URL, body, format="json")

    assert response.status_code == 400
    assert field in {e.get("field") for e in response.json()["errors"]}
    assert not Dataset.objects.exists()
    assert AuditEvent.objects.count() == events


def test_existing_slug_is_400(api, admin_token, dataset):
    events = AuditEvent.objects.count()

    response = api.as_token(admin_token).post(URL, {"slug": "demo", "name": "Again"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"field": "slug", "message": "dataset 'demo' already exists"}]
    }
    assert Dataset.objects.get(slug="demo").name != "Again"
    assert AuditEvent.objects.count() == events
