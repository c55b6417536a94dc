"""The export endpoints: each allowed case, the wrong method, each refused role."""

import hashlib

import pytest

from corpus.models import AuditEvent, Export, ExportItem, ExportPolicy, Item
from corpus.services.exports import build as build_module
from tests.exports.conftest import approved_items, build
from tests.factories import ItemFactory

POLICY = "/api/v1/datasets/demo/export-policy/"
PREVIEW = "/api/v1/datasets/demo/exports/preview"
EXPORTS = "/api/v1/datasets/demo/exports/"


def detail(export_id: int) -> str:
    return f"{EXPORTS}{export_id}/"


def download(export_id: int) -> str:
    return f"{EXPORTS}{export_id}/download"


@pytest.fixture
def ready(dataset):
    approved_items(dataset, 5, origin="synthetic")
    approved_items(dataset, 3, source="web", origin="human")
    return build(dataset)


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


# --- Export policy ---------------------------------------------------------------------------


def test_policy_get_returns_the_default_version_0(api, admin_token, dataset):
    response = api.as_token(admin_token).get(POLICY)
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 0
    assert body["policy"]["mode"] == "accumulate"
    assert body["policy"]["on_violation"] == "sample"


def test_policy_put_makes_a_new_version_each_time(api, admin_token, dataset):
    client = api.as_token(admin_token)
    document = {
        "max_synthetic_share": 0.6,
        "min_human_share": 0.2,
        "source_caps": {"web": {"share": 0.5}, "scraper": {"count": 1000}},
        "generator_caps": {"gpt-x": {"share": 0.3}},
        "max_generation": 3,
        "max_per_cluster": 2,
        "on_violation": "block",
        "seed": 42,
    }
    first = client.put(POLICY, document, format="json")
    second = client.put(POLICY, {**document, "seed": 43}, format="json")
    assert first.status_code == second.status_code == 200
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert client.get(POLICY).json()["policy"] == {
        **document,
        "mode": "accumulate",
        "seed": 43,
        "max_unknown_share": None,
    }
    events = AuditEvent.objects.filter(action="export_policy.updated")
    assert events.count() == 2
    assert events.last().actor.startswith("token:")


def test_policy_put_reports_each_bad_field(api, admin_token, dataset):
    response = api.as_token(admin_token).put(
        POLICY,
        {
            "max_synthetic_share": 1.5,
            "source_caps": {"web": {"share": 0.5, "count": 3}},
            "on_violation": "explode",
            "colour": "red",
        },
        format="json",
    )
    assert response.status_code == 400
    fields = {e.get("field") for e in response.json()["errors"]}
    assert fields == {"max_synthetic_share", "source_caps.web", "on_violation", "colour"}
    assert not ExportPolicy.objects.exists()


def test_policy_put_refuses_a_non_object(api, admin_token, dataset):
    response = api.as_token(admin_token).put(POLICY, [1, 2], format="json")
    assert response.status_code == 400


@pytest.mark.parametrize("token", ["consume_token", "produce_token", "other_produce_token"])
def test_policy_refused_without_admin_scope(api, dataset, token, request):
    client = api.as_token(request.getfixturevalue(token))
    assert client.get(POLICY).status_code == 403
    assert client.put(POLICY, {}, format="json").status_code == 403


def test_policy_needs_a_token(api, dataset):
    assert api.get(POLICY).status_code == 401


def test_policy_refused_for_an_admin_token_of_another_dataset(api, other_dataset, dataset):
    from tests.conftest import _token

    token = _token(["admin"], other_dataset, name="other-admin")
    assert api.as_token(token).get(POLICY).status_code == 403


def test_policy_wrong_method(api, admin_token, dataset):
    assert api.as_token(admin_token).post(POLICY, {}, format="json").status_code == 405


# --- Preview -----------------------------------------------------------------------------------


def test_preview_counts_and_cuts_without_writing(api, consume_token, admin_token, dataset):
    approved_items(dataset, 6, origin="synthetic", generator_model="gpt")
    approved_items(dataset, 2, source="web", origin="human")
    api.as_token(admin_token).put(POLICY, {"max_synthetic_share": 0.5}, format="json")
    events = AuditEvent.objects.count()

    response = api.as_token(consume_token).post(PREVIEW, {}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["available"]["total"] == 8
    assert body["available"]["origin"] == {"human": 2, "synthetic": 6}
    assert body["available"]["generator"] == {"(none)": 2, "gpt": 6}
    assert body["kept"]["origin"] == {"human": 2, "synthetic": 2}
    assert body["left_out"]["by_reason"] == {"max_synthetic_share": 4}
    assert body["policy_version"] == 1
    assert body["would_fail"] is False
    assert not Export.objects.exists() and not ExportItem.objects.exists()
    assert AuditEvent.objects.count() == events


def test_preview_says_when_a_blocking_policy_would_fail(api, consume_token, admin_token, dataset):
    approved_items(dataset, 3, generation=5)
    api.as_token(admin_token).put(
        POLICY, {"max_generation": 2, "on_violation": "block"}, format="json"
    )
    body = api.as_token(consume_token).post(PREVIEW, {}, format="json").json()
    assert body["would_fail"] is True
    assert body["blocked"] == ["max_generation: 3 items deeper than generation 2"]


def test_preview_rejects_bad_input(api, consume_token, dataset):
    response = api.as_token(consume_token).post(PREVIEW, {"mode": "sideways"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "mode"


@pytest.mark.parametrize("token", ["produce_token", "admin_token", "other_produce_token"])
def test_preview_refused_without_consume_scope_of_the_dataset(api, dataset, token, request):
    client = api.as_token(request.getfixturevalue(token))
    assert client.post(PREVIEW, {}, format="json").status_code == 403


def test_preview_wrong_method_and_no_token(api, consume_token, dataset):
    assert api.post(PREVIEW, {}, format="json").status_code == 401
    assert api.as_token(consume_token).get(PREVIEW).status_code == 405


# --- Create, list, detail ----------------------------------------------------------------------


def test_create_answers_202_and_enqueues_the_build_on_commit(
    api, consume_token, dataset, monkeypatch, django_capture_on_commit_callbacks
):
    approved_items(dataset, 2)
    queued: list[int] = []
    monkeypatch.setattr("corpus.tasks.export_build_task.delay", queued.append)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_token(consume_token).post(EXPORTS, {"format": "parquet"}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["format"] == "parquet"
    assert response["Location"] == detail(body["id"])
    assert queued == [body["id"]]
    event = AuditEvent.objects.get(action="export.requested")
    assert event.actor.startswith("token:") and event.object_id == str(body["id"])


def test_create_rejects_bad_input(api, consume_token, dataset, ready):
    client = api.as_token(consume_token)
    response = client.post(
        EXPORTS, {"format": "csv", "mode": "accumulate", "since": ready.pk}, format="json"
    )
    assert response.status_code == 400
    assert {e.get("field") for e in response.json()["errors"]} == {"format"}
    response = client.post(EXPORTS, {"mode": "accumulate", "since": ready.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "since"
    response = client.post(EXPORTS, {"mode": "delta", "since": 999}, format="json")
    assert response.status_code == 400
    assert Export.objects.count() == 1


@pytest.mark.parametrize("token", ["produce_token", "admin_token", "other_produce_token"])
def test_create_refused_without_consume_scope_of_the_dataset(api, dataset, token, request):
    client = api.as_token(request.getfixturevalue(token))
    assert client.post(EXPORTS, {}, format="json").status_code == 403
    assert client.get(EXPORTS).status_code == 403
    assert not Export.objects.exists()


def test_exports_wrong_method(api, consume_token, dataset):
    assert api.as_token(consume_token).delete(EXPORTS).status_code == 405


def test_list_pages_newest_first_in_constant_queries(
    api, consume_token, dataset, ready, django_assert_num_queries
):
    build(dataset)
    build(dataset)
    client = api.as_token(consume_token)
    client.get(EXPORTS)  # the token's first use records last_used_at
    # token lookup, dataset, exports (with dataset and policy joined)
    with django_assert_num_queries(3):
        first = client.get(EXPORTS, {"limit": 2}).json()
    assert [e["id"] for e in first["results"]] == sorted(
        Export.objects.values_list("id", flat=True), reverse=True
    )[:2]
    rest = client.get(EXPORTS, {"limit": 2, "cursor": first["next"]}).json()
    assert [e["id"] for e in rest["results"]] == [ready.pk]
    assert rest["next"] is None
    ready_only = client.get(EXPORTS, {"status": "ready"}).json()["results"]
    assert all(e["status"] == "ready" for e in ready_only)
    assert client.get(EXPORTS, {"status": "odd"}).status_code == 400


def test_detail_shows_status_progress_and_manifest(api, consume_token, dataset, ready):
    body = api.as_token(consume_token).get(detail(ready.pk)).json()
    assert body["status"] == "ready"
    assert body["rows_written"] == body["rows_total"] == 8
    assert body["progress"] == 1.0
    assert body["manifest"]["merkle"]["root"] == ready.merkle_root
    assert body["download_url"] == download(ready.pk)


def test_detail_of_another_datasets_export_is_404(api, consume_token, other_dataset, dataset):
    approved_items(other_dataset, 1)
    other = build(other_dataset)
    assert api.as_token(consume_token).get(detail(other.pk)).status_code == 404


@pytest.mark.parametrize("token", ["produce_token", "admin_token", "other_produce_token"])
def test_detail_and_download_refused_to_other_tokens(api, dataset, ready, token, request):
    client = api.as_token(request.getfixturevalue(token))
    assert client.get(detail(ready.pk)).status_code == 403
    assert client.get(download(ready.pk)).status_code == 403


def test_detail_wrong_method(api, consume_token, dataset, ready):
    assert api.as_token(consume_token).delete(detail(ready.pk)).status_code == 405


# --- Download ----------------------------------------------------------------------------------


def test_download_streams_the_file_with_length_and_etag(
    api, consume_token, dataset, ready, export_dirs
):
    data = (export_dirs / "exports" / ready.file).read_bytes()
    response = api.as_token(consume_token).get(download(ready.pk))
    assert response.status_code == 200
    assert response.streaming
    assert _body(response) == data
    assert response["Content-Length"] == str(len(data))
    assert response["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "application/jsonl"
    assert response["Content-Disposition"] == f'attachment; filename="demo-export-{ready.pk}.jsonl"'
    event = AuditEvent.objects.get(action="export.downloaded")
    assert event.actor.startswith("token:") and event.payload["range"] is None


def test_download_with_any_accept_header(api, consume_token, dataset, ready):
    response = api.as_token(consume_token).get(
        download(ready.pk), HTTP_ACCEPT="application/octet-stream"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", None, None)],
)
def test_download_serves_byte_ranges(
    api, consume_token, dataset, ready, export_dirs, header, first, last
):
    data = (export_dirs / "exports" / ready.file).read_bytes()
    size = len(data)
    if header == "bytes=-50":
        first, last = size - 50, size - 1
    last = size - 1 if last is None else last

    response = api.as_token(consume_token).get(download(ready.pk), HTTP_RANGE=header)

    assert response.status_code == 206
    assert _body(response) == data[first : last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert response["Content-Length"] == str(last - first + 1)
    event = AuditEvent.objects.filter(action="export.downloaded").last()
    assert event.payload["range"] == f"bytes={first}-{last}"


def test_download_range_past_the_end_is_416(api, consume_token, dataset, ready):
    response = api.as_token(consume_token).get(
        download(ready.pk), HTTP_RANGE=f"bytes={ready.size}-"
    )
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{ready.size}"
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()


def test_download_ignores_ranges_it_does_not_serve(api, consume_token, dataset, ready):
    client = api.as_token(consume_token)
    for header in ("bytes=0-1,5-9", "bytes=9-2", "items=0-5"):
        response = client.get(download(ready.pk), HTTP_RANGE=header)
        assert response.status_code == 200, header
        assert len(_body(response)) == ready.size


def test_download_if_none_match_and_if_range(api, consume_token, dataset, ready):
    client = api.as_token(consume_token)
    etag = f'"{ready.sha256}"'
    not_modified = client.get(download(ready.pk), HTTP_IF_NONE_MATCH=etag)
    assert not_modified.status_code == 304
    assert not_modified["ETag"] == etag
    stale = client.get(download(ready.pk), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200
    fresh = client.get(download(ready.pk), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag)
    assert fresh.status_code == 206


def test_download_of_an_unfinished_export_is_409(api, consume_token, dataset):
    approved_items(dataset, 1)
    export = build_module.export_request(dataset=dataset, actor="t")
    response = api.as_token(consume_token).get(download(export.pk))
    assert response.status_code == 409
    assert "queued" in response.json()["errors"][0]["message"]


def test_download_of_a_file_gone_from_storage_is_410(
    api, consume_token, dataset, ready, export_dirs
):
    (export_dirs / "exports" / ready.file).unlink()
    response = api.as_token(consume_token).get(download(ready.pk))
    assert response.status_code == 410
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()


def test_download_wrong_method(api, consume_token, dataset, ready):
    assert api.as_token(consume_token).post(download(ready.pk)).status_code == 405


# --- Retract -----------------------------------------------------------------------------------


def retract(item_id: int) -> str:
    return f"/api/v1/items/{item_id}/retract"


def test_admin_retracts_an_approved_item(api, admin_token, dataset):
    item = approved_items(dataset, 1)[0]
    response = api.as_token(admin_token).post(
        retract(item.pk), {"reason": "copyrighted"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["state"] == "retracted"
    assert Item.objects.get(pk=item.pk).state == Item.State.RETRACTED
    event = AuditEvent.objects.get(action="item.retracted")
    assert event.payload["reason"] == "copyrighted" and event.actor.startswith("token:")


def test_retract_refuses_a_missing_reason_and_a_non_approved_item(api, admin_token, dataset):
    client = api.as_token(admin_token)
    item = approved_items(dataset, 1)[0]
    queued = ItemFactory(dataset=dataset)
    missing = client.post(retract(item.pk), {}, format="json")
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "reason"
    conflict = client.post(retract(queued.pk), {"reason": "x"}, format="json")
    assert conflict.status_code == 409
    assert client.post(retract(987654), {"reason": "x"}, format="json").status_code == 404


@pytest.mark.parametrize("token", ["consume_token", "produce_token", "other_produce_token"])
def test_retract_refused_without_admin_scope(api, dataset, token, request):
    item = approved_items(dataset, 1)[0]
    client = api.as_token(request.getfixturevalue(token))
    assert client.post(retract(item.pk), {"reason": "x"}, format="json").status_code == 403
    assert Item.objects.get(pk=item.pk).state == Item.State.APPROVED


def test_retract_wrong_method_and_no_token(api, admin_token, dataset):
    item = approved_items(dataset, 1)[0]
    assert api.post(retract(item.pk), {"reason": "x"}, format="json").status_code == 401
    assert api.as_token(admin_token).get(retract(item.pk)).status_code == 405
