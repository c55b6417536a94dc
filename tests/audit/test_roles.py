"""Role changes and token revocation, through the service, the admin and the command line."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from corpus.models import ApiToken, AuditEvent
from corpus.services.audit import actor_for_user
from corpus.services.roles import RoleError, user_roles_set


@pytest.fixture
def roles(db):
    return {name: Group.objects.get_or_create(name=name)[0] for name in ("reviewer", "admin")}


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- the service ---------------------------------------------------------------------------------


def test_setting_roles_appends_one_event_with_the_difference(admin_user, reviewer, roles):
    diff = user_roles_set(
        actor=actor_for_user(admin_user), user=reviewer, is_staff=True, groups=["reviewer"]
    )

    assert diff == {"is_staff": [False, True], "groups": {"added": ["reviewer"], "removed": []}}
    [event] = _events("user.roles_changed")
    assert event.actor == actor_for_user(admin_user)
    assert (event.object_type, event.object_id) == ("user", str(reviewer.pk))
    assert event.payload == {"username": "alice", "roles": diff}
    reviewer.refresh_from_db()
    assert reviewer.is_staff


def test_setting_the_same_roles_again_changes_and_audits_nothing(admin_user, reviewer, roles):
    user_roles_set(actor="system", user=reviewer, groups=["reviewer"])

    assert user_roles_set(actor="system", user=reviewer, groups=["reviewer"]) == {}
    assert len(_events("user.roles_changed")) == 1


def test_an_unknown_group_is_refused_and_nothing_changes(reviewer, roles):
    with pytest.raises(RoleError, match="no such group"):
        user_roles_set(actor="system", user=reviewer, is_staff=True, groups=["wizards"])

    reviewer.refresh_from_db()
    assert not reviewer.is_staff
    assert not AuditEvent.objects.filter(action="user.roles_changed").exists()


# --- the Django admin ----------------------------------------------------------------------------


def _user_form(user, **changes):
    # The admin's date field has whole seconds: store it so, or every save would change it.
    user.date_joined = user.date_joined.replace(microsecond=0)
    user.save(update_fields=["date_joined"])
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [],
    }
    for flag in ("is_active", "is_staff", "is_superuser"):
        if getattr(user, flag):
            data[flag] = "on"
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        elif value is True:
            data[name] = "on"
        else:
            data[name] = value
    return data


def test_admin_role_change_is_one_event(client, admin_user, reviewer, roles):
    client.force_login(admin_user)

    response = client.post(
        f"/admin/auth/user/{reviewer.pk}/change/",
        _user_form(reviewer, is_staff=True, groups=[roles["admin"].pk], email="a@example.org"),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    [event] = AuditEvent.objects.filter(object_type="user")
    assert event.action == "user.roles_changed"
    assert event.actor == actor_for_user(admin_user)
    assert event.payload["roles"] == {
        "is_staff": [False, True],
        "groups": {"added": ["admin"], "removed": []},
    }
    assert event.payload["changed"] == {"email": ["", "a@example.org"]}


def test_admin_save_without_changes_appends_nothing(client, admin_user, reviewer):
    client.force_login(admin_user)

    response = client.post(f"/admin/auth/user/{reviewer.pk}/change/", _user_form(reviewer))

    assert response.status_code == 302
    assert not AuditEvent.objects.filter(object_type="user").exists()


def test_admin_non_role_change_is_user_changed(client, admin_user, reviewer):
    client.force_login(admin_user)

    client.post(f"/admin/auth/user/{reviewer.pk}/change/", _user_form(reviewer, first_name="Al"))

    [event] = AuditEvent.objects.filter(object_type="user")
    assert event.action == "user.changed"
    assert "roles" not in event.payload


def test_admin_user_creation_and_deletion_are_audited(client, admin_user):
    from django.contrib.auth import get_user_model

    client.force_login(admin_user)
    response = client.post(
        "/admin/auth/user/add/",
        {
            "username": "dora",
            "usable_password": "true",
            "password1": "a-long-passphrase-1",
            "password2": "a-long-passphrase-1",
        },
    )
    assert response.status_code == 302
    dora = get_user_model().objects.get(username="dora")

    client.post(f"/admin/auth/user/{dora.pk}/delete/", {"post": "yes"})

    created, deleted = AuditEvent.objects.filter(object_type="user").order_by("seq")
    assert (created.action, created.payload["username"]) == ("user.created", "dora")
    assert (deleted.action, deleted.object_id) == ("user.deleted", str(dora.pk))
    assert "password" not in str(deleted.payload)


def test_admin_password_change_is_audited(client, admin_user, reviewer):
    client.force_login(admin_user)

    response = client.post(
        f"/admin/auth/user/{reviewer.pk}/password/",
        {
            "usable_password": "true",
            "password1": "another-long-passphrase",
            "password2": "another-long-passphrase",
        },
    )

    assert response.status_code == 302
    [event] = _events("user.password_changed")
    assert event.payload == {"via": "admin", "username": "alice", "usable": True}


def test_admin_group_permission_change_is_audited(client, admin_user, roles):
    client.force_login(admin_user)
    permission = Permission.objects.get(codename="view_auditevent")

    response = client.post(
        f"/admin/auth/group/{roles['admin'].pk}/change/",
        {"name": "admin", "permissions": [permission.pk]},
    )

    assert response.status_code == 302
    [event] = _events("group.changed")
    assert event.payload["changed"] == {
        "permissions": {"added": ["corpus.view_auditevent"], "removed": []}
    }


def test_admin_dataset_reviewer_change_is_audited(client, admin_user, dataset, outsider):
    client.force_login(admin_user)

    response = client.post(
        f"/admin/corpus/dataset/{dataset.pk}/change/",
        {
            "slug": dataset.slug,
            "name": dataset.name,
            "description": "",
            "reviewers": [outsider.pk],
            "created_at_0": dataset.created_at.strftime("%Y-%m-%d"),
            "created_at_1": dataset.created_at.strftime("%H:%M:%S"),
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    [event] = _events("dataset.changed")
    removed = sorted(
        dataset.reviewers.model.objects.filter(username__in=["alice", "bob"]).values_list(
            "pk", flat=True
        )
    )
    assert event.payload["changed"]["reviewers"] == {"added": [outsider.pk], "removed": removed}
    assert event.dataset_id == dataset.pk


# --- tokens --------------------------------------------------------------------------------------


def test_admin_revoke_action_revokes_and_audits(client, admin_user, produce_token, consume_token):
    client.force_login(admin_user)

    response = client.post(
        "/admin/corpus/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [produce_token.pk]},
    )

    assert response.status_code == 302
    produce_token.refresh_from_db()
    consume_token.refresh_from_db()
    assert produce_token.revoked_at is not None and consume_token.revoked_at is None
    [event] = _events("token.revoked")
    assert event.actor == actor_for_user(admin_user)
    assert event.object_id == str(produce_token.pk)


def test_admin_cannot_edit_or_delete_tokens(client, admin_user, produce_token):
    client.force_login(admin_user)

    client.post(
        f"/admin/corpus/apitoken/{produce_token.pk}/change/",
        {"name": "renamed", "scopes": '["admin"]'},
    )
    delete = client.post(f"/admin/corpus/apitoken/{produce_token.pk}/delete/", {"post": "yes"})

    produce_token.refresh_from_db()
    assert (produce_token.name, produce_token.scopes) == ("producer", ["produce"])
    assert delete.status_code == 403
    assert ApiToken.objects.filter(pk=produce_token.pk).exists()


def test_revoke_token_command_by_name(produce_token, capsys):
    call_command("revoke_token", "producer")

    produce_token.refresh_from_db()
    assert produce_token.revoked_at is not None
    [event] = _events("token.revoked")
    assert event.actor.startswith("cli:")
    assert "revoked token 'producer'" in capsys.readouterr().out


def test_revoke_token_command_by_key_prefix(produce_token, consume_token):
    call_command("revoke_token", consume_token.key[:8])

    consume_token.refresh_from_db()
    produce_token.refresh_from_db()
    assert consume_token.revoked_at is not None and produce_token.revoked_at is None


def test_revoke_token_command_twice_changes_nothing(produce_token, capsys):
    call_command("revoke_token", "producer")
    call_command("revoke_token", "producer")

    assert "already revoked" in capsys.readouterr().out
    assert len(_events("token.revoked")) == 1


def test_revoke_token_command_refuses_unknown_and_ambiguous(produce_token, dataset):
    from tests.conftest import _token

    _token(["consume"], dataset, name="producer")

    with pytest.raises(CommandError, match="no token named 'ghost'"):
        call_command("revoke_token", "ghost")
    with pytest.raises(CommandError, match="'producer' matches 2 active tokens"):
        call_command("revoke_token", "producer")
    assert not _events("token.revoked")


def test_other_corpus_rows_edited_in_the_admin_are_audited(client, admin_user, dataset):
    client.force_login(admin_user)

    response = client.post(
        "/admin/corpus/source/add/",
        {
            "dataset": dataset.pk,
            "name": "scraper",
            "created_at_0": "2026-01-02",
            "created_at_1": "03:04:05",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    [event] = _events("source.created")
    assert event.payload["fields"]["name"] == "scraper"
    assert event.dataset_id == dataset.pk
