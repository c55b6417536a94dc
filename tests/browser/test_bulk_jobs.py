"""A filter-wide bulk job in a real Chromium, run by a real Celery worker: an admin filters the
list, approves every matching item behind the confirmation, and watches the job's page reach
done (htmx polls it every second and stops once it is finished)."""

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from corpus.models import Item, Source
from review.models import BulkJob
from review.selectors import ListQuery
from review.services.bulk_jobs import bulk_job_request, bulk_job_run
from tests.factories import ItemFactory
from tests.review.conftest import add_to_group

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

CHUNK = 5
SHOTS = Path(django_settings.VAR_DIR)  # where the pages' screenshots go, to look at


@pytest.fixture
def small_worker_chunks(monkeypatch):
    """The worker subprocess reads its settings from the environment: small chunks, so the job
    takes several (set before the worker starts)."""
    monkeypatch.setenv("SYNTHGATE_BULK_JOB_CHUNK", str(CHUNK))


@pytest.fixture(autouse=True)
def _patient(context):
    """A busy two-core machine can take more than the default 10 s to serve a first page."""
    context.set_default_timeout(30_000)
    context.set_default_navigation_timeout(30_000)


def test_an_admin_approves_every_matching_item_and_watches_the_job_finish(
    small_worker_chunks, celery_worker_process, page, login_as, context, dataset
):
    # Given twelve queued items from "web" among others, and an admin
    web = Source.objects.create(dataset=dataset, name="web")
    other = Source.objects.create(dataset=dataset, name="other")
    matching = [ItemFactory(dataset=dataset, source=web) for _ in range(12)]
    others = [ItemFactory(dataset=dataset, source=other) for _ in range(3)]
    lead = add_to_group(dataset.reviewers.first(), "admin")
    login_as(context, lead)

    # When they filter the list by source and approve everything it matches
    page.goto("/review/demo/items/?source=web")
    page.click("#bulk-all a.approve")
    confirm = page.locator("#bulk-all-confirm").inner_text()
    assert confirm == "Approve all 12 items matching these filters?"
    page.screenshot(path=str(SHOTS / "bulk-all-confirm.png"), full_page=True)
    page.click("form.confirm button[type=submit]")

    # Then the job's page follows the worker until the job is done
    page.wait_for_selector("#bulk-job[data-state=done]", timeout=90_000)
    assert page.locator("#bulk-job-progress").inner_text() == "12 of 12 items done"
    assert page.locator("#bulk-job-done").inner_text() == "Done: 12 decided, 0 skipped."
    page.screenshot(path=str(SHOTS / "bulk-job-done.png"), full_page=True)
    job = BulkJob.objects.get()
    assert (job.state, job.decided, job.chunks) == ("done", 12, 3)
    states = dict(Item.objects.values_list("pk", "state"))
    assert {states[i.pk] for i in matching} == {"approved"}
    assert {states[i.pk] for i in others} == {"queued"}
    assert page.problems == [], celery_worker_process.log_tail()


def test_the_job_page_polls_until_the_job_is_finished_then_stops(
    page, login_as, context, dataset, settings
):
    # Given a queued job nobody has run yet, and its page open
    settings.SYNTHGATE_BULK_JOB_CHUNK = 2
    web = Source.objects.create(dataset=dataset, name="web")
    found = [ItemFactory(dataset=dataset, source=web) for _ in range(5)]
    lead = add_to_group(dataset.reviewers.first(), "admin")
    job = bulk_job_request(dataset=dataset, requested_by=lead, query=ListQuery(), verdict="approve")
    login_as(context, lead)
    polls: list[str] = []
    url = f"/review/demo/bulk-jobs/{job.pk}/"
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith(url) else None)
    page.goto(url)
    assert page.locator("#bulk-job-state").inner_text() == "queued"
    assert page.locator("#bulk-job").get_attribute("hx-trigger") == "every 1s"

    # When a worker runs the job
    bulk_job_run(job_id=job.pk)

    # Then the page shows it done without a reload, and polls no more
    page.wait_for_selector("#bulk-job[data-state=done]", timeout=15_000)
    assert page.locator("#bulk-job-progress").inner_text() == "5 of 5 items done"
    seen = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == seen
    assert seen >= 2  # the page itself, then at least one poll
    decided = Item.objects.filter(pk__in=[i.pk for i in found]).values_list("state", flat=True)
    assert set(decided) == {"approved"}
    assert page.problems == []
