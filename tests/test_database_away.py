"""While the database is away (a restart, a failover) pages and endpoints answer 503 with
Retry-After, never 500; other errors keep Django's 500."""

import pytest
from django.db import OperationalError

import corpus.views
from corpus.models import ApiToken

pytestmark = pytest.mark.django_db


def _away(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise OperationalError("server closed the connection unexpectedly")


def test_a_page_answers_503_while_the_database_is_away(client, monkeypatch):
    client.raise_request_exception = False
    monkeypatch.setattr(corpus.views, "render", _away)

    response = client.get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_an_endpoint_answers_json_503_while_the_database_is_away(client, monkeypatch):
    client.raise_request_exception = False
    monkeypatch.setattr(ApiToken, "hash_key", staticmethod(_away))

    response = client.get("/api/v1/datasets/", HTTP_AUTHORIZATION="Token x")

    assert response.status_code == 503
    assert "database is unavailable" in response.json()["errors"][0]["message"]


def test_other_errors_are_still_500(client, monkeypatch):
    client.raise_request_exception = False

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(corpus.views, "render", broken)

    assert client.get("/").status_code == 500
