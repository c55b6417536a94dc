"""Lock order under load, on PostgreSQL: claims, decisions, undos, bulk decisions and exports
running at once, each in its own thread and connection. Every unit of work takes the audit chain
lock first (``corpus.services.write_batch``), then rows, as an export's snapshot does: nothing
deadlocks, nothing is lost (every item's state, feed entries, the reviewers' day counts and the
audit chain agree with the decisions), and no exported item is ever reopened."""

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from corpus.models import Export, ExportItem, FeedEntry, Item
from corpus.services.audit import SYSTEM, audit_verify
from corpus.services.exports.build import export_build, export_request
from review.models import Decision, ReviewerDay
from review.services import ReviewError
from review.services.decisions import decision_record_and_next, decision_undo, decisions_bulk
from review.services.queue import item_claim
from tests.factories import UserFactory
from tests.review.conftest import add_to_group, make_item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SECONDS = 6  # each worker's time budget; the whole test stays well under half a minute


@pytest.fixture(autouse=True)
def _postgres_only(settings, tmp_path) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks, SKIP LOCKED and real concurrency need PostgreSQL")
    settings.SYNTHGATE_EXPORT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "exports")},
    }
    settings.SYNTHGATE_EXPORT_TMP_DIR = str(tmp_path / "staging")


def _run(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run each callable in its own thread, all released at once; re-raise the first error.
    A thread still running after its budget plus a margin is a deadlock."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)
    errors: list[BaseException] = []

    def run(index: int, work: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = work()
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(i, w), daemon=True) for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 30)
    assert not any(t.is_alive() for t in threads), "a worker never finished: a deadlock"
    if errors:
        raise errors[0]
    return results


def test_claim_decide_undo_bulk_and_export_at_once_keep_lock_order(dataset):
    users = [add_to_group(UserFactory(username=f"lo{i}"), "reviewer") for i in range(4)]
    dataset.reviewers.add(*users)
    items = [make_item(dataset, priority=float(i % 5)) for i in range(160)]
    deadline = time.monotonic() + SECONDS
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def note(what: str) -> None:
        with lock:
            counts[what] += 1

    def triage(user: Any, undo_every: int) -> None:
        # Claim, then decide and lease the next, undoing every so often.
        claim = item_claim(dataset=dataset, reviewer=user).claim
        n = 0
        while claim is not None and time.monotonic() < deadline:
            n += 1
            verdict = "approve" if n % 3 else "reject"
            try:
                _, nxt = decision_record_and_next(
                    dataset=dataset,
                    reviewer=user,
                    item_id=claim.item_id,
                    verdict=verdict,
                    reason="" if verdict == "approve" else "duplicate",
                )
                note("decided")
                claim = nxt.claim
            except ReviewError:
                note("refused")
                claim = item_claim(dataset=dataset, reviewer=user).claim
            if n % undo_every == 0:
                try:
                    decision_undo(dataset=dataset, reviewer=user)
                    note("undone")
                except ReviewError:
                    note("undo refused")  # exported meanwhile, or nothing to undo
                claim = item_claim(dataset=dataset, reviewer=user).claim

    def bulk(user: Any) -> None:
        ids = [item.pk for item in items]
        start = 0
        while time.monotonic() < deadline and start < len(ids):
            outcome = decisions_bulk(
                dataset=dataset, reviewer=user, item_ids=ids[start : start + 10], verdict="approve"
            )
            note("bulk")
            start += 10
            if outcome.settled:
                try:
                    decision_undo(dataset=dataset, reviewer=user)
                    note("undone")
                except ReviewError:
                    note("undo refused")

    def exports() -> None:
        while time.monotonic() < deadline:
            export = export_request(dataset=dataset, actor=SYSTEM, mode="accumulate")
            export_build(export_id=export.pk)
            note("exported")

    _run(
        [
            lambda: triage(users[0], undo_every=3),
            lambda: triage(users[1], undo_every=5),
            lambda: triage(users[2], undo_every=4),
            lambda: bulk(users[3]),
            exports,
        ]
    )

    # Everything ran, concurrently.
    assert counts["decided"] > 10 and counts["bulk"] > 0 and counts["exported"] > 0
    assert counts["undone"] > 0
    # No lost update: each item's state is what its live decisions say (one approval settles)...
    live = Counter()
    verdicts: dict[int, set[str]] = {}
    for item_id, verdict in Decision.objects.filter(undone_at__isnull=True).values_list(
        "item_id", "verdict"
    ):
        live[item_id] += 1
        verdicts.setdefault(item_id, set()).add(verdict)
    for item in Item.objects.filter(dataset=dataset, pk__in=[i.pk for i in items]):
        if not live[item.pk]:
            assert item.state == Item.State.QUEUED, item.pk
        else:
            assert live[item.pk] == 1, item.pk  # nobody decided an item someone else had
            expected = "approved" if verdicts[item.pk] == {"approve"} else "rejected"
            assert item.state == expected, item.pk
        # ... the feed says the same: approvals less undos of approvals ...
        kinds = Counter(FeedEntry.objects.filter(item_id=item.pk).values_list("kind", flat=True))
        assert kinds["approved"] - kinds["reopened"] == (item.state == Item.State.APPROVED)
    # ... the feed's numbering has no gap and no repeat ...
    seqs = list(FeedEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    # ... each reviewer's count of the day is their live decisions ...
    for user in users:
        day = ReviewerDay.objects.filter(reviewer=user, dataset=dataset).first()
        mine = Decision.objects.filter(reviewer=user, undone_at__isnull=True).count()
        assert (day.decided if day else 0) == mine, user.username
    # ... no item that an export holds went back to the queue ...
    exported = ExportItem.objects.filter(
        export__status=Export.Status.READY, included=True
    ).values_list("item_id", flat=True)
    assert not Item.objects.filter(pk__in=exported, state=Item.State.QUEUED).exists()
    # ... and the audit chain is whole.
    checked, problem = audit_verify()
    assert problem is None and checked > 0
