"""Logins, failed logins and logouts are audited; failures are limited and leak nothing."""

import pytest

from corpus.models import AuditEvent

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _low_limit(settings):
    settings.SYNTHGATE_LOGIN_FAILURE_LIMIT = 3


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_a_login_is_audited(client, reviewer):
    response = client.post(LOGIN, {"username": "alice", "password": "pw"})

    assert response.status_code == 302
    [event] = _events("auth.login")
    assert event.actor == f"user:{reviewer.pk}:alice"
    assert (event.object_type, event.object_id) == ("user", str(reviewer.pk))
    assert event.payload == {"ip": "127.0.0.1"}
    reviewer.refresh_from_db()
    assert reviewer.last_login is not None


def test_a_failed_login_is_audited(client, reviewer):
    response = client.post(LOGIN, {"username": "alice", "password": "wrong"})

    assert response.status_code == 200
    [event] = _events("auth.login_failed")
    assert event.actor == "anonymous"
    assert event.payload == {"username": "alice", "ip": "127.0.0.1"}
    assert not _events("auth.login")


def test_a_failed_login_does_not_tell_whether_the_user_exists(client, reviewer):
    known = client.post(LOGIN, {"username": "alice", "password": "wrong"})
    unknown = client.post(LOGIN, {"username": "nobody", "password": "wrong"})

    assert known.status_code == unknown.status_code == 200
    assert known.context["form"].non_field_errors() == unknown.context["form"].non_field_errors()
    assert [e.payload["username"] for e in _events("auth.login_failed")] == ["alice", "nobody"]


def test_repeated_failures_are_refused_without_a_password_check(client, reviewer):
    for _ in range(3):
        client.post(LOGIN, {"username": "alice", "password": "wrong"})

    # Even the right password is refused now, and only the first refusal is audited.
    first = client.post(LOGIN, {"username": "alice", "password": "pw"})
    second = client.post(LOGIN, {"username": "alice", "password": "pw"})

    assert first.status_code == second.status_code == 429
    assert "Too many failed logins" in first.content.decode()
    assert len(_events("auth.login_failed")) == 3
    assert len(_events("auth.login_throttled")) == 1
    assert not _events("auth.login")
    assert "_auth_user_id" not in client.session


def test_unknown_usernames_are_limited_the_same_way(client, db):
    for _ in range(3):
        client.post(LOGIN, {"username": "ghost", "password": "x"}, REMOTE_ADDR="10.0.0.1")

    response = client.post(LOGIN, {"username": "ghost", "password": "x"}, REMOTE_ADDR="10.0.0.2")

    # The limit is per username too: a new address does not reset it.
    assert response.status_code == 429


def test_a_success_resets_the_username_count(client, reviewer):
    for _ in range(2):
        client.post(LOGIN, {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    assert client.post(LOGIN, {"username": "alice", "password": "pw"}).status_code == 302
    client.logout()

    client.post(LOGIN, {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.3")

    assert client.post(LOGIN, {"username": "alice", "password": "pw"}).status_code == 302


def test_showing_the_login_page_is_not_audited(client, db):
    assert client.get(LOGIN).status_code == 200
    assert not AuditEvent.objects.exists()


def test_a_logout_is_audited(client, reviewer):
    client.force_login(reviewer)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    [event] = _events("auth.logout")
    assert event.actor == f"user:{reviewer.pk}:alice"


def test_the_admin_login_goes_through_the_audited_one(client, db):
    response = client.get("/admin/login/?next=/admin/corpus/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/corpus/"


def test_the_admin_login_does_not_redirect_elsewhere(client, db):
    response = client.get("/admin/login/?next=https://evil.example/")

    assert response["Location"] == "/accounts/login/?next=/admin/"
