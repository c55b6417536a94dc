"""API tokens: ``Authorization: Token <key>``; scopes produce / consume / admin; optionally bound
to one dataset."""

import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from corpus.models import ApiToken, Dataset

logger = logging.getLogger(__name__)

# Refresh last_used_at at most this often per token, so a busy pipeline is not a write per call.
LAST_USED_RESOLUTION_SECONDS = 60


def attempt_reserve(keys: list[str], *, limit: int, window: int) -> bool:
    """Count one attempt against every key in one Redis transaction (MULTI: SET NX with the
    window's expiry, then INCR, per key); False when any key is now past ``limit``.

    Counting *before* the password (or token) check, atomically and for all keys at once, is
    what makes the limit exact: 40 concurrent tries against a limit of 10 get exactly 10
    checks. Fails open: a cache outage must not lock people out."""
    try:
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        pipe = client.pipeline(transaction=True)
        for key in keys:
            full = cache.make_and_validate_key(key)
            pipe.set(full, 0, ex=window, nx=True)  # starts the window; INCR never extends it
            pipe.incr(full)
        counts = pipe.execute()[1::2]
    except Exception as exc:  # noqa: BLE001 - fail open (see above)
        logger.warning("attempt throttle unavailable: %s", exc)
        return True
    return all(int(count) <= limit for count in counts)


def client_address(request: Any) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a trusted proxy
    # rewrites it, and a spoofable key would make a limit useless.
    return request.META.get("REMOTE_ADDR") or "unknown"


class BadTokenThrottled(exceptions.Throttled):
    default_detail = "Too many invalid tokens from this address; wait, then try again."


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """Token auth; invalid or revoked tokens are limited per client address
    (``SYNTHGATE_BAD_TOKEN_LIMIT`` within ``SYNTHGATE_BAD_TOKEN_WINDOW_SECONDS``): past it, 429
    without a database lookup, so guessing keys costs the guesser, not the server."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        # DRF makes a new authenticator per request: the address is this request's.
        self._bad_key = f"synthgate:bad-tokens:ip:{client_address(request)}"
        return super().authenticate(request)

    def _over_limit(self) -> bool:
        try:
            count = cache.get(self._bad_key)
        except Exception as exc:  # noqa: BLE001 - fail open, as every throttle here
            logger.warning("token throttle unavailable: %s", exc)
            return False
        return count is not None and int(count) >= settings.SYNTHGATE_BAD_TOKEN_LIMIT

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        bad_key = getattr(self, "_bad_key", None)
        if bad_key is not None and self._over_limit():
            raise BadTokenThrottled(wait=settings.SYNTHGATE_BAD_TOKEN_WINDOW_SECONDS)
        token = ApiToken.objects.filter(key_hash=ApiToken.hash_key(key)).first()
        if token is None or not token.is_active:
            if bad_key is not None and not attempt_reserve(
                [bad_key],
                limit=settings.SYNTHGATE_BAD_TOKEN_LIMIT,
                window=settings.SYNTHGATE_BAD_TOKEN_WINDOW_SECONDS,
            ):
                raise BadTokenThrottled(wait=settings.SYNTHGATE_BAD_TOKEN_WINDOW_SECONDS)
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
