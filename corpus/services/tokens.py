"""API tokens: created with a key shown once; only its sha256 is kept."""

import secrets
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from corpus.models import ApiToken, Dataset
from corpus.services.audit import audit_append

KEY_PREFIX = "sg_"


class TokenError(ValueError):
    """Bad input for a token operation; the message is meant for the user."""


@transaction.atomic
def token_create(
    *, actor: str, name: str, scopes: Iterable[str], dataset: Dataset | None = None
) -> tuple[ApiToken, str]:
    """Returns the token row and its key; the key is not stored and cannot be shown again."""
    scopes = sorted(set(scopes))
    unknown = sorted(set(scopes) - set(ApiToken.Scope.values))
    if not scopes:
        raise TokenError("a token needs at least one scope")
    if unknown:
        raise TokenError(
            f"unknown scope(s): {', '.join(unknown)}; use {', '.join(ApiToken.Scope.values)}"
        )
    if not name.strip():
        raise TokenError("a token needs a name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        key_hash=ApiToken.hash_key(key),
        key_prefix=key[:10],
        scopes=scopes,
        dataset=dataset,
    )
    audit_append(
        actor=actor,
        action="token.created",
        object_type="token",
        object_id=token.pk,
        dataset=dataset,
        payload={"name": name, "scopes": scopes, "prefix": token.key_prefix},
    )
    return token, key


@transaction.atomic
def token_revoke(*, actor: str, token: ApiToken) -> ApiToken:
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not updated:
        return token  # already revoked: nothing changes, nothing to audit
    token.refresh_from_db()
    audit_append(
        actor=actor,
        action="token.revoked",
        object_type="token",
        object_id=token.pk,
        dataset=token.dataset,
        payload={"name": token.name},
    )
    return token
