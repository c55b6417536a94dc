"""Tests: fast hashing, a file-backed SQLite test database per xdist worker (a real worker
process can open it), and Redis: REDIS_URL when set, else an embedded server under var/test/
that tests/conftest.py starts. Each xdist worker gets its own Redis database number."""

import os
import re

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR, celery_url

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
DEBUG = False

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_worker_index = int(_worker.removeprefix("gw")) if _worker.startswith("gw") else 0

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {
        "NAME": str(VAR_DIR / "test" / f"test-{_worker or 'main'}.sqlite3")
    }

TEST_REDIS_DIR = VAR_DIR / "test" / "redis"
_redis_base = os.environ.get("REDIS_URL") or f"unix://{TEST_REDIS_DIR / 'redis.sock'}"
# Database 0 is left to a developer's running instance; tests use 1 + the xdist worker index,
# or SYNTHGATE_TEST_REDIS_DB + the index, so that two suites can share one Redis server.
_db = int(os.environ.get("SYNTHGATE_TEST_REDIS_DB", "1")) + _worker_index
if _redis_base.startswith("unix://"):
    REDIS_URL = _redis_base.split("?")[0] + f"?db={_db}"
else:
    REDIS_URL = re.sub(r"(/\d+)?/?$", f"/{_db}", _redis_base.split("?")[0], count=1)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "sgtest",
    }
}
CELERY_BROKER_URL = celery_url(REDIS_URL)
SYNTHGATE_TEST_REDIS_EMBEDDED = not os.environ.get("REDIS_URL")
REST_FRAMEWORK = {**REST_FRAMEWORK}  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"token": "1000000/min"}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
