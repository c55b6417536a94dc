"""Audit for changes made through the Django admin.

The admin writes to the database directly, around the services, so each admin class that can
change something derives from ``AuditedAdmin``: one save, one audit event, in the admin's own
transaction (``changeform_view`` and ``delete_view`` run atomically; bulk deletion is wrapped
here). Users and groups record their role changes (staff and superuser flags, groups,
permissions). ``corpus/admin.py`` registers every class, once; this module registers nothing.
"""

import hashlib
import json
from datetime import date, datetime
from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.db import models, transaction
from django.http import HttpRequest

from corpus.models import Dataset
from corpus.services.audit import actor_for_user, audit_append, audit_append_many
from corpus.services.roles import roles_diff, user_roles_snapshot

LONG = 200


def _plain(value: Any) -> Any:
    """A JSON value for the audit payload; long text and binary values become their digest, so
    an edited 100 kB item text records that (and how) it changed without copying it."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        raw = bytes(value)
        return {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | dict):
        text = json.dumps(value, sort_keys=True, default=str)
        if len(text) <= LONG:
            return json.loads(text)
        return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "chars": len(text)}
    text = str(value)
    if len(text) <= LONG:
        return text
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "chars": len(text)}


def model_snapshot(obj: models.Model, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every field as stored: concrete fields by value, many-to-many fields as sorted pks."""
    snapshot: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name not in exclude and not field.primary_key:
            snapshot[field.name] = _plain(field.value_from_object(obj))
    for field in obj._meta.many_to_many:
        if field.name not in exclude:
            snapshot[field.name] = sorted(
                getattr(obj, field.name).values_list("pk", flat=True) if obj.pk else []
            )
    return snapshot


def snapshot_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    diff: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if isinstance(old, list) and isinstance(new, list):
            diff[name] = {
                "added": [x for x in new if x not in old],
                "removed": [x for x in old if x not in new],
            }
        else:
            diff[name] = [old, new]
    return diff


class AuditedAdmin(admin.ModelAdmin):
    """One audit event per admin add, change or delete: ``<type>.created|changed|deleted``."""

    audit_object_type = ""
    audit_exclude: tuple[str, ...] = ()

    def audit_snapshot(self, obj: models.Model) -> dict[str, Any]:
        return model_snapshot(obj, self.audit_exclude)

    def audit_dataset(self, obj: models.Model) -> Dataset | None:
        if isinstance(obj, Dataset):
            return obj
        dataset = getattr(obj, "dataset", None)
        return dataset if isinstance(dataset, Dataset) else None

    def audit_event(
        self, obj: models.Model, before: dict[str, Any] | None, after: dict[str, Any]
    ) -> tuple[str, dict[str, Any]] | None:
        """(action, payload) for a save, None when nothing changed."""
        if before is None:
            return f"{self.audit_object_type}.created", {"via": "admin", "fields": after}
        diff = snapshot_diff(before, after)
        if not diff:
            return None
        return f"{self.audit_object_type}.changed", {"via": "admin", "changed": diff}

    def _append(self, request: HttpRequest, obj: models.Model, action: str, payload: dict) -> None:
        audit_append(
            actor=actor_for_user(request.user),
            action=action,
            object_type=self.audit_object_type,
            object_id=obj.pk,
            dataset=self.audit_dataset(obj),
            payload=payload,
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        before = None
        if change:
            stored = self.model._default_manager.filter(pk=obj.pk).first()
            before = self.audit_snapshot(stored) if stored is not None else None
        form._audit_before = before
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # After the inlines and many-to-many fields are saved: the event sees the whole change.
        super().save_related(request, form, formsets, change)
        obj = form.instance
        event = self.audit_event(
            obj, getattr(form, "_audit_before", None), self.audit_snapshot(obj)
        )
        if event is not None:
            self._append(request, obj, *event)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        pk, payload = obj.pk, {"via": "admin", "fields": self.audit_snapshot(obj)}
        dataset = self.audit_dataset(obj)
        super().delete_model(request, obj)
        audit_append(
            actor=actor_for_user(request.user),
            action=f"{self.audit_object_type}.deleted",
            object_type=self.audit_object_type,
            object_id=pk,
            dataset=dataset,
            payload=payload,
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with transaction.atomic():
            actor = actor_for_user(request.user)
            events = [
                {
                    "actor": actor,
                    "action": f"{self.audit_object_type}.deleted",
                    "object_type": self.audit_object_type,
                    "object_id": obj.pk,
                    "dataset": self.audit_dataset(obj),
                    "payload": {"via": "admin", "fields": self.audit_snapshot(obj)},
                }
                for obj in queryset
            ]
            super().delete_queryset(request, queryset)
            audit_append_many(events=events)


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    """Role changes (flags, groups, permissions) are named as such: ``user.roles_changed``."""

    audit_object_type = "user"
    audit_exclude = ("password", "last_login", "groups", "user_permissions")

    def audit_snapshot(self, obj: Any) -> dict[str, Any]:
        fields = model_snapshot(obj, self.audit_exclude + ("is_active", "is_staff", "is_superuser"))
        return {"fields": fields, "roles": user_roles_snapshot(obj), "password": obj.password}

    def audit_event(
        self, obj: Any, before: dict[str, Any] | None, after: dict[str, Any]
    ) -> tuple[str, dict[str, Any]] | None:
        username = obj.get_username()
        if before is None:
            return "user.created", {"via": "admin", "username": username, "roles": after["roles"]}
        roles = roles_diff(before["roles"], after["roles"])
        changed = snapshot_diff(before["fields"], after["fields"])
        if before["password"] != after["password"]:
            changed["password"] = "changed"
        if not roles and not changed:
            return None
        payload: dict[str, Any] = {"via": "admin", "username": username, "changed": changed}
        if roles:
            payload["roles"] = roles
        return ("user.roles_changed" if roles else "user.changed"), payload

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        # The snapshot carries the password hash for change detection; a deletion must not log it.
        obj_pk, name, roles = obj.pk, obj.get_username(), user_roles_snapshot(obj)
        admin.ModelAdmin.delete_model(self, request, obj)
        audit_append(
            actor=actor_for_user(request.user),
            action="user.deleted",
            object_type="user",
            object_id=obj_pk,
            payload={"via": "admin", "username": name, "roles": roles},
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with transaction.atomic():
            actor = actor_for_user(request.user)
            events = [
                {
                    "actor": actor,
                    "action": "user.deleted",
                    "object_type": "user",
                    "object_id": obj.pk,
                    "payload": {
                        "via": "admin",
                        "username": obj.get_username(),
                        "roles": user_roles_snapshot(obj),
                    },
                }
                for obj in queryset
            ]
            admin.ModelAdmin.delete_queryset(self, request, queryset)
            audit_append_many(events=events)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        # Django's view saves the form and logs the change without a transaction of its own;
        # one here keeps the password change and its audit event together.
        with transaction.atomic():
            request._audit_password_change = True  # type: ignore[attr-defined]
            return super().user_change_password(request, id, form_url)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_change(request, obj, message)
        if getattr(request, "_audit_password_change", False):
            audit_append(
                actor=actor_for_user(request.user),
                action="user.password_changed",
                object_type="user",
                object_id=obj.pk,
                payload={
                    "via": "admin",
                    "username": obj.get_username(),
                    "usable": obj.has_usable_password(),
                },
            )
        return entry


class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    """A group's permissions are every member's role: changing them is audited by name."""

    audit_object_type = "group"

    def audit_snapshot(self, obj: Any) -> dict[str, Any]:
        return {
            "name": obj.name,
            "permissions": sorted(
                f"{app}.{codename}"
                for app, codename in obj.permissions.values_list(
                    "content_type__app_label", "codename"
                )
            )
            if obj.pk
            else [],
        }
