"""/healthz: database, Redis and worker liveness as JSON; 503 when one is down. The audit
verifier's verdict rides along: a broken chain is "degraded" with 200 (see ``_check_audit``), and
so is a near-duplicate index that is missing or behind the database, and periodic tasks piling
up on a queue no worker consumes."""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from corpus.redis_client import redis_client


def _check_database() -> dict[str, object]:
    start = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # A connection the database dropped (a restart) is closed, so the next probe reconnects.
        connection.close()
        raise
    return {
        "ok": True,
        "vendor": connection.vendor,
        "ms": round(1000 * (time.perf_counter() - start), 1),
    }


def _check_redis() -> dict[str, object]:
    start = time.perf_counter()
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    client.ping()
    return {"ok": True, "ms": round(1000 * (time.perf_counter() - start), 1)}


def _check_worker() -> dict[str, object]:
    pid = cache.get(settings.SYNTHGATE_WORKER_HEARTBEAT_KEY)
    if pid is None:
        return {"ok": False, "error": "no worker heartbeat in the last 20 seconds"}
    return {"ok": True, "pid": pid}


def _check_audit() -> dict[str, object]:
    """The audit verifier's last verdict. Not liveness: a broken chain makes the service
    "degraded" (HTTP 200), not "down", because serving and reviewing still work and an
    orchestrator restarting the process would not mend the chain."""
    from corpus.models import AuditVerification

    state = AuditVerification.objects.filter(pk=1).first()
    if state is None:
        return {"ok": True, "verified_seq": 0, "checked_at": None}
    result: dict[str, object] = {
        "ok": state.ok,
        "verified_seq": state.verified_seq,
        "checked_at": state.checked_at.isoformat() if state.checked_at else None,
    }
    if not state.ok:
        result["problem"] = state.problem
        result["bad_seq"] = state.bad_seq
    return result


def _check_maintenance() -> dict[str, object]:
    """Whether some worker takes the periodic tasks: beat sends them to their own queue
    (config/settings/base.py), which stays near empty while one does. When none consumes it,
    lease expiry, audit anchoring and the planner statistics silently stop, and their messages
    pile up: "degraded" (200) with the count, past ``SYNTHGATE_MAINTENANCE_BACKLOG``. The broker
    is the Redis database of ``REDIS_URL``, where kombu keeps a queue as a list of its name."""
    queue = settings.SYNTHGATE_MAINTENANCE_QUEUE
    waiting = int(redis_client().llen(queue))
    if waiting > settings.SYNTHGATE_MAINTENANCE_BACKLOG:
        return {
            "ok": False,
            "waiting": waiting,
            "error": f"{waiting} periodic tasks wait on the {queue!r} queue and no worker takes "
            f"them: start one without --queues, or with --queues {queue}",
        }
    return {"ok": True, "waiting": waiting}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, object]] = {}
    for name, check in (
        ("database", _check_database),
        ("redis", _check_redis),
        ("worker", _check_worker),
    ):
        try:
            checks[name] = check()
        except Exception as exc:  # a health check reports failures, it does not raise them
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    if not checks["redis"]["ok"] and "error" in checks["worker"]:
        checks["worker"] = {"ok": False, "error": "unknown: Redis is down"}
    ok = all(check["ok"] for check in checks.values())
    try:
        checks["audit"] = _check_audit()
    except Exception as exc:  # noqa: BLE001 - reported, like the liveness checks
        checks["audit"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    # Near-duplicate scoring without a whole index would let near-copies through: "degraded"
    # (200) with the reason until a scorer has rebuilt it (corpus.services.scoring).
    try:
        from corpus.services.near_dup_index import index_health

        checks["index"] = index_health()
    except Exception as exc:  # noqa: BLE001 - reported, like the liveness checks
        checks["index"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    # Open dataset alerts (the dashboard's thresholds): "degraded" with their reasons.
    from dashboard.services.alerts import health_check_alerts

    checks["alerts"] = health_check_alerts()
    try:
        checks["maintenance"] = _check_maintenance()
    except Exception as exc:  # noqa: BLE001 - reported, like the liveness checks
        checks["maintenance"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    whole = all(checks[name]["ok"] for name in ("audit", "index", "alerts", "maintenance"))
    status = "down" if not ok else ("ok" if whole else "degraded")
    return JsonResponse({"status": status, "checks": checks}, status=200 if ok else 503)
