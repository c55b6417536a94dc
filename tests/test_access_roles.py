"""Access follows roles (corpus.roles) on every page: a matrix of user kind x page, and the links
each kind sees are exactly the pages it may open."""

import re

import pytest
from django.contrib.auth.models import Group

from corpus.models import Export
from tests.factories import DatasetFactory, ItemFactory, UserFactory

KINDS = (
    "anonymous",
    "no_role",  # an account, no role, listed nowhere
    "listed_no_role",  # listed on `demo` but without the reviewer role
    "reviewer",  # reviewer role, listed on `demo`
    "reviewer_elsewhere",  # reviewer role, listed on another dataset only
    "staff",  # is_staff only: the Django admin, nothing else
    "group_admin",  # the `admin` group, not staff
    "superuser",
)


def _group(name: str) -> Group:
    return Group.objects.get_or_create(name=name)[0]


@pytest.fixture
def world(db):  # type: ignore[no-untyped-def]
    demo = DatasetFactory(slug="demo")
    other = DatasetFactory(slug="other")
    item = ItemFactory(dataset=demo, state="queued")
    export = Export.objects.create(dataset=demo, requested_by="test")
    users = {
        "no_role": UserFactory(username="nobody"),
        "listed_no_role": UserFactory(username="listed"),
        "reviewer": UserFactory(username="rev"),
        "reviewer_elsewhere": UserFactory(username="rev2"),
        "staff": UserFactory(username="staffer", is_staff=True),
        "group_admin": UserFactory(username="lead"),
        "superuser": UserFactory(username="root", is_staff=True, is_superuser=True),
    }
    demo.reviewers.add(users["listed_no_role"], users["reviewer"])
    other.reviewers.add(users["reviewer_elsewhere"])
    users["reviewer"].groups.add(_group("reviewer"))
    users["reviewer_elsewhere"].groups.add(_group("reviewer"))
    users["group_admin"].groups.add(_group("admin"))
    return {"item": item, "export": export, "users": users}


def _client(client, world, kind):  # type: ignore[no-untyped-def]
    if kind != "anonymous":
        client.force_login(world["users"][kind])
    return client


# The pages, and who opens each: R = 200, otherwise the status every other kind gets.
ADMINS = {"group_admin", "superuser"}
READERS = ADMINS | {"reviewer"}
PAGES = {
    "/items/{item}/": (READERS, 403),
    "/audit/": (ADMINS, 403),
    "/exports/": (ADMINS, 403),
    "/datasets/demo/exports/": (ADMINS, 403),
    "/datasets/demo/exports/{export}/": (ADMINS, 403),
    "/review/demo/": (READERS, 404),
    "/review/demo/items/": (READERS, 404),
    "/review/demo/items/{item}/": (READERS, 404),
    "/admin/": ({"staff", "superuser"}, 302),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_access_follows_roles(client, world, kind, page):
    allowed, refused = PAGES[page]
    url = page.format(item=world["item"].pk, export=world["export"].pk)

    status = _client(client, world, kind).get(url).status_code

    if kind == "anonymous":
        assert status == 302  # sent to log in
    elif kind in allowed:
        assert status == 200
    else:
        assert status == refused


@pytest.mark.parametrize("kind", sorted(set(KINDS) - {"anonymous"}))
def test_dataset_settings_are_for_admins(client, world, kind):
    status = _client(client, world, kind).get("/datasets/demo/settings/").status_code

    assert status == {"group_admin": 200, "superuser": 200, "reviewer": 403}.get(kind, 404)


@pytest.mark.parametrize("kind", sorted(set(KINDS) - {"anonymous"}))
@pytest.mark.parametrize(
    "page", ["/review/demo/bulk-jobs/", "/review/demo/items/bulk-all?verdict=approve"]
)
def test_bulk_jobs_over_a_whole_filter_are_for_admins(client, world, kind, page):
    status = _client(client, world, kind).get(page).status_code

    assert status == {"group_admin": 200, "superuser": 200, "reviewer": 403}.get(kind, 404)


def test_the_old_review_settings_address_moved_to_the_dataset_settings(client, world):
    response = _client(client, world, "group_admin").get("/review/demo/settings/")

    assert response.status_code == 301
    assert response["Location"] == "/datasets/demo/settings/"


# Where the navigation may point; each kind must see exactly the ones it may open.
NAV = ("/review/", "/exports/", "/audit/", "/admin/")


def _links(html: str) -> set[str]:
    return set(re.findall(r'href="([^"#?]+)', html))


@pytest.mark.parametrize("kind", KINDS)
def test_links_shown_are_exactly_the_pages_one_may_open(client, world, kind):
    client = _client(client, world, kind)
    shown = _links(client.get("/").content.decode()) & set(NAV)

    openable = {url for url in NAV if client.get(url).status_code == 200}

    assert shown == openable


def test_item_page_links_to_the_audit_log_only_for_admins(client, world):
    item = world["item"]
    for kind, expected in (("reviewer", False), ("group_admin", True)):
        client.force_login(world["users"][kind])
        html = client.get(f"/items/{item.pk}/").content.decode()
        assert ('href="/audit/?object=item:' in html) is expected


def test_review_index_links_settings_only_for_admins(client, world):
    for kind, expected in (("reviewer", False), ("group_admin", True)):
        client.force_login(world["users"][kind])
        html = client.get("/review/").content.decode()
        assert ('href="/datasets/demo/settings/"' in html) is expected
        assert 'href="/review/demo/"' in html


def test_removing_the_role_cuts_access_at_once(client, world):
    user, item = world["users"]["reviewer"], world["item"]
    client.force_login(user)
    assert client.get(f"/items/{item.pk}/").status_code == 200

    user.groups.remove(_group("reviewer"))

    assert client.get(f"/items/{item.pk}/").status_code == 403
    assert client.get("/review/demo/").status_code == 404
