"""The feed: approvals, undos and retractions in commit order behind an opaque cursor."""

import random
import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from corpus.models import FeedEntry, Item
from corpus.services.audit import SYSTEM
from corpus.services.items import item_gold_set, item_outcome_reopen, item_outcome_set
from corpus.services.retractions import item_retract
from corpus.services.write_batch import write_batch
from tests.exports.conftest import approve, approved_items
from tests.factories import ItemFactory

FEED = "/api/v1/datasets/demo/feed/"

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (concurrent writers and readers)"
)


def _page(client, cursor=None, limit=100):
    params = {"limit": limit}
    if cursor:
        params["cursor"] = cursor
    response = client.get(FEED, params)
    assert response.status_code == 200, response.json()
    return response.json()


def test_feed_lists_approvals_with_their_rows_then_resumes(api, consume_token, dataset):
    # Given three approved items
    items = approved_items(dataset, 3)
    client = api.as_token(consume_token)

    # When a pipeline reads two, then resumes from the cursor it kept
    first = _page(client, limit=2)
    resumed = _page(client, first["next"], limit=2)

    # Then it gets each approval once, in order, with the export row
    assert [e["item_id"] for e in first["results"]] == [items[0].pk, items[1].pk]
    assert [e["item_id"] for e in resumed["results"]] == [items[2].pk]
    entry = first["results"][0]
    assert entry["kind"] == "approved"
    assert entry["item"]["text"] == items[0].text
    assert entry["item"]["decision"]["reviewer_ids"] == [7]
    assert "seq" not in entry
    # and an empty page keeps the same position for the next poll
    idle = _page(client, resumed["next"])
    assert idle["results"] == [] and idle["next"] == resumed["next"]


def test_feed_reports_undos_and_retractions_and_hides_gold(api, consume_token, dataset):
    undone, retracted = approved_items(dataset, 2)
    gold = ItemFactory(dataset=dataset)
    item_gold_set(item_id=gold.pk, is_gold=True)
    approve([gold])
    with write_batch() as wb:
        item_outcome_reopen(wb, item_id=undone.pk)
    item_retract(item_id=retracted.pk, reason="licence withdrawn", actor=SYSTEM)
    rejected = ItemFactory(dataset=dataset)
    with write_batch() as wb:
        item_outcome_set(wb, item_id=rejected.pk, state=Item.State.REJECTED, reviewer_ids=[1])

    results = _page(api.as_token(consume_token))["results"]

    assert [(e["kind"], e["item_id"]) for e in results] == [
        ("approved", undone.pk),
        ("approved", retracted.pk),
        ("reopened", undone.pk),
        ("retracted", retracted.pk),
    ]
    assert results[3]["reason"] == "licence withdrawn"


def test_feed_refuses_bad_cursor_and_limit(api, consume_token, dataset):
    client = api.as_token(consume_token)
    assert client.get(FEED, {"cursor": "not-a-cursor"}).status_code == 400
    assert client.get(FEED, {"limit": 0}).status_code == 400
    assert client.get(FEED, {"limit": 5000}).status_code == 400


@pytest.mark.parametrize("token", ["produce_token", "admin_token", "other_produce_token"])
def test_feed_refused_without_consume_scope_of_the_dataset(api, dataset, token, request):
    assert api.as_token(request.getfixturevalue(token)).get(FEED).status_code == 403


def test_feed_needs_a_token_and_get(api, consume_token, dataset):
    assert api.get(FEED).status_code == 401
    assert api.as_token(consume_token).post(FEED, {}, format="json").status_code == 405


def test_feed_page_query_count_does_not_grow_with_the_page(
    api, consume_token, dataset, django_assert_num_queries
):
    items = approved_items(dataset, 30)
    item_retract(item_id=items[3].pk, reason="r", actor=SYSTEM)
    client = api.as_token(consume_token)
    _page(client, limit=1)  # the token's first use records last_used_at
    # token, dataset, entries, item rows, their parents, their scores, retraction reasons
    with django_assert_num_queries(7):
        assert len(_page(client, limit=31)["results"]) == 31


@pytest.mark.postgres
@postgres_only
def test_feed_resume_has_no_gap_and_no_repeat_while_approvals_keep_arriving(
    transactional_db, dataset, consume_token
):
    # Given 240 queued items and four reviewers approving them concurrently, each decision a
    # transaction of its own that stays open a little while (as a real one would)
    writers, per_writer = 4, 60
    items = [ItemFactory(dataset=dataset).pk for _ in range(writers * per_writer)]
    errors: list[BaseException] = []
    seen: list[tuple[str, int]] = []
    cursor: list[str | None] = [None]
    writing = threading.Event()
    writing.set()

    def write(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for item_id in items[worker::writers]:
                with write_batch() as wb:
                    item_outcome_set(wb, item_id=item_id, state="approved", reviewer_ids=[worker])
                    wb.audit(
                        actor=f"user:{worker}:r",
                        action="decision.recorded",
                        object_type="item",
                        object_id=item_id,
                        dataset=dataset,
                    )
                    time.sleep(rng.random() * 0.003)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def read_page(client: APIClient) -> int:
        body = _page(client, cursor[0], limit=7)
        seen.extend((e["kind"], e["item_id"]) for e in body["results"])
        cursor[0] = body["next"]
        return len(body["results"])

    def read() -> None:
        try:
            # A pipeline that crashes now and then: each "process" is a new client that only
            # knows the cursor the previous one stored.
            while writing.is_set():
                client = APIClient()
                client.credentials(HTTP_AUTHORIZATION=f"Token {consume_token.key}")
                for _ in range(3):
                    read_page(client)
                    time.sleep(0.002)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # When the pipeline reads the feed while the approvals arrive
    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    writing.clear()
    reader.join(timeout=30)
    assert not errors, errors
    read_while_writing = len(seen)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {consume_token.key}")
    while read_page(client):
        pass

    # Then it saw every approval exactly once, in the feed's (commit) order
    assert sorted(item_id for _, item_id in seen) == sorted(items)
    assert len(seen) == len(set(seen))
    order = list(FeedEntry.objects.order_by("seq").values_list("item_id", flat=True))
    assert [item_id for _, item_id in seen] == order
    assert read_while_writing > 0  # the pipeline really read while approvals arrived


def test_reference_items_enter_the_feed_when_loaded(api, consume_token, dataset):
    # given human reference paragraphs loaded as approved (import_items --reference)
    from corpus.services.audit import SYSTEM
    from corpus.services.ingest import items_ingest, items_parse

    outcome = items_ingest(
        dataset=dataset,
        items=items_parse([{"text": "A human paragraph about tides.", "origin": "human"}]),
        actor=SYSTEM,
        default_source="reference",
        reference=True,
    )
    # when a pipeline reads the feed, then the reference item is there as an approval
    rows = api.as_token(consume_token).get(f"/api/v1/datasets/{dataset.slug}/feed/").json()
    entries = [(e["item_id"], e["kind"]) for e in rows["results"]]
    assert entries == [(outcome.created_ids[0], "approved")]
