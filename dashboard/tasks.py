"""Thin task shells for the dashboard: the periodic rollup and the alert webhook."""

import logging

from celery import shared_task
from django.conf import settings

from corpus.models import Dataset
from corpus.tasks import TRANSIENT

logger = logging.getLogger(__name__)


@shared_task
def dashboard_rollup_all_task() -> int:
    """Fan out: one rollup task per dataset."""
    ids = list(Dataset.objects.order_by("pk").values_list("pk", flat=True))
    for dataset_id in ids:
        dashboard_rollup_task.delay(dataset_id)
    return len(ids)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=5, retry_kwargs={"max_retries": 3})
def dashboard_rollup_task(dataset_id: int) -> bool:
    """Roll up one dataset's figures, then evaluate its alerts against them."""
    from dashboard.services.alerts import alerts_evaluate
    from dashboard.services.rollup import dashboard_rollup

    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        return False
    dashboard_rollup(dataset=dataset)
    alerts_evaluate(dataset=dataset)
    return True


@shared_task(bind=True, max_retries=settings.SYNTHGATE_ALERT_WEBHOOK_RETRIES)
def alert_webhook_task(self, alert_id: int, event: str) -> int | str | None:  # type: ignore[no-untyped-def]
    """POST one alert event; on a transient failure retry after 2, 4, 8, ... seconds (at most
    five minutes apart), and when retries run out record the failure in the audit trail."""
    from dashboard.services import alerts

    try:
        return alerts.alert_webhook_send(alert_id=alert_id, event=event)
    except alerts.WebhookError as exc:
        if self.request.retries >= self.max_retries:
            logger.warning("alert webhook for alert %s gave up: %s", alert_id, exc)
            alerts.alert_webhook_failed(alert_id=alert_id, event=event, error=str(exc))
            return "failed"
        raise self.retry(exc=exc, countdown=min(300, 2 ** (self.request.retries + 1))) from exc
