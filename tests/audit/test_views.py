"""The audit browser (admins) and the item page (admins, the dataset's reviewers)."""

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from corpus.models import ItemParent
from corpus.services.audit import SYSTEM, actor_for_user, audit_append
from tests.audit.conftest import make_chain
from tests.factories import ItemFactory, UserFactory

AUDIT = "/audit/"


@pytest.fixture
def reviewer(reviewer):  # type: ignore[no-untyped-def]
    """Alice, listed on `demo`, with the reviewer role."""
    reviewer.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    return reviewer


def _append(**kwargs):  # type: ignore[no-untyped-def]
    with transaction.atomic():
        return audit_append(**{"actor": SYSTEM, "object_type": "test", "object_id": 1, **kwargs})


# --- the audit browser ---------------------------------------------------------------------------


def test_admin_sees_the_newest_events_first(client, admin_user):
    make_chain(3)
    client.force_login(admin_user)

    response = client.get(AUDIT)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("test:3") < html.index("test:2") < html.index("test:1")
    assert 'id="audit-table"' in html and "<form" in html


def test_admin_group_member_may_browse(client, reviewer):
    reviewer.groups.add(Group.objects.get_or_create(name="admin")[0])
    client.force_login(reviewer)

    assert client.get(AUDIT).status_code == 200


def test_htmx_gets_only_the_table(client, admin_user):
    make_chain(2)
    client.force_login(admin_user)

    response = client.get(AUDIT, {"action": "test.event"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="audit-table">')
    assert "<form" not in html
    assert response["Vary"] == "HX-Request, Cookie"


def test_filters_by_actor_action_object_dataset_and_time(client, admin_user, dataset, reviewer):
    _append(
        action="review.decided",
        object_type="item",
        object_id=5,
        dataset=dataset,
        actor=actor_for_user(reviewer),
    )
    _append(action="items.scored", object_type="dataset", object_id="demo", dataset=dataset)
    _append(action="test.elsewhere")
    client.force_login(admin_user)

    def shown(**query: str) -> list[str]:
        rows = client.get(AUDIT, query).context["rows"]
        return [row["event"].action for row in rows]

    assert shown(actor=f"user:{reviewer.pk}") == ["review.decided"]
    assert shown(action="items.") == ["items.scored"]
    assert shown(object="item:5") == ["review.decided"]
    assert shown(dataset="demo") == ["items.scored", "review.decided"]
    assert shown(since="2999-01-01T00:00") == []
    assert 'href="/items/5/"' in client.get(AUDIT, {"object": "item:5"}).content.decode()


def test_bad_filters_are_shown_not_crashed_on(client, admin_user):
    client.force_login(admin_user)

    response = client.get(AUDIT, {"since": "soon", "dataset": "ghost"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "since: must be an ISO 8601 date or time" in html
    assert "dataset: no dataset &#x27;ghost&#x27;" in html


def test_keyset_pages_older_and_newer(client, admin_user):
    make_chain(120)
    client.force_login(admin_user)

    first = client.get(AUDIT).context
    assert [r["event"].seq for r in first["rows"]][:2] == [120, 119]
    assert first["newer"] is None and first["older"] == "before=71"
    second = client.get(f"{AUDIT}?{first['older']}").context
    assert [r["event"].seq for r in second["rows"]][0] == 70
    assert second["newer"] == "after=70"
    back = client.get(f"{AUDIT}?{second['newer']}").context
    assert [r["event"].seq for r in back["rows"]] == list(range(120, 70, -1))
    third = client.get(f"{AUDIT}?{second['older']}").context
    assert [r["event"].seq for r in third["rows"]] == list(range(20, 0, -1))
    assert third["older"] is None


def test_pager_links_keep_the_filters(client, admin_user):
    make_chain(60)
    client.force_login(admin_user)

    context = client.get(AUDIT, {"action": "test.event"}).context

    assert context["older"] == "action=test.event&before=11"


def test_payloads_are_escaped(client, admin_user):
    _append(action="test.xss", payload={"note": "<script>alert(1)</script>"})
    client.force_login(admin_user)

    html = client.get(AUDIT).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_browser_query_count(client, admin_user, django_assert_num_queries):
    make_chain(60)
    client.force_login(admin_user)
    client.get(AUDIT)

    # session, user, the page of events, the dataset list, the verifier's state
    with django_assert_num_queries(5):
        client.get(AUDIT)


@pytest.mark.parametrize("persona", ["reviewer", "outsider"])
def test_non_admins_are_refused(client, request, persona):
    client.force_login(request.getfixturevalue(persona))

    assert client.get(AUDIT).status_code == 403


def test_staff_without_the_admin_role_is_refused(client, db):
    client.force_login(UserFactory(username="staffer", is_staff=True))

    assert client.get(AUDIT).status_code == 403


def test_anonymous_is_sent_to_log_in(client, db):
    response = client.get(AUDIT)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/audit/")


def test_post_is_405(client, admin_user):
    client.force_login(admin_user)

    assert client.post(AUDIT).status_code == 405


# --- the item page -------------------------------------------------------------------------------


@pytest.fixture
def lineage(dataset):  # type: ignore[no-untyped-def]
    parent = ItemFactory(dataset=dataset, origin="human", generation=0)
    item = ItemFactory(
        dataset=dataset,
        generation=1,
        text="<script>alert('x')</script> & friends",
        generator_model="gen-model",
        prompt="Write <b>bold</b>",
        sampling_params={"temperature": 0.7},
    )
    child = ItemFactory(dataset=dataset, generation=2)
    ItemParent.objects.create(parent=parent, child=item)
    ItemParent.objects.create(parent=item, child=child)
    return parent, item, child


def test_reviewer_of_the_dataset_sees_text_provenance_lineage_and_history(
    client, reviewer, lineage, dataset
):
    parent, item, child = lineage
    _append(
        action="items.ingested",
        object_type="dataset",
        object_id="demo",
        dataset=dataset,
        payload={"created": [item.pk]},
    )
    _append(
        action="items.scored",
        object_type="dataset",
        object_id="demo",
        dataset=dataset,
        payload={"queued": [item.pk]},
    )
    _append(
        action="review.decided",
        object_type="item",
        object_id=item.pk,
        dataset=dataset,
        actor=actor_for_user(reviewer),
        payload={"verdict": "approve", "outcome": "approved"},
    )
    client.force_login(reviewer)

    response = client.get(f"/items/{item.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    # The text is escaped, never rendered as markup.
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; friends" in html
    assert "Write &lt;b&gt;bold&lt;/b&gt;" in html
    assert "gen-model" in html and "&quot;temperature&quot;: 0.7" in html
    assert f'href="/items/{parent.pk}/"' in html and f'href="/items/{child.pk}/"' in html
    labels = [(e.label, e.detail, e.who) for e in response.context["timeline"]]
    assert labels == [
        ("ingested", "", "system"),
        ("scored", "queued for review", "system"),
        ("decided", "approve → approved", "alice"),
    ]


def test_exports_containing_the_item_are_in_its_history(client, admin_user, lineage, dataset):
    from corpus.models import Export, ExportItem

    _, item, _ = lineage
    export = Export.objects.create(dataset=dataset, requested_by="token:1:consumer")
    ExportItem.objects.create(export=export, item=item)
    _append(action="export.built", object_type="export", object_id=export.pk, dataset=dataset)
    _append(
        action="export.downloaded",
        object_type="export",
        object_id=export.pk,
        dataset=dataset,
        actor="token:1:consumer",
    )
    client.force_login(admin_user)

    timeline = client.get(f"/items/{item.pk}/").context["timeline"]

    assert [(e.label, e.detail, e.who) for e in timeline] == [
        ("exported", f"in export #{export.pk}", "system"),
        ("downloaded", f"export #{export.pk}", "token consumer"),
    ]


def test_item_page_query_count(client, reviewer, lineage, django_assert_max_num_queries):
    _, item, _ = lineage
    client.force_login(reviewer)
    client.get(f"/items/{item.pk}/")

    with django_assert_max_num_queries(20):
        client.get(f"/items/{item.pk}/")


def test_staff_without_the_admin_role_may_not_read_items(client, lineage, db):
    _, item, _ = lineage
    client.force_login(UserFactory(username="staffer", is_staff=True))

    assert client.get(f"/items/{item.pk}/").status_code == 403


def test_listed_without_the_reviewer_role_may_not_read_items(client, reviewer2, lineage):
    _, item, _ = lineage
    client.force_login(reviewer2)  # listed on `demo`, no reviewer role

    assert client.get(f"/items/{item.pk}/").status_code == 403


def test_reviewer_of_another_dataset_is_refused(client, outsider, lineage, other_dataset):
    other_dataset.reviewers.add(outsider)
    _, item, _ = lineage
    client.force_login(outsider)

    assert client.get(f"/items/{item.pk}/").status_code == 403


def test_item_page_anonymous_is_sent_to_log_in(client, lineage):
    _, item, _ = lineage

    assert client.get(f"/items/{item.pk}/").status_code == 302


def test_item_page_unknown_item_is_404(client, admin_user):
    client.force_login(admin_user)

    assert client.get("/items/987654/").status_code == 404


def test_item_page_post_is_405(client, reviewer, lineage):
    _, item, _ = lineage
    client.force_login(reviewer)

    assert client.post(f"/items/{item.pk}/").status_code == 405
