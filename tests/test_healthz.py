"""/healthz: database, Redis and worker liveness as JSON; 503 when one is down."""

from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError
from django.test import override_settings

from config.celery import worker_heartbeat

DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "unix:///nonexistent/synthgate-test/redis.sock?db=1",
        "KEY_PREFIX": "sgtest",
    }
}


def test_all_ok_is_200(client, db):
    # Given a worker that has just written its heartbeat
    worker_heartbeat()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert {"database", "redis", "worker"} <= set(body["checks"])
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["worker"]["pid"] > 0
    assert body["checks"]["database"]["vendor"] in {"sqlite", "postgresql"}


def test_head_is_answered_for_load_balancers(client, db):
    worker_heartbeat()

    assert client.head("/healthz").status_code == 200


def test_missing_worker_heartbeat_is_503(client, db):
    # Given no worker heartbeat (the key expired: the worker died or never started)
    cache.delete(settings.SYNTHGATE_WORKER_HEARTBEAT_KEY)

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["worker"] == {
        "ok": False,
        "error": "no worker heartbeat in the last 20 seconds",
    }
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["redis"]["ok"]


def test_redis_down_is_503_with_a_clear_error(client, db):
    with override_settings(CACHES=DEAD_REDIS):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["database"]["ok"]
    redis = body["checks"]["redis"]
    assert redis["ok"] is False
    assert "ConnectionError" in redis["error"]
    assert "/nonexistent/synthgate-test/redis.sock" in redis["error"]
    assert body["checks"]["worker"] == {"ok": False, "error": "unknown: Redis is down"}


def test_database_down_is_503(client, db, monkeypatch):
    worker_heartbeat()

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr("corpus.health.connection.cursor", refuse)
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {
        "ok": False,
        "error": "OperationalError: connection refused",
    }
    assert response.json()["checks"]["redis"]["ok"]


def test_healthz_needs_no_credentials_and_refuses_writes(client, db):
    worker_heartbeat()

    assert client.get("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405
    assert client.delete("/healthz").status_code == 405


def test_periodic_tasks_piling_up_on_an_unconsumed_queue_is_degraded(client, db, settings):
    # Given a worker alive, and beat's tasks sent (as beat sends them, routes applied) where no
    # worker takes them: more of them than the backlog allows
    from config.celery import app

    worker_heartbeat()
    settings.SYNTHGATE_MAINTENANCE_BACKLOG = 3
    for _ in range(3):
        app.send_task("review.tasks.claims_expire_task")
    assert client.get("/healthz").json()["checks"]["maintenance"] == {"ok": True, "waiting": 3}
    app.send_task("corpus.tasks.audit_anchor_task")

    response = client.get("/healthz")

    # Then the service still serves (200) but says why it is degraded
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    check = body["checks"]["maintenance"]
    assert check["ok"] is False and check["waiting"] == 4
    assert "--queues maintenance" in check["error"]
    # and the scoring queue does not count
    app.send_task("corpus.tasks.items_score_task", args=[[]])
    assert client.get("/healthz").json()["checks"]["maintenance"]["waiting"] == 4
