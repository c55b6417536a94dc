"""POST /api/v1/datasets/{slug}/items/: scopes, idempotency, all-or-nothing, lineage, audit."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from corpus.models import AuditEvent, Item, ItemParent, Source
from corpus.scoring.text import content_hash
from corpus.services.audit import SYSTEM
from corpus.services.audit_verify import audit_verify
from corpus.services.ingest import items_ingest_digest
from corpus.services.tokens import token_revoke
from tests.worker import broker_messages

URL = "/api/v1/datasets/demo/items/"

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)"
)


def _post(client, items, **body):  # type: ignore[no-untyped-def]
    return client.post(URL, {"items": items, **body}, format="json")


def _ids(response) -> list[int]:  # type: ignore[no-untyped-def]
    return [result["id"] for result in response.json()["results"]]


def _statuses(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [result["status"] for result in response.json()["results"]]


# Scopes -------------------------------------------------------------------------------------


def test_produce_token_ingests_pending_items(api, produce_token, dataset):
    # Given a producer token of `demo`
    client = api.as_token(produce_token)

    # When it posts two items
    response = _post(
        client,
        [
            {"text": "The tide came in slowly.", "origin": "human", "external_id": "a-1"},
            {"text": "A generated line about tides.", "origin": "synthetic"},
        ],
    )

    # Then both are stored, pending, under a source named after the token
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] == 2
    assert body["duplicates"] == 0
    assert [r["index"] for r in body["results"]] == [0, 1]
    assert _statuses(response) == ["created", "created"]
    items = Item.objects.filter(pk__in=_ids(response)).order_by("pk")
    assert [i.state for i in items] == [Item.State.PENDING, Item.State.PENDING]
    assert {i.source.name for i in items} == {"producer"}
    assert items[0].external_id == "a-1"
    assert items[1].external_id is None
    assert items[0].content_hash == content_hash("The tide came in slowly.")


def test_ingest_uses_the_body_source_and_per_item_source(api, produce_token, dataset):
    response = _post(
        api.as_token(produce_token),
        [{"text": "one"}, {"text": "two", "source": "scraper"}],
        source="pipeline-a",
    )

    assert response.status_code == 201, response.json()
    names = [Item.objects.get(pk=pk).source.name for pk in _ids(response)]
    assert names == ["pipeline-a", "scraper"]


def test_ingest_enqueues_scoring_after_commit(
    api, produce_token, dataset, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _post(api.as_token(produce_token), [{"text": "alpha"}, {"text": "beta"}])

    assert response.status_code == 201
    assert len(callbacks) == 1
    assert broker_messages() == [
        {"task": "corpus.tasks.items_score_task", "args": [sorted(_ids(response))], "kwargs": {}}
    ]


@pytest.mark.parametrize("token_fixture", ["consume_token", "admin_token", "other_produce_token"])
def test_ingest_refuses_tokens_without_produce_scope_on_this_dataset(
    api, request, dataset, token_fixture
):
    # Given a consumer of `demo`, an admin token (no produce scope), a producer of another dataset
    token = request.getfixturevalue(token_fixture)

    response = _post(api.as_token(token), [{"text": "should not be stored"}])

    assert response.status_code == 403
    assert response.json()["errors"][0]["message"]
    assert not Item.objects.exists()


def test_ingest_refuses_revoked_token(api, produce_token, dataset):
    token_revoke(actor=SYSTEM, token=produce_token)

    response = _post(api.as_token(produce_token), [{"text": "late"}])

    assert response.status_code == 401
    assert response.json() == {"errors": [{"message": "Invalid or revoked token."}]}
    assert not Item.objects.exists()


def test_ingest_without_token_is_401_with_challenge(api, dataset):
    response = _post(api, [{"text": "anonymous"}])

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "errors" in response.json()
    assert not Item.objects.exists()


def test_ingest_with_unknown_key_is_401(api, dataset):
    api.credentials(HTTP_AUTHORIZATION="Token sg_not-a-real-key")

    response = _post(api, [{"text": "forged"}])

    assert response.status_code == 401
    assert not Item.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_items_endpoint_wrong_method_is_405(api, produce_token, dataset, method):
    response = getattr(api.as_token(produce_token), method)(URL, {}, format="json")

    assert response.status_code == 405
    assert response.json()["errors"][0]["message"]


def test_ingest_into_unknown_dataset_is_404(api, admin_token, produce_token):
    response = api.as_token(produce_token).post(
        "/api/v1/datasets/nope/items/", {"items": [{"text": "x"}]}, format="json"
    )

    assert response.status_code == 404


# Idempotency --------------------------------------------------------------------------------


def test_same_request_twice_returns_same_ids_and_stores_nothing_new(
    api, produce_token, dataset, django_capture_on_commit_callbacks
):
    client = api.as_token(produce_token)
    items = [
        {"text": "first text", "external_id": "e1"},
        {"text": "second text"},
        {"text": "third text", "external_id": "e3", "metadata": {"k": 1}},
    ]
    first = _post(client, items)
    assert first.status_code == 201
    stored = Item.objects.count()
    events = AuditEvent.objects.count()

    # When the pipeline retries the very same request
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = _post(client, items)

    # Then it gets the same ids back, all duplicates, and nothing new is stored or scored
    assert second.status_code == 201
    assert _ids(second) == _ids(first)
    assert _statuses(second) == ["duplicate"] * 3
    assert second.json()["created"] == 0
    assert second.json()["duplicates"] == 3
    assert Item.objects.count() == stored == 3
    assert callbacks == []
    # A replay is still a request: it is audited once, as having created nothing.
    assert AuditEvent.objects.count() == events + 1
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "items.ingested"
    assert event.payload["created"] == []
    assert event.payload["duplicates"] == 3


def test_duplicates_inside_one_request_share_one_item(api, produce_token, dataset):
    response = _post(
        api.as_token(produce_token),
        [
            {"text": "Same words here."},
            {"text": "  same   WORDS here.  "},
            {"text": "Other words."},
            {"text": "keyed", "external_id": "k"},
            {"text": "keyed again, other text", "external_id": "k"},
        ],
    )

    assert response.status_code == 201
    ids = _ids(response)
    assert _statuses(response) == ["created", "duplicate", "created", "created", "duplicate"]
    assert ids[1] == ids[0]
    assert ids[4] == ids[3]
    assert Item.objects.count() == 3
    assert Item.objects.get(pk=ids[3]).text == "keyed"


def test_external_id_is_the_key_when_given(api, produce_token, dataset):
    client = api.as_token(produce_token)
    first = _post(client, [{"text": "version one", "external_id": "doc-7"}])

    # Same (source, external_id), another text: a duplicate, the stored text is kept
    again = _post(client, [{"text": "version two", "external_id": "doc-7"}])
    # Same text, another external_id: a new item (the content hash is not the key here)
    other_key = _post(client, [{"text": "version one", "external_id": "doc-8"}])
    # Same external_id in another source: a new item
    other_source = _post(client, [{"text": "version one", "external_id": "doc-7"}], source="b")

    assert _statuses(again) == ["duplicate"]
    assert _ids(again) == _ids(first)
    assert Item.objects.get(pk=_ids(first)[0]).text == "version one"
    assert _statuses(other_key) == ["created"]
    assert _statuses(other_source) == ["created"]
    assert len({*_ids(first), *_ids(other_key), *_ids(other_source)}) == 3


def test_content_hash_is_the_key_without_external_id(api, produce_token, dataset):
    client = api.as_token(produce_token)
    first = _post(client, [{"text": "The Quick brown fox."}])

    variants = _post(
        client,
        [
            {"text": "the quick brown fox."},
            {"text": "  The\tQuick\n\nbrown   fox.  "},
            {"text": "ＴＨＥ ＱＵＩＣＫ brown fox."},  # full-width letters fold under NFKC
            {"text": "The quick brown fox!"},
        ],
        source="another-pipeline",
    )

    assert variants.status_code == 201
    assert _statuses(variants) == ["duplicate", "duplicate", "duplicate", "created"]
    assert _ids(variants)[:3] == _ids(first) * 3
    assert Item.objects.count() == 2


def test_content_hash_key_is_per_dataset(api, produce_token, other_produce_token, dataset):
    ours = _post(api.as_token(produce_token), [{"text": "shared sentence"}])
    theirs = APIClient()
    theirs.credentials(HTTP_AUTHORIZATION=f"Token {other_produce_token.key}")

    response = theirs.post(
        "/api/v1/datasets/other/items/", {"items": [{"text": "shared sentence"}]}, format="json"
    )

    assert response.status_code == 201
    assert _statuses(response) == ["created"]
    assert _ids(response) != _ids(ours)


# All or nothing -----------------------------------------------------------------------------


def test_one_bad_item_among_1000_stores_nothing(api, produce_token, dataset):
    items = [
        {"text": f"Item number {n} of the big batch.", "external_id": f"n{n}"} for n in range(1000)
    ]
    items[637]["text"] = "   "
    events = AuditEvent.objects.count()

    response = _post(api.as_token(produce_token), items, source="bulk")

    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"index": 637, "field": "text", "message": "text is empty"}]
    }
    assert not Item.objects.exists()
    assert not Source.objects.filter(name="bulk").exists()
    assert AuditEvent.objects.count() == events


def test_one_unknown_parent_among_1000_stores_nothing(api, produce_token, dataset):
    # A problem only the database can see (after sources were created in the transaction)
    items = [{"text": f"Row {n} of another batch.", "external_id": f"r{n}"} for n in range(1000)]
    items[999]["parents"] = ["no-such-external-id"]
    events = AuditEvent.objects.count()

    response = _post(api.as_token(produce_token), items, source="fresh-source")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "index": 999,
            "field": "parents.0",
            "message": "no item with external_id 'no-such-external-id' in this source",
        }
    ]
    assert not Item.objects.exists()
    assert not Source.objects.filter(name="fresh-source").exists()
    assert AuditEvent.objects.count() == events


def test_full_batch_of_1000_is_accepted(api, produce_token, dataset):
    items = [{"text": f"Accepted item {n}."} for n in range(1000)]

    response = _post(api.as_token(produce_token), items)

    assert response.status_code == 201
    assert response.json()["created"] == 1000
    assert Item.objects.count() == 1000
    # Ids follow the request order when there is no lineage to sort by.
    assert _ids(response) == sorted(_ids(response))


# Lineage ------------------------------------------------------------------------------------


def test_generation_is_derived_from_parents(api, produce_token, dataset):
    client = api.as_token(produce_token)
    # The child comes first in the batch: parents inside a batch are resolved by external_id
    # in any order.
    batch = _post(
        client,
        [
            {"text": "grandchild", "external_id": "c", "parents": ["b"], "origin": "synthetic"},
            {"text": "child", "external_id": "b", "parents": ["a"], "origin": "synthetic"},
            {"text": "root written by a person", "external_id": "a", "origin": "human"},
            {"text": "no parents, synthetic", "origin": "synthetic"},
            {"text": "declared depth", "parents": ["a"], "generation": 7},
        ],
    )
    assert batch.status_code == 201, batch.json()
    c, b, a, lone, declared = (Item.objects.get(pk=pk) for pk in _ids(batch))

    # From an earlier request: by id and by external_id, the deepest parent wins
    later = _post(
        client,
        [
            {"text": "great-grandchild", "parents": [c.pk, a.pk]},
            {"text": "by external id", "parents": ["b"]},
        ],
    )
    assert later.status_code == 201, later.json()
    deep, by_ext = (Item.objects.get(pk=pk) for pk in _ids(later))

    assert (a.generation, b.generation, c.generation) == (0, 1, 2)
    assert lone.generation == 1
    assert declared.generation == 7
    assert deep.generation == 3
    assert by_ext.generation == 2
    # Parents get lower ids than their children (inserted in topological order).
    assert a.pk < b.pk < c.pk
    links = set(ItemParent.objects.values_list("parent_id", "child_id"))
    assert links == {
        (a.pk, b.pk),
        (b.pk, c.pk),
        (a.pk, declared.pk),
        (c.pk, deep.pk),
        (a.pk, deep.pk),
        (b.pk, by_ext.pk),
    }


# Audit --------------------------------------------------------------------------------------


def test_each_request_appends_one_linked_audit_event(api, produce_token, dataset):
    client = api.as_token(produce_token)
    start = AuditEvent.objects.count()

    responses = [
        _post(client, [{"text": f"batch {n} item {k}"} for k in range(3)]) for n in range(3)
    ]
    responses.append(_post(client, [{"text": "batch 0 item 0"}]))  # a replay

    events = list(AuditEvent.objects.order_by("seq"))
    assert len(events) == start + 4
    for before, after in zip(events, events[1:], strict=False):
        assert after.seq == before.seq + 1
        assert after.prev_hash == before.hash
    assert audit_verify() == (len(events), None)

    ingested = events[start:]
    assert [e.action for e in ingested] == ["items.ingested"] * 4
    assert {e.actor for e in ingested} == {f"token:{produce_token.pk}:producer"}
    assert {e.object_id for e in ingested} == {"demo"}
    for event, response in zip(ingested[:3], responses[:3], strict=True):
        created = sorted(_ids(response))
        assert event.payload["created"] == created
        assert event.payload["duplicates"] == 0
        hashes = (
            Item.objects.filter(pk__in=created)
            .order_by("pk")
            .values_list("content_hash", flat=True)
        )
        assert event.payload["content_hash_digest"] == items_ingest_digest(hashes)


# Concurrency (PostgreSQL) -------------------------------------------------------------------


@pytest.mark.postgres
@postgres_only
def test_concurrent_identical_requests_create_each_item_once(
    transactional_db, dataset, produce_token
):
    token = produce_token
    items = [{"text": f"raced item {n}"} for n in range(30)] + [
        {"text": f"keyed raced item {n}", "external_id": f"k{n}"} for n in range(30)
    ]
    threads_count = 4
    barrier = threading.Barrier(threads_count)
    responses: list = [None] * threads_count
    errors: list[BaseException] = []

    def send(slot: int) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
            barrier.wait(timeout=30)
            responses[slot] = _post(client, items)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors
    assert [r.status_code for r in responses] == [201] * threads_count
    assert len({tuple(_ids(r)) for r in responses}) == 1
    assert sum(r.json()["created"] for r in responses) == 60
    assert Item.objects.count() == 60
    assert AuditEvent.objects.filter(action="items.ingested").count() == threads_count
    assert audit_verify()[1] is None


@pytest.mark.postgres
@postgres_only
def test_a_duplicate_committed_between_lookup_and_insert_is_settled_by_the_retry(
    transactional_db, dataset, produce_token, monkeypatch
):
    # Given a concurrent request that commits the same keys after our lookups found nothing
    # (the audit lock is taken after the lookups; this is the race the retry settles)
    from corpus.services import ingest

    real_lock = ingest.audit_lock
    raced: list = []

    def lock_after_a_racing_commit():  # type: ignore[no-untyped-def]
        if not raced:

            def race() -> None:
                try:
                    client = APIClient()
                    client.credentials(HTTP_AUTHORIZATION=f"Token {produce_token.key}")
                    raced.append(_post(client, items))
                finally:
                    connection.close()

            raced.append("started")
            thread = threading.Thread(target=race)
            thread.start()
            thread.join(timeout=30)
        return real_lock()

    monkeypatch.setattr(ingest, "audit_lock", lock_after_a_racing_commit)
    # (The source exists: a new one, uncommitted in our transaction, would hold the racer up.)
    Source.objects.create(dataset=dataset, name=produce_token.name)
    items = [{"text": "raced without key"}, {"text": "raced with key", "external_id": "k1"}]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {produce_token.key}")

    # When our request goes on to insert
    response = _post(client, items)

    # Then it reports the racer's items as duplicates, and each item exists once
    racer = raced[1]
    assert racer.status_code == 201 and _statuses(racer) == ["created", "created"]
    assert response.status_code == 201, response.json()
    assert _statuses(response) == ["duplicate", "duplicate"]
    assert _ids(response) == _ids(racer)
    assert Item.objects.count() == 2
    assert AuditEvent.objects.filter(action="items.ingested").count() == 2
    assert audit_verify()[1] is None


def test_the_last_attempt_takes_the_lock_before_its_lookups(dataset, monkeypatch):
    # Given two attempts that lose the race (a unique violation at insert)
    from django.db import IntegrityError

    from corpus.services import ingest

    calls: list[bool] = []

    def losing_then_winning(**kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["lock_first"])
        if len(calls) < 3:
            raise IntegrityError("duplicate key value violates unique constraint")
        return ingest.IngestOutcome(results=[])

    monkeypatch.setattr(ingest, "_items_ingest_once", losing_then_winning)

    # When ingesting
    ingest.items_ingest(dataset=dataset, items=[], actor=SYSTEM, default_source="s")

    # Then only the third, last attempt locks first (no ingest can commit between its lookups
    # and its insert, so it cannot lose again)
    assert calls == [False, False, True]
