"""An export built by a real Celery worker process, requested and fetched through the API."""

import hashlib
import time

import pytest
from django.core.management import call_command

from corpus.models import Export
from tests.exports.conftest import approved_items


@pytest.fixture
def worker_export_dirs(monkeypatch, export_dirs):
    """The worker subprocess reads its settings from the environment: point it at the same
    export folders as this process."""
    monkeypatch.setenv("SYNTHGATE_EXPORT_DIR", str(export_dirs / "exports"))
    monkeypatch.setenv("SYNTHGATE_EXPORT_TMP_DIR", str(export_dirs / "staging"))
    return export_dirs


@pytest.mark.integration
def test_export_built_by_a_real_worker(
    worker_export_dirs, celery_worker_process, api, consume_token, dataset
):
    # Given approved items, committed, and a live worker
    items = approved_items(dataset, 25, origin="synthetic")
    approved_items(dataset, 5, source="web", origin="human")
    client = api.as_token(consume_token)

    # When a pipeline asks for a Parquet export (the request commits; on_commit enqueues)
    response = client.post("/api/v1/datasets/demo/exports/", {"format": "parquet"}, format="json")
    assert response.status_code == 202
    url = response["Location"]
    deadline = time.monotonic() + 90
    while (body := client.get(url).json())["status"] not in ("ready", "failed"):
        if time.monotonic() > deadline:
            pytest.fail(f"export still {body['status']}:\n{celery_worker_process.log_tail()}")
        time.sleep(0.2)

    # Then the worker built it, and the download is the file the manifest describes
    assert body["status"] == "ready", body["error"]
    assert body["rows_written"] == 30
    download = client.get(body["download_url"])
    data = b"".join(download.streaming_content)
    assert hashlib.sha256(data).hexdigest() == body["manifest"]["file"]["sha256"]
    assert download["ETag"] == f'"{body["sha256"]}"'
    assert body["manifest"]["counts"]["origin"] == {"human": 5, "synthetic": 25}
    assert Export.objects.get(pk=body["id"]).rows_total == len(items) + 5
    call_command("verify_export", str(body["id"]))
