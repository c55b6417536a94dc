"""Thin task shells; every task is safe to run twice."""

from celery import shared_task

from review.services import queue


@shared_task
def claims_expire_task() -> int:
    """Periodic (beat, every minute): delete run-out leases and audit each expiry. Items are
    back in the queue as soon as their lease runs out; this only tidies and records it."""
    return queue.claims_expire()
