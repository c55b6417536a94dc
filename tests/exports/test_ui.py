"""The admins' exports page (htmx): policy, preview, create, polling, manifest, download,
retract."""

import re

import pytest

from corpus.models import AuditEvent, Export, ExportPolicy, Item
from corpus.services.exports.build import export_request
from tests.exports.conftest import approved_items, build

PAGE = "/datasets/demo/exports/"
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_page_renders_for_admins(admin_client, dataset):
    approved_items(dataset, 2)
    build(dataset)
    response = admin_client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="policy"' in html and 'id="exports-table"' in html and 'id="retract"' in html
    assert "Download" in html
    assert " style=" not in html  # the CSP forbids inline styles


def test_index_redirects_to_the_only_dataset(admin_client, dataset):
    response = admin_client.get("/exports/")
    assert response.status_code == 302 and response["Location"] == PAGE


def test_page_refused_to_reviewers_and_anonymous(client, reviewer, dataset):
    anonymous = client.get(PAGE)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    client.force_login(reviewer)
    assert client.get(PAGE).status_code == 403
    assert client.post(f"{PAGE}new", {"format": "jsonl"}).status_code == 403
    assert not Export.objects.exists()


def test_wrong_methods(admin_client, dataset):
    assert admin_client.post(PAGE).status_code == 405
    assert admin_client.get(f"{PAGE}new").status_code == 405
    assert admin_client.get(f"{PAGE}policy").status_code == 405


def test_policy_saved_from_the_page_makes_a_version(admin_client, admin_user, dataset):
    response = admin_client.post(
        f"{PAGE}policy", {"policy": '{"max_synthetic_share": 0.4, "seed": 3}'}, **HX
    )
    assert response.status_code == 200
    assert "Saved as version 1" in response.content.decode()
    assert ExportPolicy.objects.get().spec["max_synthetic_share"] == 0.4
    event = AuditEvent.objects.get(action="export_policy.updated")
    assert event.actor == f"user:{admin_user.pk}:admin"


def test_policy_errors_keep_the_text(admin_client, dataset):
    bad = admin_client.post(f"{PAGE}policy", {"policy": '{"max_synthetic_share": 7}'}, **HX)
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "max_synthetic_share" in html and "7}" in html
    broken = admin_client.post(f"{PAGE}policy", {"policy": "{not json"}, **HX)
    assert broken.status_code == 400 and "not valid JSON" in broken.content.decode()
    assert not ExportPolicy.objects.exists()


def test_preview_shows_counts(admin_client, dataset):
    approved_items(dataset, 4, origin="synthetic")
    response = admin_client.post(f"{PAGE}preview", {"mode": ""}, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="preview">')
    assert "<strong>4</strong> of 4" in html
    assert not Export.objects.exists()


def test_create_adds_a_polling_row(admin_client, admin_user, dataset):
    approved_items(dataset, 2)
    response = admin_client.post(f"{PAGE}new", {"format": "parquet", "mode": ""}, **HX)
    assert response.status_code == 200
    export = Export.objects.get()
    assert export.format == "parquet" and export.requested_by == f"user:{admin_user.pk}:admin"
    html = response.content.decode()
    row = re.search(rf'<tr id="export-{export.pk}"[^>]*>', html).group(0)
    assert 'hx-trigger="every 1s"' in row


def test_create_without_htmx_redirects(admin_client, dataset):
    response = admin_client.post(f"{PAGE}new", {"format": "jsonl"})
    assert response.status_code == 302 and response["Location"] == PAGE
    bad = admin_client.post(f"{PAGE}new", {"format": "xml"})
    assert bad.status_code == 400


def test_polling_continues_while_building_and_stops_when_done(admin_client, dataset):
    from corpus.services.exports.build import export_build

    approved_items(dataset, 2)
    export = export_request(dataset=dataset, actor="t")
    url = f"{PAGE}{export.pk}/row"
    building = admin_client.get(url, **HX)
    assert building.status_code == 200
    assert 'hx-trigger="every 1s"' in building.content.decode()

    export_build(export_id=export.pk)
    done = admin_client.get(url, **HX)

    assert done.status_code == 286  # htmx: swap this, then stop polling
    html = done.content.decode()
    assert "hx-trigger" not in html and "ready" in html and "Download" in html


def test_manifest_page_charts_the_composition(admin_client, dataset):
    approved_items(dataset, 3, origin="synthetic")
    approved_items(dataset, 1, source="web", origin="human")
    export = build(dataset)
    response = admin_client.get(f"{PAGE}{export.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    meters = re.findall(r'<meter min="0" max="1" value="([0-9.]+)">', html)
    assert "0.750000" in meters and "0.250000" in meters
    assert export.sha256 in html and export.merkle_root in html
    assert " style=" not in html


def test_admin_downloads_from_the_page_and_it_is_audited(admin_client, admin_user, dataset):
    approved_items(dataset, 2)
    export = build(dataset)
    response = admin_client.get(f"{PAGE}{export.pk}/download")
    assert response.status_code == 200
    assert len(b"".join(response.streaming_content)) == export.size
    event = AuditEvent.objects.get(action="export.downloaded")
    assert event.actor == f"user:{admin_user.pk}:admin"


def test_retract_from_the_page(admin_client, dataset):
    item = approved_items(dataset, 1)[0]
    missing = admin_client.post("/datasets/demo/retract", {"item_id": item.pk, "reason": ""}, **HX)
    assert missing.status_code == 400
    response = admin_client.post(
        "/datasets/demo/retract", {"item_id": item.pk, "reason": "duplicate of a test item"}, **HX
    )
    assert response.status_code == 200
    assert f"Item {item.pk} retracted" in response.content.decode()
    assert Item.objects.get(pk=item.pk).state == Item.State.RETRACTED
    again = admin_client.post("/datasets/demo/retract", {"item_id": item.pk, "reason": "x"}, **HX)
    assert again.status_code == 400 and "only approved" in again.content.decode()
