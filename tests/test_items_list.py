"""GET /api/v1/datasets/{slug}/items/ (keyset cursor) and GET /api/v1/items/{id}/."""

import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from corpus.api_support import cursor_encode
from corpus.models import Item, ItemParent, Score
from corpus.services.audit import SYSTEM
from corpus.services.ingest import items_ingest, items_parse
from corpus.services.tokens import token_revoke
from tests.factories import ItemFactory, SourceFactory

URL = "/api/v1/datasets/demo/items/"

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (concurrent writers and readers)"
)


def _ids(response) -> list[int]:
    return [item["id"] for item in response.json()["results"]]


def _ingest(dataset, texts, **fields):
    outcome = items_ingest(
        dataset=dataset,
        items=items_parse([{"text": text, **fields} for text in texts]),
        actor=SYSTEM,
        default_source="tests",
    )
    return [r.id for r in outcome.results]


def _page_through(client, query: str = "", limit: int = 3) -> list[int]:
    seen: list[int] = []
    cursor = ""
    while True:
        response = client.get(f"{URL}?limit={limit}{query}{'&cursor=' + cursor if cursor else ''}")
        assert response.status_code == 200, response.json()
        page = _ids(response)
        if not page:
            return seen
        seen.extend(page)
        cursor = response.json()["next"]


# Scopes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("token_fixture", ["produce_token", "consume_token", "admin_token"])
def test_list_allows_any_token_of_the_dataset(api, request, dataset, token_fixture):
    ids = _ingest(dataset, ["one", "two"])
    token = request.getfixturevalue(token_fixture)

    response = api.as_token(token).get(URL)

    assert response.status_code == 200
    assert _ids(response) == ids


def test_list_refuses_token_of_another_dataset(api, dataset, other_produce_token):
    _ingest(dataset, ["private"])

    response = api.as_token(other_produce_token).get(URL)

    assert response.status_code == 403
    assert response.json() == {
        "errors": [{"message": "This token is not valid for dataset 'demo'."}]
    }


def test_list_refuses_revoked_token(api, dataset, consume_token):
    token_revoke(actor=SYSTEM, token=consume_token)

    assert api.as_token(consume_token).get(URL).status_code == 401


def test_list_without_token_is_401(api, dataset):
    response = api.get(URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_list_of_unknown_dataset_is_404(api, consume_token):
    assert api.as_token(consume_token).get("/api/v1/datasets/nope/items/").status_code == 404


@pytest.mark.parametrize("token_fixture", ["produce_token", "consume_token", "admin_token"])
def test_detail_allows_any_token_of_its_dataset(api, request, dataset, token_fixture):
    [parent] = _ingest(dataset, ["parent text"], origin="human", external_id="p")
    [child] = _ingest(dataset, ["child text"], parents=["p"], metadata={"k": [1]})
    token = request.getfixturevalue(token_fixture)

    response = api.as_token(token).get(f"/api/v1/items/{child}/")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == child
    assert body["dataset"] == "demo"
    assert body["source"] == "tests"
    assert body["text"] == "child text"
    assert body["parents"] == [parent]
    assert body["generation"] == 1
    assert body["metadata"] == {"k": [1]}
    assert body["state"] == "pending"
    assert body["score"] is None


def test_detail_shows_the_score(api, dataset, consume_token):
    item = ItemFactory(dataset=dataset)
    Score.objects.create(item=item, scorer_version="t1", priority=0.25)

    body = api.as_token(consume_token).get(f"/api/v1/items/{item.pk}/").json()

    assert body["score"]["scorer_version"] == "t1"
    assert body["score"]["priority"] == 0.25
    assert body["score"]["exact_duplicate_of"] is None


def test_detail_refuses_token_of_another_dataset(api, dataset, other_produce_token):
    [item] = _ingest(dataset, ["private"])

    response = api.as_token(other_produce_token).get(f"/api/v1/items/{item}/")

    assert response.status_code == 403
    assert "text" not in response.json()


def test_detail_refuses_revoked_and_missing_tokens(api, dataset, consume_token):
    [item] = _ingest(dataset, ["private"])

    anonymous = api.get(f"/api/v1/items/{item}/")
    token_revoke(actor=SYSTEM, token=consume_token)
    revoked = api.as_token(consume_token).get(f"/api/v1/items/{item}/")

    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == "Token"
    assert revoked.status_code == 401


def test_detail_of_missing_item_is_404(api, dataset, consume_token):
    response = api.as_token(consume_token).get("/api/v1/items/99999/")

    assert response.status_code == 404
    assert response.json() == {"errors": [{"message": "Not found."}]}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_detail_wrong_method_is_405(api, dataset, produce_token, method):
    [item] = _ingest(dataset, ["x"])

    response = getattr(api.as_token(produce_token), method)(f"/api/v1/items/{item}/")

    assert response.status_code == 405


def test_list_wrong_method_is_405(api, dataset, consume_token):
    assert api.as_token(consume_token).delete(URL).status_code == 405


# Pagination and filters ---------------------------------------------------------------------


def test_cursor_pages_through_every_item_once(api, dataset, consume_token):
    ids = _ingest(dataset, [f"item {n}" for n in range(7)])
    client = api.as_token(consume_token)

    first = client.get(f"{URL}?limit=3")
    second = client.get(f"{URL}?limit=3&cursor={first.json()['next']}")
    third = client.get(f"{URL}?limit=3&cursor={second.json()['next']}")
    fourth = client.get(f"{URL}?limit=3&cursor={third.json()['next']}")

    assert _ids(first) + _ids(second) + _ids(third) == ids
    assert len(_ids(third)) == 1
    # The end of the list still hands out a cursor: a pipeline polls it for what comes next.
    assert _ids(fourth) == []
    assert fourth.json()["next"] == third.json()["next"]
    [late] = _ingest(dataset, ["a late arrival"])
    assert _ids(client.get(f"{URL}?limit=3&cursor={fourth.json()['next']}")) == [late]


def test_empty_list_has_no_cursor(api, dataset, consume_token):
    response = api.as_token(consume_token).get(URL)

    assert response.json() == {"results": [], "next": None}


def test_default_page_size_is_the_setting(api, dataset, consume_token, settings):
    settings.SYNTHGATE_PAGE_SIZE = 2
    _ingest(dataset, ["a", "b", "c"])

    assert len(_ids(api.as_token(consume_token).get(URL))) == 2


def test_list_filters_by_state_origin_and_source(api, dataset, other_dataset, consume_token):
    web = SourceFactory(dataset=dataset, name="web")
    lab = SourceFactory(dataset=dataset, name="lab")
    queued_human_web = ItemFactory(dataset=dataset, source=web, origin="human", state="queued")
    queued_synth_lab = ItemFactory(dataset=dataset, source=lab, origin="synthetic", state="queued")
    approved_synth_web = ItemFactory(
        dataset=dataset, source=web, origin="synthetic", state="approved"
    )
    pending_unknown_lab = ItemFactory(
        dataset=dataset, source=lab, origin="unknown", state="pending"
    )
    ItemFactory(dataset=other_dataset, origin="human", state="queued")  # never listed here
    client = api.as_token(consume_token)

    def listed(query: str) -> list[int]:
        return _page_through(client, query, limit=2)

    assert listed("") == [
        queued_human_web.pk,
        queued_synth_lab.pk,
        approved_synth_web.pk,
        pending_unknown_lab.pk,
    ]
    assert listed("&state=queued") == [queued_human_web.pk, queued_synth_lab.pk]
    assert listed("&origin=synthetic") == [queued_synth_lab.pk, approved_synth_web.pk]
    assert listed("&source=web") == [queued_human_web.pk, approved_synth_web.pk]
    assert listed("&source=lab&state=pending") == [pending_unknown_lab.pk]
    assert listed("&origin=human&source=lab") == []
    assert listed("&source=nobody") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=bogus", "state"),
        ("origin=alien", "origin"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=-5", "limit"),
    ],
)
def test_bad_filter_is_400(api, dataset, consume_token, query, field):
    response = api.as_token(consume_token).get(f"{URL}?{query}")

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == field


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!!",
        "Zm9v",  # base64 of "foo": not JSON
        cursor_encode([1, 2]),
        cursor_encode({"after": "12"}),
        cursor_encode({"after": True}),
        cursor_encode({"after": 1.5}),
    ],
    ids=["garbage", "not json", "a list", "a string id", "a boolean", "a float"],
)
def test_invalid_cursor_is_400(api, dataset, consume_token, cursor):
    response = api.as_token(consume_token).get(f"{URL}?cursor={cursor}")

    assert response.status_code == 400
    assert response.json() == {"errors": [{"field": "cursor", "message": "Invalid cursor."}]}


def test_list_query_count_does_not_grow_with_the_page(api, dataset, consume_token):
    # Items with everything the serializer reads: source, dataset, score, parents.
    ids = _ingest(dataset, [f"root {n}" for n in range(60)], origin="human")
    children = _ingest(dataset, [f"child {n}" for n in range(60)], parents=[ids[0], ids[1]])
    Score.objects.bulk_create(Score(item_id=i, scorer_version="t") for i in ids + children)
    client = api.as_token(consume_token)
    client.get(URL)  # records last_used_at, which writes once a minute at most

    counts = {}
    for limit in (1, 10, 120):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"{URL}?limit={limit}")
        assert len(_ids(response)) == limit
        counts[limit] = len(queries)

    # token, dataset, page, parent links: four, whatever the page size
    assert counts == {1: 4, 10: 4, 120: 4}


def test_list_query_count_is_bounded(api, dataset, consume_token, django_assert_max_num_queries):
    ids = _ingest(dataset, [f"root {n}" for n in range(30)])
    _ingest(dataset, [f"child {n}" for n in range(30)], parents=ids[:3])
    client = api.as_token(consume_token)

    # Includes the token's first last_used_at write.
    with django_assert_max_num_queries(5):
        response = client.get(f"{URL}?limit=60")

    assert len(_ids(response)) == 60
    assert ItemParent.objects.count() == 90


# Concurrency (PostgreSQL) -------------------------------------------------------------------


@pytest.mark.postgres
@postgres_only
def test_cursor_sees_every_item_once_under_concurrent_inserts(
    transactional_db, dataset, produce_token, consume_token
):
    writers, batches, batch_size = 3, 8, 25
    stop_reading = threading.Event()
    errors: list[BaseException] = []
    seen: list[int] = []
    last_cursor: list[str] = [""]

    def write(worker: int) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {produce_token.key}")
            for batch in range(batches):
                items = [
                    {"text": f"writer {worker} batch {batch} item {n}"} for n in range(batch_size)
                ]
                response = client.post(URL, {"items": items}, format="json")
                assert response.status_code == 201, response.json()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def read() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {consume_token.key}")
            while not stop_reading.is_set():
                suffix = f"&cursor={last_cursor[0]}" if last_cursor[0] else ""
                response = client.get(f"{URL}?limit=7{suffix}")
                assert response.status_code == 200, response.json()
                seen.extend(_ids(response))
                if response.json()["next"]:
                    last_cursor[0] = response.json()["next"]
                time.sleep(0.002)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    reader = threading.Thread(target=read)
    writer_threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    reader.start()
    for thread in writer_threads:
        thread.start()
    for thread in writer_threads:
        thread.join(timeout=120)
    stop_reading.set()
    reader.join(timeout=30)
    assert not errors, errors
    read_during_writes = len(seen)

    # After the writers finish, the reader continues from its last cursor to the end.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {consume_token.key}")
    while True:
        suffix = f"&cursor={last_cursor[0]}" if last_cursor[0] else ""
        response = client.get(f"{URL}?limit=7{suffix}")
        page = _ids(response)
        if not page:
            break
        seen.extend(page)
        last_cursor[0] = response.json()["next"]

    everything = list(
        Item.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True)
    )
    assert len(everything) == writers * batches * batch_size
    assert seen == everything  # no gaps, no repeats, in order
    assert read_during_writes > 0  # the reader really ran while the writers did


# Near-duplicate evidence on the item detail ------------------------------------------------


def test_detail_lists_matches_both_ways_whichever_was_scored_first(api, dataset, consume_token):
    """The copy is scored before the original it copies exists in the index; scoring the
    original afterwards stores the match both ways, so each item's detail lists the other, with
    Jaccard, containment and the other item's state. The list endpoint stays without matches."""
    from corpus.demo.reference import REFERENCE
    from corpus.services import scoring

    original = REFERENCE[0][2]
    words = original.split()
    words[len(words) // 2] = "zebra"  # a one-word edit
    copy_id, original_id, other_id = _ingest(
        dataset, [" ".join(words), original, REFERENCE[5][2]], origin="synthetic"
    )
    scoring.items_score(item_ids=[copy_id])
    scoring.items_score(item_ids=[original_id, other_id])

    client = api.as_token(consume_token)
    copy = client.get(f"/api/v1/items/{copy_id}/").json()
    first = client.get(f"/api/v1/items/{original_id}/").json()
    unrelated = client.get(f"/api/v1/items/{other_id}/").json()

    [seen_from_copy] = copy["near_duplicates"]["matches"]
    [seen_from_original] = first["near_duplicates"]["matches"]
    assert copy["near_duplicates"]["total"] == first["near_duplicates"]["total"] == 1
    assert seen_from_copy["id"] == original_id and seen_from_original["id"] == copy_id
    assert seen_from_copy["jaccard"] == seen_from_original["jaccard"] > 0.9
    assert seen_from_copy["containment"] > 0.9 and seen_from_original["containment"] > 0.9
    # The copy came first (smaller id): it survives and the original, the later near-copy of
    # it, is auto-rejected; each side shows the other's state.
    assert copy["state"] == "queued" and first["state"] == "auto_rejected"
    assert seen_from_copy["state"] == "auto_rejected" and seen_from_original["state"] == "queued"
    assert first["score"]["near_duplicate_of"] == copy_id
    assert first["score"]["near_duplicate_containment"] > 0.9
    assert unrelated["near_duplicates"] == {"total": 0, "matches": []}
    assert "learned" in first["score"]["detectors"]
    listed = client.get(URL).json()["results"]
    assert listed and all("near_duplicates" not in row for row in listed)


def test_list_rows_are_what_the_item_serializer_gives(api, dataset, consume_token):
    """The list renders plain rows (``item_row_out``) instead of running ItemOutputSerializer
    over model instances: on varied items (scored or not, a failed score, parents, messages,
    metadata, decided, a rule flag, no external id) every result must equal the serializer's
    output for the same item, key order included."""
    import json as jsonlib

    from rest_framework.renderers import JSONRenderer

    from corpus import selectors
    from corpus.api.items import ItemOutputSerializer
    from corpus.services import scoring

    plain = _ingest(dataset, ["first plain text", "second plain text"], origin="human")
    rich = items_ingest(
        dataset=dataset,
        items=items_parse(
            [
                {
                    "text": "a child of both",
                    "origin": "synthetic",
                    "external_id": "x-1",
                    "generator_model": "gen",
                    "generator_version": "v2",
                    "prompt": "write",
                    "sampling_params": {"temperature": 0.7, "top_p": 1},
                    "metadata": {"k": [1, "two", None], "nested": {"a": True}},
                    "parents": plain,
                    "generation": 2,
                },
                {
                    "kind": "chat",
                    "messages": [
                        {"role": "user", "content": "hi"},
                        {"role": "assistant", "content": "hello there"},
                    ],
                    "origin": "synthetic",
                },
            ]
        ),
        actor=SYSTEM,
        default_source="other-source",
    )
    rich_ids = [r.id for r in rich.results]
    scoring.items_score(item_ids=[plain[0], *rich_ids])
    Score.objects.filter(item_id=rich_ids[0]).update(rule_flag="near_duplicate: flagged")
    Item.objects.filter(pk=plain[0]).update(
        state="approved", decided_by=[3, 5], state_reason="", decided_at="2026-01-02T03:04:05Z"
    )
    failed = _ingest(dataset, ["will fail to score"], origin="unknown")[0]
    Score.objects.create(item_id=failed, scorer_version="", error="boom", attempts=1)

    body = api.as_token(consume_token).get(f"{URL}?limit=50").json()
    items = {
        item.pk: item
        for item in Item.objects.filter(dataset=dataset)
        .select_related("dataset", "source", "score")
        .prefetch_related("parent_links")
    }
    assert [row["id"] for row in body["results"]] == sorted(items)
    for row in body["results"]:
        expected = jsonlib.loads(JSONRenderer().render(ItemOutputSerializer(items[row["id"]]).data))
        assert list(row) == list(expected), row["id"]
        assert row == expected, row["id"]
    # The signature bytes are never read for a page.
    assert "minhash" not in str(selectors.SCORE_ROW_COLUMNS)
