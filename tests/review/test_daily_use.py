"""Daily-use details: where people land after logging in, the reviewer-stats period, list
filters by source name with a total, a refused bulk action that keeps the selection, and the
progress shown where work takes time."""

import pytest
from django.contrib.auth.models import Group

from corpus.models import Export, Item
from tests.factories import DatasetFactory, ItemFactory, SourceFactory
from tests.review.conftest import add_to_group, login, make_item

pytestmark = pytest.mark.django_db


# --- login landing ----------------------------------------------------------------------------


def _log_in(client, user):  # type: ignore[no-untyped-def]
    user.set_password("pw")
    user.save()
    return client.post("/accounts/login/", {"username": user.get_username(), "password": "pw"})


def test_a_reviewer_of_one_dataset_lands_in_its_triage(client, review_dataset, alice):
    response = _log_in(client, alice)
    assert response["Location"] == "/start/"
    assert client.get("/start/")["Location"] == "/review/demo/"


def test_a_reviewer_of_several_datasets_lands_on_the_list_of_queues(client, review_dataset, alice):
    DatasetFactory(slug="second").reviewers.add(alice)
    _log_in(client, alice)
    assert client.get("/start/")["Location"] == "/review/"


def test_an_admin_lands_on_the_dashboard_of_the_one_dataset(client, review_dataset, lead):
    from review.views import landing_url

    _log_in(client, lead)
    expected = landing_url(lead)
    assert client.get("/start/")["Location"] == expected
    # the dashboard once a view serves /datasets/<slug>/, else the datasets list
    assert expected in ("/datasets/demo/", "/review/")


def test_an_admin_of_several_datasets_lands_on_the_datasets_list(client, review_dataset, lead):
    DatasetFactory(slug="second")
    _log_in(client, lead)
    assert client.get("/start/")["Location"] == "/review/"


def test_someone_without_a_dataset_lands_on_the_list_that_says_why(client, review_dataset):
    from tests.factories import UserFactory

    nobody = UserFactory(username="dora")
    Group.objects.get_or_create(name="reviewer")
    _log_in(client, nobody)
    assert client.get("/start/")["Location"] == "/review/"
    assert client.get("/review/").status_code == 200


def test_next_still_wins_over_the_landing(client, review_dataset, alice):
    alice.set_password("pw")
    alice.save()
    response = client.post(
        "/accounts/login/?next=/review/demo/items/", {"username": "alice", "password": "pw"}
    )
    assert response["Location"] == "/review/demo/items/"


def test_the_landing_needs_a_login(client):
    assert client.get("/start/")["Location"].startswith("/accounts/login/")


def test_the_login_page_is_styled_and_links_the_favicon(client):
    page = client.get("/accounts/login/").content.decode()
    assert 'class="login-card panel"' in page
    assert 'rel="icon" href="/static/favicon.svg"' in page


# --- reviewer statistics period ------------------------------------------------------------------


def test_the_stats_selector_shows_the_period_the_table_covers(review_dataset, lead):
    default = login(lead).get("/review/demo/reviewers/").content.decode()
    assert '<option value="30" selected>30 days</option>' in default
    assert "Over the last 30 days." in default
    today = login(lead).get("/review/demo/reviewers/?days=1").content.decode()
    assert '<option value="1" selected>today</option>' in today
    assert "Today (since midnight UTC)." in today


def test_an_unknown_period_is_a_400_that_says_so(review_dataset, lead):
    response = login(lead).get("/review/demo/reviewers/?days=9")
    assert response.status_code == 400
    assert b"Unknown period" in response.content


# --- list mode -----------------------------------------------------------------------------------


def test_the_list_filters_by_source_name_and_shows_a_total(review_dataset, alice):
    web = SourceFactory(dataset=review_dataset, name="web")
    for _ in range(3):
        ItemFactory(dataset=review_dataset, source=web, state=Item.State.QUEUED)
    make_item(review_dataset)  # source "pipeline"

    response = login(alice).get("/review/demo/items/?source=web")

    assert response.status_code == 200
    page = response.content.decode()
    assert [row["source_name"] for row in response.context["page"].items] == ["web"] * 3
    assert 'hx-get="/review/demo/items/total?source=web&amp;state=queued"' in page
    assert '<option value="web" selected>web</option>' in page
    assert "Declared origin" in page and "Detector score" in page  # labels, not field names
    assert 'data-select-all="items"' in page
    total = login(alice).get("/review/demo/items/total?source=web&state=queued")
    assert total.status_code == 200
    assert b"<strong>3</strong> items match these filters" in total.content


def test_an_unknown_source_name_is_a_400_naming_the_filter(review_dataset, alice):
    response = login(alice).get("/review/demo/items/?source=nope")
    assert response.status_code == 400
    assert b"<strong>Source</strong>: Select a valid choice" in response.content


def test_the_total_is_capped(review_dataset, alice, monkeypatch):
    from review import selectors

    monkeypatch.setattr(selectors, "LIST_COUNT_CAP", 2)
    for _ in range(4):
        make_item(review_dataset)
    page = login(alice).get("/review/demo/items/total").content.decode()
    assert "More than 2 items match these filters" in page
    one = login(alice).get("/review/demo/items/total?origin=human&state=").content.decode()
    assert "<strong>0</strong> items match" in one


def test_the_total_of_bad_filters_is_a_400(review_dataset, alice, charlie):
    assert login(alice).get("/review/demo/items/total?source=nope").status_code == 400
    assert login(charlie).get("/review/demo/items/total").status_code == 404


def test_a_refused_bulk_reject_keeps_the_selection(review_dataset, alice, queued):
    ids = [str(queued[0].pk), str(queued[2].pk)]
    response = login(alice).post(
        "/review/demo/items/bulk",
        {"items": ids, "verdict": "reject", "reason": "", "back": "/review/demo/items/"},
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "Choose a reason for the rejection." in page
    for item_id in ids:
        assert f'name="items" value="{item_id}" checked' in page
    assert not Item.objects.filter(state=Item.State.REJECTED).exists()


# --- progress -------------------------------------------------------------------------------------


def test_triage_polls_the_queue_left_and_the_scoring_backlog(review_dataset, alice, queued):
    ItemFactory(dataset=review_dataset, state=Item.State.PENDING)
    ItemFactory(dataset=review_dataset, state=Item.State.QUEUED, is_gold=True)

    triage = login(alice).get("/review/demo/").content.decode()
    assert 'hx-get="/review/demo/progress"' in triage

    response = login(alice).get("/review/demo/progress")
    assert response.status_code == 200
    progress = response.content.decode()
    assert "<strong>5</strong> in the queue" in progress  # the gold check is not counted
    assert "<strong>1</strong> waiting to be scored" in progress
    assert "<time datetime=" in progress


def test_the_progress_counts_are_capped(review_dataset, alice, queued, monkeypatch):
    from review import selectors

    monkeypatch.setattr(selectors, "LIST_COUNT_CAP", 3)
    progress = login(alice).get("/review/demo/progress").content.decode()
    assert "<strong>more than 3</strong> in the queue" in progress
    assert "nothing waiting to be scored" in progress


def test_progress_is_for_reviewers_of_the_dataset(client, review_dataset, charlie):
    assert client.get("/review/demo/progress").status_code == 302
    assert login(charlie).get("/review/demo/progress").status_code == 404


def test_an_export_page_polls_its_progress_until_done(review_dataset, admin_user):
    export = Export.objects.create(
        dataset=review_dataset, status=Export.Status.BUILDING, rows_total=200, rows_written=50
    )
    url = f"/datasets/demo/exports/{export.pk}/progress"

    page = login(admin_user).get(f"/datasets/demo/exports/{export.pk}/").content.decode()
    assert f'hx-get="{url}"' in page

    building = login(admin_user).get(url)
    assert building.status_code == 200
    assert b'<progress value="50" max="200">' in building.content
    assert b"<strong>50</strong> of 200 rows written" in building.content

    Export.objects.filter(pk=export.pk).update(status=Export.Status.READY, rows_written=200)
    done = login(admin_user).get(url)
    assert done.status_code == 286  # htmx stops polling
    assert done["HX-Refresh"] == "true"
    assert b"hx-get" not in done.content


def test_export_progress_is_for_admins(review_dataset, alice):
    export = Export.objects.create(dataset=review_dataset)
    assert login(alice).get(f"/datasets/demo/exports/{export.pk}/progress").status_code == 403


def test_times_are_time_elements_in_utc(review_dataset, admin_user):
    Export.objects.create(dataset=review_dataset)
    page = login(admin_user).get("/datasets/demo/exports/").content.decode()
    assert '<time datetime="' in page and 'Z" title="' in page and ' UTC">' in page


def test_the_reviewer_role_alone_does_not_reach_settings(review_dataset, alice):
    add_to_group(alice, "reviewer")
    page = login(alice).get("/review/demo/").content.decode()
    assert "/datasets/demo/settings/" not in page
