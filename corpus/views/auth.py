"""Log in and out, audited.

Every login and every failed login appends an audit event (in the view, not through Django's
auth signals: this codebase calls follow-up work explicitly). A failed login looks the same to
the person trying whether or not the username exists: Django's form gives one message for both
and its backend hashes a password either way; the audit event records the attempted name.

Failed logins are limited per client address and per username
(``SYNTHGATE_LOGIN_FAILURE_LIMIT`` within ``SYNTHGATE_LOGIN_FAILURE_WINDOW_SECONDS``): every
attempt takes a slot (an atomic Redis INCR) before its password is checked, a success gives it
back; beyond the limit the answer is 429 without a password check, and only the first refused
attempt of a window is audited, so a password-guessing run cannot flood the audit chain either.
"""

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from corpus.auth import attempt_reserve, client_address
from corpus.services.audit import ANONYMOUS, actor_for_user, audit_append, storable_text

logger = logging.getLogger(__name__)

THROTTLED = "Too many failed logins. Wait a few minutes, then try again."
MAX_USERNAME = 150


client_ip = client_address


def _keys(ip: str, username: str) -> list[str]:
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"synthgate:login-failures:ip:{ip}", f"synthgate:login-failures:user:{name}"]


def _attempt_release(key: str) -> None:
    """Give back the slot a successful login took from its client address."""
    try:
        if cache.get(key):
            cache.decr(key)
    except Exception as exc:  # noqa: BLE001 - see attempt_reserve
        logger.warning("login throttle unavailable: %s", exc)


def _first_refusal(keys: list[str]) -> bool:
    try:
        return bool(
            cache.add(
                keys[0] + ":refused",
                1,
                timeout=settings.SYNTHGATE_LOGIN_FAILURE_WINDOW_SECONDS,
            )
        )
    except Exception:  # noqa: BLE001 - see attempt_reserve
        return True


class _RefusedForm(AuthenticationForm):
    """The login form of a throttled attempt: refused before any password is checked."""

    def clean(self) -> dict[str, Any]:
        raise ValidationError(THROTTLED, code="throttled")


class AuditedLoginView(auth_views.LoginView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", ""))[:MAX_USERNAME]
        ip = client_ip(request)
        keys = _keys(ip, username)
        allowed = attempt_reserve(
            keys,
            limit=settings.SYNTHGATE_LOGIN_FAILURE_LIMIT,
            window=settings.SYNTHGATE_LOGIN_FAILURE_WINDOW_SECONDS,
        )
        if not allowed:
            if _first_refusal(keys):
                with transaction.atomic():
                    audit_append(
                        actor=ANONYMOUS,
                        action="auth.login_throttled",
                        object_type="login",
                        object_id=storable_text(username)[:64] or "(blank)",
                        payload={"username": username, "ip": ip},
                    )
            form = _RefusedForm(request, data=request.POST)
            form.is_valid()
            return self.render_to_response(self.get_context_data(form=form), status=429)
        self._audit_keys = keys
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        # The login (last_login, the new session key) and its event commit together.
        with transaction.atomic():
            response = super().form_valid(form)
            audit_append(
                actor=actor_for_user(user),
                action="auth.login",
                object_type="user",
                object_id=user.pk,
                payload={"ip": client_ip(self.request)},
            )
        # A success is not a failure: the username starts afresh, the address gets its slot back.
        try:
            cache.delete(self._audit_keys[1])
        except Exception as exc:  # noqa: BLE001 - see attempt_reserve
            logger.warning("login throttle unavailable: %s", exc)
        _attempt_release(self._audit_keys[0])
        return response

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        username = str(form.data.get("username", ""))[:MAX_USERNAME]
        with transaction.atomic():
            audit_append(
                actor=ANONYMOUS,
                action="auth.login_failed",
                object_type="login",
                object_id=storable_text(username)[:64] or "(blank)",
                payload={"username": username, "ip": client_ip(self.request)},
            )
        return super().form_invalid(form)


class AuditedLogoutView(auth_views.LogoutView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        with transaction.atomic():
            if user.is_authenticated:
                audit_append(
                    actor=actor_for_user(user),
                    action="auth.logout",
                    object_type="user",
                    object_id=user.pk,
                    payload={"ip": client_ip(request)},
                )
            return super().post(request, *args, **kwargs)


def admin_login_redirect(request: HttpRequest) -> HttpResponse:
    """The Django admin's own login form would bypass the audited one: send it there."""
    from django.contrib.auth.views import redirect_to_login
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.GET.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/admin/"
    return redirect_to_login(target)
