"""Filter-wide bulk jobs: an admin approves or rejects every item matching the list's filters,
in chunks, by a worker (here the task run in this process, with chunks of three items).

The service and the task: which items a job decides (exactly the matching ones, none above the
id ceiling), what it skips and why, that it leaves what a bulk decision of the same items
leaves, cancel, resume after a failure and takeover after a dead worker without deciding twice,
and retries of transient errors. The pages: who may ask, the confirmation's count, field errors,
an empty filter, one job at a time, the progress that stops polling once the job is finished.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.db import OperationalError, connection
from django.utils import timezone

from corpus.models import AuditEvent, FeedEntry, Item, Source
from review import selectors
from review.models import BulkJob, Claim, Decision, ReviewPolicy
from review.selectors import ListQuery
from review.services import ReviewError, bulk_jobs
from review.services.bulk_jobs import (
    bulk_job_cancel,
    bulk_job_request,
    bulk_job_resume,
    bulk_jobs_stale,
)
from review.services.decisions import BulkOutcome, decisions_bulk
from review.services.gold import gold_mark
from review.tasks import bulk_job_run_task, bulk_jobs_sweep_task
from tests.factories import ItemFactory
from tests.review.conftest import add_to_group, login
from tests.review.test_bulk import ITEMS, _left, _world

CHUNK = 3


@pytest.fixture(autouse=True)
def small_chunks(settings):
    settings.SYNTHGATE_BULK_JOB_CHUNK = CHUNK


@pytest.fixture
def web(review_dataset):
    return Source.objects.create(dataset=review_dataset, name="web")


def items(dataset: Any, source: Any, n: int, **fields: Any) -> list[Item]:
    made = [ItemFactory(dataset=dataset, source=source, **fields) for _ in range(n)]
    return sorted(made, key=lambda item: item.pk)


def states(found: list[Item]) -> list[str]:
    by_id = dict(Item.objects.filter(pk__in=[i.pk for i in found]).values_list("pk", "state"))
    return [by_id[i.pk] for i in found]


def run(job: BulkJob) -> BulkJob:
    """What a worker does with the job's message."""
    bulk_job_run_task.apply(args=(job.pk,)).get()
    job.refresh_from_db()
    return job


def request(dataset: Any, user: Any, **kwargs: Any) -> BulkJob:
    query = kwargs.pop("query", ListQuery(state=Item.State.QUEUED))
    return bulk_job_request(
        dataset=dataset, requested_by=user, query=query, verdict="approve", **kwargs
    )


def live_decisions(found: list[Item]) -> dict[int, int]:
    counts = dict.fromkeys((i.pk for i in found), 0)
    for item_id in Decision.objects.filter(item_id__in=counts, undone_at__isnull=True).values_list(
        "item_id", flat=True
    ):
        counts[item_id] += 1
    return counts


# --- what a job decides -------------------------------------------------------------------------


def test_a_job_decides_exactly_the_matching_items_chunk_by_chunk(review_dataset, lead, web):
    # Given eleven queued items from "web" among others that do not match
    other = Source.objects.create(dataset=review_dataset, name="other")
    matching = items(review_dataset, web, 11)
    elsewhere = items(review_dataset, other, 4)
    decided_already = items(review_dataset, web, 2, state=Item.State.APPROVED)

    # When an admin asks to approve every queued "web" item and a worker runs the job
    query = ListQuery(state=Item.State.QUEUED, source=web.pk)
    job = request(review_dataset, lead, query=query)
    assert (job.state, job.total, job.id_ceiling) == ("queued", 11, matching[-1].pk)
    assert job.last_id == matching[0].pk - 1  # the walk starts at the first match
    job = run(job)

    # Then those eleven are approved by the admin, in four chunks, and nothing else changed
    assert states(matching) == ["approved"] * 11
    assert states(elsewhere) == ["queued"] * 4
    assert states(decided_already) == ["approved"] * 2
    assert (job.state, job.decided, job.settled, job.skipped, job.chunks) == ("done", 11, 11, 0, 4)
    assert (job.processed, job.last_id, job.error) == (11, matching[-1].pk, "")
    assert job.started_at is not None and job.finished_at is not None
    decisions = Decision.objects.filter(item__in=matching)
    assert set(decisions.values_list("reviewer_id", "via", "verdict")) == {
        (lead.pk, "bulk", "approve")
    }
    # ... each with its audit event and feed entry, as any approval
    decided_events = AuditEvent.objects.filter(action="review.decided", dataset=review_dataset)
    assert sorted(int(e) for e in decided_events.values_list("object_id", flat=True)) == [
        i.pk for i in matching
    ]
    assert FeedEntry.objects.filter(item__in=matching, kind="approved").count() == 11
    job_events = AuditEvent.objects.filter(object_type="bulk_job", object_id=str(job.pk))
    assert list(job_events.order_by("seq").values_list("action", flat=True)) == [
        "review.bulk_job_requested",
        "review.bulk_job_started",
        "review.bulk_job_finished",
    ]
    assert job_events.get(action="review.bulk_job_finished").payload["decided"] == 11


def test_a_job_leaves_what_a_bulk_decision_of_the_same_items_leaves(
    dataset, other_dataset, alice, bob, lead, settings
):
    # Given two identical datasets with every kind of item a selection meets (tests/review/
    # test_bulk.py: consensus items with and without other votes, settled items, gold checks, a
    # lease of bob's, a vote of alice's, her quota running out midway), alice being an admin
    settings.SYNTHGATE_BULK_JOB_CHUNK = 7  # the quota runs out inside a chunk
    add_to_group(alice, "admin")
    other_dataset.reviewers.add(alice, bob)
    job_ids = _world(dataset, alice, bob, lead, "job")
    bulk_ids = _world(other_dataset, alice, bob, lead, "bulk")
    missing = max(bulk_ids) + 1_000_000  # _left names the last id "missing"
    job_ids.append(missing)
    bulk_ids.append(missing)

    # When alice approves every item of the first by a job, and all of the second in one call
    job = run(request(dataset, alice, query=ListQuery(state="")))
    bulk = decisions_bulk(
        dataset=other_dataset, reviewer=alice, item_ids=bulk_ids, verdict="approve"
    )

    # Then both leave the same items, decisions, feed, audit events, day count and leases
    by_job = _left(dataset, job_ids, BulkOutcome())
    by_bulk = _left(other_dataset, bulk_ids, bulk)
    by_job.pop("outcome")
    by_bulk.pop("outcome")
    assert by_job == by_bulk
    # ... and the job counted what the call reported (the job never meets an id it lacks)
    left_out = {why: len(ids) for why, ids in bulk.left_out.items() if why != "missing"}
    assert {why: n["count"] for why, n in job.skipped_by_reason.items()} == left_out
    assert (job.decided, job.settled) == (len(bulk.settled) + len(bulk.recorded), len(bulk.settled))
    assert job.total == job.processed == ITEMS
    assert job.state == "done"


def test_the_job_skips_what_it_cannot_decide_and_says_why(review_dataset, lead, bob, web):
    # Given queued items: one open on bob's screen, one a gold check, one the admin voted on
    found = items(review_dataset, web, 7)
    held, gold, voted = found[1], found[3], found[5]
    now = timezone.now()
    Claim.objects.create(
        item=held,
        dataset=review_dataset,
        reviewer=bob,
        claimed_at=now,
        expires_at=now + timedelta(minutes=10),
    )
    gold_mark(actor=lead, dataset=review_dataset, item_id=gold.pk, expected="approve")
    # Unknown origin needs two approvals: the admin's vote on it waits for another.
    ReviewPolicy.objects.create(dataset=review_dataset, consensus_unknown_origin=True)
    Item.objects.filter(pk=voted.pk).update(origin=Item.Origin.UNKNOWN)
    decisions_bulk(dataset=review_dataset, reviewer=lead, item_ids=[voted.pk], verdict="approve")

    # When the admin approves every queued item
    job = run(request(review_dataset, lead))

    # Then the job finishes, having skipped those three and said why
    assert job.state == "done"
    assert (job.decided, job.skipped, job.total) == (4, 3, 7)
    assert job.skipped_by_reason == {
        "held": {"count": 1, "ids": [held.pk]},
        "gold": {"count": 1, "ids": [gold.pk]},
        "voted": {"count": 1, "ids": [voted.pk]},
    }
    assert states([held, gold, voted]) == ["queued"] * 3
    assert Claim.objects.filter(item=held, reviewer=bob).exists()
    response = login(lead).get(f"/review/demo/bulk-jobs/{job.pk}/")
    assert "open on another reviewer" in response.content.decode()


def test_items_added_after_the_admin_was_asked_are_left_alone(review_dataset, lead, web):
    # Given five queued items; the confirmation page counted them
    first = items(review_dataset, web, 5)
    page = login(lead).get("/review/demo/items/bulk-all", {"verdict": "approve"})
    assert (page.context["count"], page.context["ceiling"]) == (5, first[-1].pk)

    # When three more arrive before the admin confirms, and three more before the job runs
    later = items(review_dataset, web, 3)
    response = login(lead).post(
        "/review/demo/items/bulk-all",
        {"state": "queued", "verdict": "approve", "ceiling": first[-1].pk, "confirm": "on"},
    )
    assert response.status_code == 303
    latest = items(review_dataset, web, 3)
    job = run(BulkJob.objects.get())

    # Then only the five the admin was shown are decided
    assert (job.total, job.decided, job.id_ceiling) == (5, 5, first[-1].pk)
    assert states(first) == ["approved"] * 5
    assert states(later + latest) == ["queued"] * 6


def test_an_item_decided_by_someone_else_meanwhile_is_not_touched(review_dataset, lead, bob, web):
    # Given a job over six queued items, and bob rejects one before the worker gets to it
    found = items(review_dataset, web, 6)
    job = request(review_dataset, lead)
    decisions_bulk(
        dataset=review_dataset,
        reviewer=bob,
        item_ids=[found[4].pk],
        verdict="reject",
        reason="duplicate",
    )

    # When the job runs
    job = run(job)

    # Then bob's rejection stands and the job says one item stopped matching
    assert states(found) == ["approved"] * 4 + ["rejected", "approved"]
    assert (job.decided, job.skipped, job.unmatched) == (5, 0, 1)
    assert not Decision.objects.filter(item=found[4], reviewer=lead).exists()


# --- stopping and going on ----------------------------------------------------------------------


def test_cancel_stops_the_job_between_chunks(review_dataset, lead, web, monkeypatch):
    # Given a job over ten items, cancelled by the admin once its first chunk is in
    found = items(review_dataset, web, 10)
    job = request(review_dataset, lead)
    real = bulk_jobs._chunk

    def chunk_then_cancel(*, job: BulkJob, attempt: str) -> bool:
        more = real(job=job, attempt=attempt)
        if job.chunks == 1:
            bulk_job_cancel(job=BulkJob.objects.get(pk=job.pk), actor=lead)
        return more

    monkeypatch.setattr(bulk_jobs, "_chunk", chunk_then_cancel)

    # When the worker runs it
    job = run(job)

    # Then the first chunk stays decided and nothing after it is
    assert (job.state, job.decided, job.last_id) == ("cancelled", CHUNK, found[CHUNK - 1].pk)
    assert states(found) == ["approved"] * CHUNK + ["queued"] * (10 - CHUNK)
    assert AuditEvent.objects.filter(action="review.bulk_job_cancelled").count() == 1
    with pytest.raises(ReviewError, match="already cancelled"):
        bulk_job_cancel(job=job, actor=lead)


def test_a_failed_job_resumes_where_it_stopped_without_deciding_twice(
    review_dataset, lead, web, monkeypatch
):
    # Given a job over ten items whose third chunk fails
    found = items(review_dataset, web, 10)
    job = request(review_dataset, lead)
    real = bulk_jobs.decisions_bulk_in
    calls = []

    def third_fails(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["item_ids"])
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk_jobs, "decisions_bulk_in", third_fails)
    job = run(job)
    assert (job.state, job.error, job.decided) == ("failed", "RuntimeError: disk full", 6)
    assert states(found) == ["approved"] * 6 + ["queued"] * 4  # the third chunk rolled back

    # When the admin resumes it
    response = login(lead).post(f"/review/demo/bulk-jobs/{job.pk}/resume")
    assert response.status_code == 303
    job.refresh_from_db()
    assert job.state == "queued"
    job = run(job)

    # Then it went on from the seventh item: every item decided once
    assert (job.state, job.decided, job.total, job.error) == ("done", 10, 10, "")
    assert states(found) == ["approved"] * 10
    assert set(live_decisions(found).values()) == {1}
    assert AuditEvent.objects.filter(action="review.decided").count() == 10
    assert [ids[0] for ids in calls[3:]] == [found[6].pk, found[9].pk]


class WorkerKilled(BaseException):
    """What a worker's death looks like from inside: nothing after it runs."""


def test_a_job_whose_worker_died_is_taken_over_by_the_sweep(
    review_dataset, lead, web, monkeypatch, settings
):
    # Given a job whose worker died in its second chunk
    found = items(review_dataset, web, 8)
    job = request(review_dataset, lead)
    real = bulk_jobs.decisions_bulk_in
    calls = []

    def dies_in_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["item_ids"])
        if len(calls) == 2:
            raise WorkerKilled()
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk_jobs, "decisions_bulk_in", dies_in_second)
    with pytest.raises(WorkerKilled):
        bulk_jobs.bulk_job_run(job_id=job.pk)
    job.refresh_from_db()
    dead_attempt = job.attempt
    assert (job.state, job.decided) == ("running", CHUNK)
    assert bulk_jobs_stale() == []  # not yet: it may only be slow

    # When it has been silent long enough and the sweep runs
    settings.SYNTHGATE_BULK_JOB_STALE_SECONDS = 60
    BulkJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=2))
    monkeypatch.setattr(bulk_jobs, "decisions_bulk_in", real)
    enqueued: list[int] = []
    monkeypatch.setattr("review.tasks.bulk_job_run_task.delay", enqueued.append)
    assert bulk_jobs_sweep_task.apply().get() == 1
    assert enqueued == [job.pk]
    job = run(job)

    # Then a new run finished it from where the dead one left: every item decided once
    assert (job.state, job.decided) == ("done", 8)
    assert job.attempt != dead_attempt
    assert set(live_decisions(found).values()) == {1}
    # ... and the dead run, were it to come back, may not go on
    job.state = BulkJob.State.RUNNING
    with pytest.raises(bulk_jobs.BulkJobSuperseded):
        bulk_jobs._chunk(job=job, attempt=dead_attempt)


def test_a_transient_database_error_is_retried(review_dataset, lead, web, monkeypatch):
    # Given a job whose second chunk meets a lost connection once
    found = items(review_dataset, web, 7)
    job = request(review_dataset, lead)
    real = bulk_jobs.decisions_bulk_in
    calls = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk_jobs, "decisions_bulk_in", flaky)

    # When the worker runs it
    job = run(job)

    # Then the task's retry took the job back and finished it
    assert (job.state, job.decided) == ("done", 7)
    assert set(live_decisions(found).values()) == {1}


def test_a_job_fails_with_the_reason_when_retries_run_out(review_dataset, lead, web, monkeypatch):
    items(review_dataset, web, 4)
    job = request(review_dataset, lead)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(bulk_jobs, "decisions_bulk_in", down)
    assert bulk_job_run_task.apply(args=(job.pk,)).get() == "failed"
    job.refresh_from_db()
    assert job.state == "failed"
    assert job.error == "OperationalError: could not connect to server"


def test_running_the_task_twice_changes_nothing_the_second_time(review_dataset, lead, web):
    found = items(review_dataset, web, 5)
    job = run(request(review_dataset, lead))

    assert bulk_job_run_task.apply(args=(job.pk,)).get() is None  # finished: nothing to do
    assert bulk_job_run_task.apply(args=(987654,)).get() is None

    assert set(live_decisions(found).values()) == {1}
    assert AuditEvent.objects.filter(action="review.bulk_job_started").count() == 1


def test_a_reason_removed_meanwhile_fails_the_job(review_dataset, lead, web):
    items(review_dataset, web, 4)
    job = bulk_job_request(
        dataset=review_dataset,
        requested_by=lead,
        query=ListQuery(),
        verdict="reject",
        reason="duplicate",
    )
    ReviewPolicy.objects.update_or_create(
        dataset=review_dataset, defaults={"reject_reasons": [{"key": "other", "label": "Other"}]}
    )

    job = run(job)

    assert job.state == "failed"
    assert "'duplicate' is not one of this dataset's reject reasons" in job.error
    assert job.decided == 0


# --- who may, and what they are told ------------------------------------------------------------


def test_a_job_whose_admin_lost_the_role_decides_nothing(review_dataset, lead, web):
    found = items(review_dataset, web, 3)
    job = request(review_dataset, lead)
    lead.groups.clear()

    job = run(job)

    assert job.state == "failed"
    assert job.error == "lead may no longer decide in bulk."
    assert states(found) == ["queued"] * 3


def test_only_admins_may_start_a_job(review_dataset, alice, web):
    items(review_dataset, web, 2)
    with pytest.raises(PermissionDenied):
        request(review_dataset, alice)
    assert not BulkJob.objects.exists()


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 403), ("charlie", 404), ("nobody", 302), ("lead", 200)]
)
def test_who_may_ask(review_dataset, alice, charlie, lead, web, client, who, status):
    items(review_dataset, web, 2)
    people = {"alice": alice, "charlie": charlie, "lead": lead}
    if who in people:
        client.force_login(people[who])

    asked = client.get("/review/demo/items/bulk-all", {"verdict": "approve"})
    confirmed = client.post("/review/demo/items/bulk-all", {"verdict": "approve", "confirm": "on"})

    assert asked.status_code == status
    assert confirmed.status_code == (303 if who == "lead" else status)
    assert BulkJob.objects.count() == (1 if who == "lead" else 0)


@pytest.mark.parametrize("who", ["alice", "charlie"])
def test_reviewers_cannot_see_or_stop_a_job(review_dataset, alice, charlie, lead, web, who):
    items(review_dataset, web, 2)
    job = request(review_dataset, lead)
    client = login({"alice": alice, "charlie": charlie}[who])
    status = 403 if who == "alice" else 404

    assert client.get(f"/review/demo/bulk-jobs/{job.pk}/").status_code == status
    assert client.get("/review/demo/bulk-jobs/").status_code == status
    assert client.post(f"/review/demo/bulk-jobs/{job.pk}/cancel").status_code == status
    job.refresh_from_db()
    assert job.state == "queued"


def test_wrong_methods_are_refused(review_dataset, lead):
    client = login(lead)
    assert client.put("/review/demo/items/bulk-all").status_code == 405
    assert client.get("/review/demo/bulk-jobs/1/cancel").status_code == 405
    assert client.get("/review/demo/bulk-jobs/1/resume").status_code == 405
    assert client.post("/review/demo/bulk-jobs/").status_code == 405


def test_the_list_offers_every_matching_item_to_admins_only(review_dataset, alice, lead, web):
    items(review_dataset, web, 2)

    as_admin = login(lead).get("/review/demo/items/", {"source": "web"}).content.decode()
    as_reviewer = login(alice).get("/review/demo/items/").content.decode()

    assert 'id="bulk-all"' in as_admin
    assert "/review/demo/items/bulk-all?source=web&amp;state=queued&amp;verdict=approve" in as_admin
    assert 'id="bulk-all"' not in as_reviewer
    assert "bulk-jobs" not in as_reviewer


def test_the_confirmation_states_the_count_and_the_filters(review_dataset, lead, web):
    items(review_dataset, web, 4)
    items(review_dataset, web, 2, origin=Item.Origin.HUMAN)

    response = login(lead).get(
        "/review/demo/items/bulk-all",
        {"state": "queued", "source": "web", "origin": "human", "verdict": "reject"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "Reject all <strong>2 items</strong> matching these filters?" in page
    assert "<dt>Declared origin</dt><dd>Human</dd>" in page
    assert '<select name="reason"' in page
    assert BulkJob.objects.count() == 0  # asking starts nothing


def test_a_rejection_without_a_reason_is_a_400_naming_the_field(review_dataset, lead, web):
    items(review_dataset, web, 2)

    response = login(lead).post(
        "/review/demo/items/bulk-all", {"state": "queued", "verdict": "reject", "confirm": "on"}
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {"reason": ["Choose a reason for the rejection."]}
    page = response.content.decode()
    assert 'id="reason-errors"' in page  # beside the field, in the confirmation to fix it
    assert "Reject all <strong>2 items</strong> matching these filters?" in page
    assert not BulkJob.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"verdict": "maybe"}, "verdict", "Select a valid choice."),
        ({"verdict": "reject", "reason": "nope"}, "reason", "not one of this dataset's reject"),
        ({"verdict": "approve", "note": "x" * 2001}, "note", "at most 2000 characters"),
        ({"verdict": "approve", "ceiling": "-3"}, "ceiling", "greater than or equal to 0"),
        ({"verdict": "approve", "band": "hot"}, "band", "Select a valid choice."),
        ({"verdict": "approve", "source": "nowhere"}, "source", "Select a valid choice."),
    ],
)
def test_bad_input_is_a_400_with_the_field_named(review_dataset, lead, web, data, field, message):
    items(review_dataset, web, 2)

    response = login(lead).post(
        "/review/demo/items/bulk-all", {"state": "queued", "confirm": "on", **data}
    )

    assert response.status_code == 400
    errors = {**response.context["form"].errors, **response.context["filters_form"].errors}
    assert message in " ".join(errors[field])
    assert not BulkJob.objects.exists()


def test_an_empty_filter_says_so_and_starts_nothing(review_dataset, lead, web):
    items(review_dataset, web, 2)
    client = login(lead)

    asked = client.get("/review/demo/items/bulk-all", {"state": "approved", "verdict": "approve"})
    confirmed = client.post(
        "/review/demo/items/bulk-all", {"state": "approved", "verdict": "approve", "confirm": "on"}
    )

    assert asked.status_code == 200
    assert "No items match these filters: there is nothing to decide." in asked.content.decode()
    assert "bulk-all-confirm" not in asked.content.decode()
    assert confirmed.status_code == 400
    assert "No items match these filters" in confirmed.content.decode()
    assert not BulkJob.objects.exists()


def test_one_job_at_a_time_per_dataset(review_dataset, other_dataset, lead, web):
    items(review_dataset, web, 3)
    first = request(review_dataset, lead)
    client = login(lead)

    asked = client.get("/review/demo/items/bulk-all", {"verdict": "approve"})
    again = client.post("/review/demo/items/bulk-all", {"verdict": "approve", "confirm": "on"})

    assert f'Bulk job <a href="/review/demo/bulk-jobs/{first.pk}/">#{first.pk}</a> is queued' in (
        asked.content.decode()
    )
    assert again.status_code == 409
    assert f"Bulk job {first.pk} is queued on this dataset" in again.content.decode()
    assert BulkJob.objects.count() == 1
    # Another dataset is not held up; a finished job frees the dataset.
    other_dataset.reviewers.add(lead)
    items(other_dataset, Source.objects.create(dataset=other_dataset, name="web"), 1)
    request(other_dataset, lead)
    run(first)
    request(review_dataset, lead, query=ListQuery(state=""))
    assert BulkJob.objects.filter(state="queued").count() == 2


def test_confirming_queues_the_job_on_commit_and_shows_its_page(
    review_dataset, lead, web, monkeypatch, django_capture_on_commit_callbacks
):
    found = items(review_dataset, web, 5)
    enqueued: list[int] = []
    monkeypatch.setattr("review.tasks.bulk_job_run_task.delay", enqueued.append)
    client = login(lead)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/review/demo/items/bulk-all",
            {"state": "queued", "verdict": "approve", "note": "spring clean", "confirm": "on"},
        )

    job = BulkJob.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/review/demo/bulk-jobs/{job.pk}/"
    assert enqueued == [job.pk]
    assert (job.total, job.note, job.filters["state"]) == (5, "spring clean", "queued")
    page = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in page
    assert "<strong>0</strong> of 5 items done" in page
    listing = client.get("/review/demo/items/").content.decode()
    assert f'href="/review/demo/bulk-jobs/{job.pk}/">#{job.pk}</a>' in listing
    assert states(found) == ["queued"] * 5


def test_progress_polls_while_running_and_stops_once_finished(review_dataset, lead, web):
    items(review_dataset, web, 4)
    job = request(review_dataset, lead)
    client = login(lead)
    url = f"/review/demo/bulk-jobs/{job.pk}/"

    polling = client.get(url, headers={"HX-Request": "true"})
    run(job)
    finished = client.get(url, headers={"HX-Request": "true"})

    assert polling.status_code == 200
    assert 'hx-trigger="every 1s"' in polling.content.decode()
    assert finished.status_code == 286  # htmx: swap this in and stop polling
    body = finished.content.decode()
    assert body.lstrip().startswith('<section id="bulk-job"')
    assert "hx-trigger" not in body
    assert "<strong>4</strong> of 4 items done" in body
    assert 'id="bulk-job-done"' in body


def test_cancel_from_the_page_and_resume(review_dataset, lead, web):
    items(review_dataset, web, 4)
    job = request(review_dataset, lead)
    client = login(lead)

    cancelled = client.post(
        f"/review/demo/bulk-jobs/{job.pk}/cancel", headers={"HX-Request": "true"}
    )
    again = client.post(f"/review/demo/bulk-jobs/{job.pk}/cancel", headers={"HX-Request": "true"})
    resumed = client.post(f"/review/demo/bulk-jobs/{job.pk}/resume")

    assert cancelled.status_code == 200
    assert 'data-state="cancelled"' in cancelled.content.decode()
    assert again.status_code == 409
    assert f"Bulk job {job.pk} is already cancelled." in again.content.decode()
    assert resumed.status_code == 303
    job.refresh_from_db()
    assert job.state == "queued"
    with pytest.raises(ReviewError, match="nothing to resume"):
        bulk_job_resume(job=job, actor=lead)


def test_the_jobs_page_lists_them(review_dataset, lead, web):
    items(review_dataset, web, 2)
    job = run(request(review_dataset, lead))

    page = login(lead).get("/review/demo/bulk-jobs/").content.decode()

    assert f'href="/review/demo/bulk-jobs/{job.pk}/">#{job.pk}</a>' in page
    assert '<td class="status-done">done</td>' in page


@pytest.mark.postgres
def test_each_chunk_reads_on_in_id_order_whatever_the_statistics(review_dataset, lead, web):
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL plan")
    # Given statistics taken before a new source's items came in (what the planner then
    # believes: the source has next to no items)
    old = Source.objects.create(dataset=review_dataset, name="old")
    Item.objects.bulk_create(
        ItemFactory.build(dataset=review_dataset, source=old, content_hash=f"old-{i}")
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Item._meta.db_table}")
    Item.objects.bulk_create(
        ItemFactory.build(dataset=review_dataset, source=web, content_hash=f"web-{i}")
        for i in range(1500)
    )
    query = ListQuery(state=Item.State.QUEUED, source=web.pk)
    items = selectors._matching(dataset=review_dataset, user=lead, query=query).filter(
        id__gt=0, id__lte=10**9
    )

    # When a chunk's ids are read as the walk reads them
    with selectors._in_index_order():
        plan = items.order_by("id").values_list("id", flat=True)[:CHUNK].explain()
    left_alone = items.order_by("id").values_list("id", flat=True)[:CHUNK].explain()

    # Then the plan reads an index in id order, without sorting what another index found
    assert "Sort" not in plan and "source_external_id" not in plan, plan
    assert "Sort" in left_alone, "the planner no longer needs the hint: " + left_alone
