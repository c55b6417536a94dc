"""People's roles: staff and superuser flags, activity, groups (``reviewer``, ``admin``) and
permissions. Every change to them appends one audit event, whether it comes from this service or
from the Django admin (``corpus.admin_audit``)."""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from corpus.services.audit import audit_append

ROLE_FLAGS = ("is_active", "is_staff", "is_superuser")


class RoleError(ValueError):
    """Bad input for a role change; the message is meant for the user."""


def user_roles_snapshot(user: Any) -> dict[str, Any]:
    """A user's roles as stored now (read from the database, not from the instance)."""
    User = get_user_model()
    flags = User.objects.filter(pk=user.pk).values(*ROLE_FLAGS).first() or {}
    return {
        **flags,
        "groups": sorted(Group.objects.filter(user=user.pk).values_list("name", flat=True)),
        "permissions": sorted(
            f"{app}.{codename}"
            for app, codename in User.user_permissions.through.objects.filter(
                user_id=user.pk
            ).values_list("permission__content_type__app_label", "permission__codename")
        ),
    }


def roles_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed between two snapshots: flags as [before, after], sets as added/removed."""
    diff: dict[str, Any] = {}
    for flag in ROLE_FLAGS:
        if before.get(flag) != after.get(flag):
            diff[flag] = [before.get(flag), after.get(flag)]
    for name in ("groups", "permissions"):
        old, new = set(before.get(name, ())), set(after.get(name, ()))
        if old != new:
            diff[name] = {"added": sorted(new - old), "removed": sorted(old - new)}
    return diff


@transaction.atomic
def user_roles_set(
    *,
    actor: str,
    user: Any,
    is_active: bool | None = None,
    is_staff: bool | None = None,
    is_superuser: bool | None = None,
    groups: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Set the given roles (None leaves one as it is); returns what changed, {} for nothing.

    Locks the user row first, so two admins changing the same person's roles cannot both read
    the same "before".
    """
    User = get_user_model()
    locked = User.objects.select_for_update().filter(pk=user.pk).first()
    if locked is None:
        raise RoleError(f"user {user.pk} does not exist")
    wanted_groups: list[Group] | None = None
    if groups is not None:
        names = sorted(set(groups))
        wanted_groups = list(Group.objects.filter(name__in=names))
        missing = sorted(set(names) - {g.name for g in wanted_groups})
        if missing:
            raise RoleError(f"no such group(s): {', '.join(missing)}")
    before = user_roles_snapshot(locked)
    flags = {
        name: value
        for name, value in (
            ("is_active", is_active),
            ("is_staff", is_staff),
            ("is_superuser", is_superuser),
        )
        if value is not None
    }
    if flags:
        User.objects.filter(pk=locked.pk).update(**flags)
    if wanted_groups is not None:
        locked.groups.set(wanted_groups)
    diff = roles_diff(before, user_roles_snapshot(locked))
    if diff:
        audit_append(
            actor=actor,
            action="user.roles_changed",
            object_type="user",
            object_id=locked.pk,
            payload={"username": locked.get_username(), "roles": diff},
        )
    for name, value in flags.items():
        setattr(user, name, value)
    return diff
