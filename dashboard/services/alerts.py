"""Alerts: per-dataset thresholds on the dashboard's figures.

``alerts_evaluate`` compares the latest figures (the rollup's, plus the live scoring backlog)
with the dataset's ``AlertRules``. A crossing opens one ``Alert`` and appends ``alert.fired``; when
the value comes back (or the threshold is turned off) the alert is closed and ``alert.cleared``
is appended. A condition that lasts fires once: at most one open alert per (dataset, kind,
subject), held by a partial unique constraint and by the state row lock taken first.

Each opening and closing also POSTs a JSON webhook when the dataset has a webhook URL and
``SYNTHGATE_ALERT_WEBHOOK_SECRET`` is set, after commit, from a Celery task that retries with
backoff (``dashboard.tasks.alert_webhook_task``). The body is signed:
``X-Synthgate-Signature: sha256=<hex HMAC-SHA256 of the raw body under the secret>``.

The banner on a dataset's pages reads the open alerts from the cache this module writes
(``alerts_cache_key``), so a page pays no query for it; /healthz reads the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from corpus.models import Dataset, Item
from corpus.services.audit import SYSTEM, audit_append
from dashboard.models import Alert, AlertKind, AlertRules, DashboardDay, DashboardState

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Synthgate-Signature"
EVENT_HEADER = "X-Synthgate-Event"
FIRED = "alert.fired"
CLEARED = "alert.cleared"
RULE_FIELDS = (
    "max_synthetic_share",
    "min_tail_coverage",
    "max_near_duplicate_rate",
    "max_backlog_minutes",
    "webhook_url",
)


class WebhookError(Exception):
    """A delivery that may succeed if tried again (network error, timeout, 429, 5xx)."""


@dataclass(frozen=True, slots=True)
class Check:
    kind: str
    subject: str
    value: float
    threshold: float
    crossed: bool
    reason: str


def alerts_cache_key(slug: str) -> str:
    return f"synthgate:dashboard:alerts:{slug}"


def alert_rules_get(*, dataset: Dataset) -> AlertRules:
    return AlertRules.objects.filter(dataset=dataset).first() or AlertRules(dataset=dataset)


def backlog_oldest(*, dataset: Dataset) -> datetime | None:
    """When the oldest item still waiting to be scored arrived (the item_pending_created
    partial index holds only pending items)."""
    return Item.objects.filter(dataset=dataset, state=Item.State.PENDING).aggregate(
        oldest=Min("created_at")
    )["oldest"]


def _latest_snapshot(dataset: Dataset) -> DashboardDay | None:
    return (
        DashboardDay.objects.filter(dataset=dataset, approved_human__isnull=False)
        .order_by("-day")
        .first()
    )


def alert_checks(*, dataset: Dataset, rules: AlertRules, now: datetime) -> list[Check]:
    """Every threshold that is set, with the current value and whether it is crossed."""
    checks: list[Check] = []
    day = _latest_snapshot(dataset)
    if rules.max_synthetic_share is not None and day is not None:
        total = (day.approved_human or 0) + (day.approved_synthetic or 0)
        total += day.approved_unknown or 0
        if total:
            share = (day.approved_synthetic or 0) / total
            checks.append(
                Check(
                    AlertKind.SYNTHETIC_SHARE,
                    "",
                    share,
                    rules.max_synthetic_share,
                    share > rules.max_synthetic_share,
                    f"synthetic share of the approved set is {share:.1%}, "
                    f"above {rules.max_synthetic_share:.1%}",
                )
            )
    if rules.min_tail_coverage is not None and day is not None and day.tail_coverage is not None:
        coverage = day.tail_coverage
        checks.append(
            Check(
                AlertKind.TAIL_COVERAGE,
                "",
                coverage,
                rules.min_tail_coverage,
                coverage < rules.min_tail_coverage,
                f"tail coverage is {coverage:.1%}, below {rules.min_tail_coverage:.1%}",
            )
        )
    if rules.max_near_duplicate_rate is not None:
        state = DashboardState.objects.filter(dataset=dataset).values_list("figures", flat=True)
        figures = next(iter(state), {}) or {}
        for row in figures.get("near_duplicates", {}).get("generators", []):
            name = row["generator"] or "(none)"
            checks.append(
                Check(
                    AlertKind.NEAR_DUPLICATE_RATE,
                    row["generator"],
                    row["rate"],
                    rules.max_near_duplicate_rate,
                    row["rate"] > rules.max_near_duplicate_rate,
                    f"near-duplicate rate of generator {name} is {row['rate']:.1%}, "
                    f"above {rules.max_near_duplicate_rate:.1%}",
                )
            )
    if rules.max_backlog_minutes is not None:
        oldest = backlog_oldest(dataset=dataset)
        minutes = (now - oldest).total_seconds() / 60 if oldest else 0.0
        checks.append(
            Check(
                AlertKind.SCORING_BACKLOG,
                "",
                round(minutes, 1),
                rules.max_backlog_minutes,
                minutes > rules.max_backlog_minutes,
                f"the oldest unscored item has waited {minutes:.0f} minutes, "
                f"more than {rules.max_backlog_minutes}",
            )
        )
    return checks


def _payload(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "subject": alert.subject,
        "value": alert.value,
        "threshold": alert.threshold,
        "reason": alert.reason,
        "fired_at": alert.fired_at.isoformat(),
        "cleared_at": alert.cleared_at.isoformat() if alert.cleared_at else None,
    }


def _notify(dataset: Dataset, rules: AlertRules, alert: Alert, event: str) -> None:
    if not (rules.webhook_url and settings.SYNTHGATE_ALERT_WEBHOOK_SECRET):
        return
    from dashboard.tasks import alert_webhook_task

    alert_webhook_task.delay_on_commit(alert.pk, event)


@transaction.atomic
def alerts_evaluate(*, dataset: Dataset, now: datetime | None = None) -> list[tuple[str, Alert]]:
    """Open and close the dataset's alerts against its rules; returns what changed as
    (``alert.fired`` | ``alert.cleared``, alert). Serialized per dataset by the state row lock."""
    now = now or timezone.now()
    DashboardState.objects.get_or_create(dataset=dataset)
    DashboardState.objects.select_for_update().get(dataset=dataset)
    rules = alert_rules_get(dataset=dataset)
    checks = {(c.kind, c.subject): c for c in alert_checks(dataset=dataset, rules=rules, now=now)}
    open_alerts = {
        (a.kind, a.subject): a
        for a in Alert.objects.filter(dataset=dataset, cleared_at__isnull=True)
    }
    changes: list[tuple[str, Alert]] = []
    for key, check in checks.items():
        if check.crossed and key not in open_alerts:
            alert = Alert.objects.create(
                dataset=dataset,
                kind=check.kind,
                subject=check.subject,
                value=check.value,
                threshold=check.threshold,
                reason=check.reason,
                fired_at=now,
            )
            changes.append((FIRED, alert))
    for key, alert in open_alerts.items():
        check = checks.get(key)
        if check is not None and check.crossed:
            continue
        # Conditional: only the run that closes it appends the event.
        if Alert.objects.filter(pk=alert.pk, cleared_at__isnull=True).update(cleared_at=now):
            alert.cleared_at = now
            if check is not None:
                alert.value = check.value
            changes.append((CLEARED, alert))
    for event, alert in changes:
        audit_append(
            actor=SYSTEM,
            action=event,
            object_type="alert",
            object_id=alert.pk,
            payload={**_payload(alert), "dataset": dataset.slug},
            dataset=dataset,
        )
        _notify(dataset, rules, alert, event)
    open_now = list(Alert.objects.filter(dataset=dataset, cleared_at__isnull=True).order_by("id"))
    reasons = [{"kind": a.kind, "subject": a.subject, "reason": a.reason} for a in open_now]
    transaction.on_commit(lambda: _cache_set(dataset.slug, reasons))
    return changes


def _cache_set(slug: str, reasons: list[dict[str, str]]) -> None:
    try:
        cache.set(alerts_cache_key(slug), reasons, timeout=None)
    except Exception:  # noqa: BLE001 - the banner is a convenience; /healthz reads the database
        logger.warning("could not cache the alerts of %s", slug, exc_info=True)


def alerts_open(*, dataset: Dataset | None = None) -> list[Alert]:
    alerts = Alert.objects.filter(cleared_at__isnull=True).select_related("dataset")
    if dataset is not None:
        alerts = alerts.filter(dataset=dataset)
    return list(alerts.order_by("dataset__slug", "id"))


class AlertRulesError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@transaction.atomic
def alert_rules_set(*, dataset: Dataset, actor: str, values: dict[str, Any]) -> AlertRules:
    """Save a dataset's thresholds (validated by the caller's form; checked again here), audit
    the change as ``alert_rules.changed`` with before and after, and re-evaluate the alerts."""
    errors: dict[str, str] = {}
    for name in ("max_synthetic_share", "min_tail_coverage", "max_near_duplicate_rate"):
        value = values.get(name)
        if value is not None and not 0 <= value <= 1:
            errors[name] = "Enter a share between 0 and 1."
    if values.get("webhook_url") and not settings.SYNTHGATE_ALERT_WEBHOOK_SECRET:
        errors["webhook_url"] = (
            "Set SYNTHGATE_ALERT_WEBHOOK_SECRET on the server first: webhooks are always signed."
        )
    if errors:
        raise AlertRulesError(errors)
    AlertRules.objects.get_or_create(dataset=dataset)
    rules = AlertRules.objects.select_for_update().get(dataset=dataset)
    before = {name: getattr(rules, name) for name in RULE_FIELDS}
    after = {
        name: values.get(name) if name != "webhook_url" else values.get(name) or ""
        for name in RULE_FIELDS
    }
    if before == after:
        return rules
    for name, value in after.items():
        setattr(rules, name, value)
    rules.version += 1
    rules.updated_at = timezone.now()
    rules.save()
    audit_append(
        actor=actor,
        action="alert_rules.changed",
        object_type="dataset",
        object_id=dataset.pk,
        payload={
            "dataset": dataset.slug,
            "version": rules.version,
            "changed": {k: [before[k], after[k]] for k in RULE_FIELDS if before[k] != after[k]},
        },
        dataset=dataset,
    )
    alerts_evaluate(dataset=dataset)
    return rules


# --- the webhook ---------------------------------------------------------------------------------


def webhook_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(*, alert: Alert, event: str) -> bytes:
    document = {
        "event": event,
        "dataset": alert.dataset.slug,
        "alert": _payload(alert),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def alert_webhook_send(*, alert_id: int, event: str) -> int | None:
    """POST one alert event to its dataset's webhook URL; returns the HTTP status, or None when
    there is nothing to send (no alert, no URL, no secret). Raises WebhookError for what a retry
    may mend; other 4xx answers are final and logged."""
    alert = Alert.objects.select_related("dataset").filter(pk=alert_id).first()
    secret = settings.SYNTHGATE_ALERT_WEBHOOK_SECRET
    if alert is None or not secret:
        return None
    url = alert_rules_get(dataset=alert.dataset).webhook_url
    if not url:
        return None
    body = webhook_body(alert=alert, event=event)
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked by the form
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "synthgate-alerts",
            EVENT_HEADER: event,
            SIGNATURE_HEADER: webhook_signature(body, secret),
        },
    )
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.SYNTHGATE_ALERT_WEBHOOK_TIMEOUT
        ) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise WebhookError(f"HTTP {exc.code} from {url}") from exc
        logger.warning("alert webhook to %s refused with HTTP %s; not retried", url, exc.code)
        return int(exc.code)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}"[:300]) from exc


@transaction.atomic
def alert_webhook_failed(*, alert_id: int, event: str, error: str) -> None:
    """Retries ran out: say so in the audit trail, where an admin looks for what happened."""
    alert = Alert.objects.select_related("dataset").filter(pk=alert_id).first()
    if alert is None:
        return
    audit_append(
        actor=SYSTEM,
        action="alert.webhook_failed",
        object_type="alert",
        object_id=alert.pk,
        payload={"event": event, "error": error[:300]},
        dataset=alert.dataset,
    )


def health_check_alerts() -> dict[str, Any]:
    """/healthz's "alerts" entry: the open alerts with their reasons. Open alerts make the
    service "degraded" (HTTP 200), like a broken audit chain: it still serves."""
    try:
        alerts = alerts_open()
    except Exception as exc:  # noqa: BLE001 - a health check reports failures, it does not raise
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {
        "ok": not alerts,
        "open": [
            {"dataset": a.dataset.slug, "kind": a.kind, "subject": a.subject, "reason": a.reason}
            for a in alerts
        ],
    }
