"""GET /api/v1/items/{id}/lineage/: parents and children as bounded-depth trees."""

import pytest

from corpus.models import ItemParent
from tests.factories import ItemFactory


@pytest.fixture
def family(dataset):
    """grandparent -> parent -> child -> grandchild, and parent -> sibling -> grandchild."""
    grandparent = ItemFactory(dataset=dataset, origin="human", generation=0)
    parent = ItemFactory(dataset=dataset, generation=1)
    child = ItemFactory(dataset=dataset, generation=2)
    sibling = ItemFactory(dataset=dataset, generation=2)
    grandchild = ItemFactory(dataset=dataset, generation=3)
    for up, down in (
        (grandparent, parent),
        (parent, child),
        (parent, sibling),
        (child, grandchild),
        (sibling, grandchild),
    ):
        ItemParent.objects.create(parent=up, child=down)
    return {
        "grandparent": grandparent,
        "parent": parent,
        "child": child,
        "sibling": sibling,
        "grandchild": grandchild,
    }


def _url(item, depth=None):
    return f"/api/v1/items/{item.pk}/lineage/" + (f"?depth={depth}" if depth else "")


def test_parents_and_children_with_generations(api, consume_token, family):
    response = api.as_token(consume_token).get(_url(family["parent"]))

    assert response.status_code == 200
    body = response.json()
    assert body["item"]["id"] == family["parent"].pk
    assert body["item"]["generation"] == 1
    [grandparent] = body["parents"]
    assert (grandparent["id"], grandparent["generation"], grandparent["origin"]) == (
        family["grandparent"].pk,
        0,
        "human",
    )
    assert grandparent["parents"] == []
    child, sibling = body["children"]
    assert (child["id"], child["generation"]) == (family["child"].pk, 2)
    [grandchild] = child["children"]
    assert (grandchild["id"], grandchild["generation"], grandchild["repeat"]) == (
        family["grandchild"].pk,
        3,
        False,
    )
    # The grandchild reached again through the sibling is a repeat, not a second subtree.
    assert sibling["children"][0]["id"] == family["grandchild"].pk
    assert sibling["children"][0]["repeat"] is True
    assert body["truncated"] is False


def test_depth_bounds_the_tree(api, consume_token, family):
    body = api.as_token(consume_token).get(_url(family["grandparent"], depth=1)).json()

    [parent] = body["children"]
    assert parent["children"] == []
    assert parent["more"] is True
    assert body["depth"] == 1


def test_queries_are_bounded_by_depth(api, consume_token, family, django_assert_max_num_queries):
    client = api.as_token(consume_token)
    client.get(_url(family["parent"]))

    # The token, the item, then per direction: one link query a level, the boundary, the items.
    with django_assert_max_num_queries(2 + 2 * (3 + 2)):
        client.get(_url(family["parent"]))


def test_a_parent_in_a_dataset_the_token_cannot_see_is_restricted(
    api, consume_token, family, other_dataset
):
    stranger = ItemFactory(dataset=other_dataset, generation=0)
    ItemParent.objects.create(parent=stranger, child=family["grandparent"])

    body = api.as_token(consume_token).get(_url(family["grandparent"])).json()

    assert body["parents"] == [{"id": stranger.pk, "dataset": "other", "restricted": True}]


@pytest.mark.parametrize("depth", ["0", "11", "x"])
def test_bad_depth_is_400(api, consume_token, family, depth):
    response = api.as_token(consume_token).get(f"{_url(family['parent'])}?depth={depth}")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "depth"


def test_a_token_of_another_dataset_is_refused(api, other_produce_token, family):
    assert api.as_token(other_produce_token).get(_url(family["parent"])).status_code == 403


def test_any_token_of_the_dataset_may_read(api, produce_token, admin_token, family):
    assert api.as_token(produce_token).get(_url(family["child"])).status_code == 200
    assert api.as_token(admin_token).get(_url(family["child"])).status_code == 200


def test_no_token_is_401(api, family):
    assert api.get(_url(family["parent"])).status_code == 401


def test_unknown_item_is_404(api, consume_token):
    assert api.as_token(consume_token).get("/api/v1/items/999999/lineage/").status_code == 404


def test_post_is_405(api, consume_token, family):
    response = api.as_token(consume_token).post(_url(family["parent"]), {}, format="json")
    assert response.status_code == 405
