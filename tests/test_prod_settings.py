"""The production settings pass Django's deployment checks and are ready for a TLS proxy."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration  # each test starts a Python process


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.prod",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="synthgate.example.org",
    )
    env.update(extra)
    return env


SHOW = "import django; django.setup(); from django.conf import settings; print({})"


def _setting(name: str, **extra: str) -> str:
    code = SHOW.format(f"repr(settings.{name})")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(**extra), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_check_deploy_passes():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_hsts_secure_cookies_and_the_proxy_header():
    assert _setting("SECURE_HSTS_SECONDS") == "31536000"
    assert _setting("SESSION_COOKIE_SECURE") == _setting("CSRF_COOKIE_SECURE") == "True"
    assert _setting("SECURE_PROXY_SSL_HEADER") == "('HTTP_X_FORWARDED_PROTO', 'https')"
    assert _setting("DEBUG", DEBUG="true") == "False"


def test_without_a_proxy_the_forwarded_header_is_not_trusted():
    assert _setting("SECURE_PROXY_SSL_HEADER", SYNTHGATE_BEHIND_TLS_PROXY="false") == "None"


def test_make_run_settings_keep_debug_off_unless_asked():
    env = _env(DJANGO_SETTINGS_MODULE="config.settings.dev")
    env.pop("DEBUG", None)
    code = SHOW.format("settings.DEBUG")
    off = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    on = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DEBUG": "1"},
        capture_output=True,
        text=True,
    )

    assert (off.stdout.strip(), on.stdout.strip()) == ("False", "True")


def test_commands_read_the_secret_make_run_generated(tmp_path):
    (tmp_path / "secret_key").write_text("the-generated-key\n")
    env = _env(DJANGO_SETTINGS_MODULE="config.settings.dev", SYNTHGATE_VAR_DIR=str(tmp_path))
    env.pop("SECRET_KEY")
    code = SHOW.format("settings.SECRET_KEY")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.stdout.strip() == "the-generated-key", done.stderr
