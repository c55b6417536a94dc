"""API tokens: ``Authorization: Token <key>``; scopes produce / consume / admin; optionally bound
to one dataset."""

from typing import Any

from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from corpus.models import ApiToken, Dataset

# Refresh last_used_at at most this often per token, so a busy pipeline is not a write per call.
LAST_USED_RESOLUTION_SECONDS = 60


class ApiTokenAuthentication(authentication.TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        token = ApiToken.objects.filter(key_hash=ApiToken.hash_key(key)).first()
        if token is None or not token.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if (
            token.last_used_at is None
            or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        ):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        # DRF's request.user: the token is the principal; views read request.auth.
        return TokenUser(token), token


class TokenUser:
    """What request.user is for a token request: authenticated, not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False

    def __init__(self, token: ApiToken) -> None:
        self.token = token
        self.pk = None

    def __str__(self) -> str:
        return f"token {self.token.name}"


def require_scope(request: Request, scope: str, dataset: Dataset | None = None) -> ApiToken:
    """403 unless the request's token has ``scope`` (and may touch ``dataset``)."""
    token = request.auth
    if not isinstance(token, ApiToken):
        raise exceptions.NotAuthenticated()
    if not token.has_scope(scope):
        raise exceptions.PermissionDenied(f"This token lacks the '{scope}' scope.")
    if dataset is not None and not token.can_access(dataset):
        raise exceptions.PermissionDenied(f"This token is not valid for dataset '{dataset.slug}'.")
    return token


def require_dataset_access(request: Request, dataset: Dataset) -> ApiToken:
    """Any scope, as long as the token may see this dataset."""
    token = request.auth
    if not isinstance(token, ApiToken):
        raise exceptions.NotAuthenticated()
    if not token.can_access(dataset):
        raise exceptions.PermissionDenied(f"This token is not valid for dataset '{dataset.slug}'.")
    return token


class HasToken(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiToken)


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """Per-token rate limit (429 beyond it); anonymous requests are refused before this.

    Fails open when Redis is unreachable: a cache outage must not stop producers from handing
    over data (DESIGN: a lost Redis delays work, never loses it).
    """

    scope = "token"

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError):
            return True

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
