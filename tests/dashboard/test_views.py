"""The dashboard page, its CSV and JSON, and who may see what."""

import csv
import io
import re

import pytest
from django.urls import reverse

from dashboard.selectors import dashboard_get
from dashboard.services.rollup import dashboard_rollup
from tests.dashboard.conftest import NOW
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rolled(board):  # type: ignore[no-untyped-def]
    dashboard_rollup(dataset=board["dataset"], now=NOW)
    return board


def _url(name: str, *args: str) -> str:
    return reverse(f"dashboard:{name}", args=args)


def test_admin_sees_every_chart_as_svg(client, rolled, admin_user, django_assert_max_num_queries):
    client.force_login(admin_user)
    with django_assert_max_num_queries(12):
        response = client.get(_url("dataset", "demo"))
    assert response.status_code == 200
    page = response.content.decode()
    for title in (
        "Origin of the approved set",
        "Origin of each export",
        "Tail coverage",
        "Detector score per generator",
        "Generation depth of the approved set",
        "Near-duplicates per generator",
        "Flow per day",
        "Queue and scoring backlog",
        "Decisions per reviewer per day",
        "Agreement and gold accuracy",
    ):
        assert title in page
    assert page.count("<svg") >= 12
    assert "<script>" not in page
    # Every chart says what healthy and unhealthy look like.
    assert page.count('class="explain"') == 13
    assert "Content-Security-Policy" in response.headers
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


def test_reviewer_sees_the_queue_and_own_figures(client, rolled, alice):
    client.force_login(alice)
    response = client.get(_url("dataset", "demo"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Queue and scoring backlog" in page
    assert "Your decisions per day" in page
    assert "Tail coverage" not in page
    assert "Origin of the approved set" not in page
    assert "bob" not in page  # another reviewer's figures
    assert _url("alerts", "demo") not in page


def test_reviewer_cannot_download_admin_charts(client, rolled, alice):
    client.force_login(alice)
    assert client.get(_url("chart-csv", "demo", "tail_coverage")).status_code == 404
    assert client.get(_url("chart-csv", "demo", "queue")).status_code == 200


def test_someone_without_access_gets_404_and_anonymous_logs_in(client, rolled, outsider):
    response = client.get(_url("dataset", "demo"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(outsider)
    assert client.get(_url("dataset", "demo")).status_code == 404
    assert client.get(_url("chart-json", "demo", "queue")).status_code == 404


def test_wrong_method_is_405(client, rolled, admin_user):
    client.force_login(admin_user)
    assert client.post(_url("dataset", "demo")).status_code == 405
    assert client.post(_url("chart-csv", "demo", "flow")).status_code == 405


def test_each_chart_csv_and_json_match_the_chart_data(client, rolled, admin_user):
    # The backlog's age is live (it moves between two reads): no backlog, no age.
    rolled["pending"].delete()
    client.force_login(admin_user)
    board = dashboard_get(dataset=rolled["dataset"], user=admin_user, is_admin=True)
    assert len(board.charts) == 13
    for chart in board.charts:
        response = client.get(_url("chart-csv", "demo", chart.key))
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(response.content.decode())))
        assert table[0] == chart.columns
        expected = [["" if v is None else str(v) for v in row] for row in chart.rows]
        assert table[1:] == expected, chart.key
        data = client.get(_url("chart-json", "demo", chart.key)).json()
        assert data["columns"] == chart.columns
        assert data["rows"] == [list(row) for row in chart.rows]


def test_whole_page_as_json_and_csv(client, rolled, admin_user):
    client.force_login(admin_user)
    data = client.get(_url("dataset", "demo"), {"format": "json"}).json()
    keys = [chart["chart"] for chart in data["charts"]]
    assert "tail_coverage" in keys and "flow" in keys
    tail = next(c for c in data["charts"] if c["chart"] == "tail_coverage")
    assert tail["rows"][-1][1] == 0.6
    text = client.get(_url("dataset", "demo"), {"format": "csv"}).content.decode()
    assert "#tail_coverage,day,tail_coverage" in text
    response = client.get(_url("dataset", "demo"), {"format": "xml"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "format"


def test_unknown_chart_is_404(client, rolled, admin_user):
    client.force_login(admin_user)
    assert client.get(_url("chart-csv", "demo", "nope")).status_code == 404


def test_csv_defuses_spreadsheet_formulas_in_untrusted_names(client, rolled, admin_user):
    from corpus.models import Item

    Item.objects.filter(pk=rolled["q1"].pk).update(generator_model="=cmd|' /C calc'!A0")
    # written outside the services (no audit event names the item): a full rollup sees it
    dashboard_rollup(dataset=rolled["dataset"], now=NOW, full=True)
    client.force_login(admin_user)
    text = client.get(_url("chart-csv", "demo", "near_duplicates")).content.decode()
    assert "\n'=cmd" in text


def test_dashboard_index_goes_to_the_only_dataset(client, rolled, alice):
    client.force_login(alice)
    response = client.get(_url("index"))
    assert response.status_code == 302 and response["Location"] == _url("dataset", "demo")


def test_dashboard_before_any_rollup_says_so(client, dataset, admin_user):
    client.force_login(admin_user)
    response = client.get(_url("dataset", "demo"))
    assert response.status_code == 200
    assert "No rollup yet" in response.content.decode()


def test_untrusted_generator_names_are_escaped_in_svg(client, rolled, admin_user):
    from corpus.models import Item

    Item.objects.filter(pk=rolled["q1"].pk).update(generator_model="<script>x()</script>")
    dashboard_rollup(dataset=rolled["dataset"], now=NOW, full=True)
    client.force_login(admin_user)
    page = client.get(_url("dataset", "demo")).content.decode()
    assert "<script>x()" not in page
    assert "&lt;script&gt;x()" in page


def test_second_admin_through_group(client, rolled):
    from tests.review.conftest import add_to_group

    lead = add_to_group(UserFactory(username="lead"), "admin")
    client.force_login(lead)
    assert "Tail coverage" in client.get(_url("dataset", "demo")).content.decode()


def test_admin_asks_for_a_rollup_now(
    client, dataset, admin_user, alice, monkeypatch, django_capture_on_commit_callbacks
):
    from dashboard.tasks import dashboard_rollup_task

    sent = []
    monkeypatch.setattr(dashboard_rollup_task, "delay", lambda dataset_id: sent.append(dataset_id))
    client.force_login(alice)
    assert client.post(_url("rollup", "demo")).status_code == 403
    client.force_login(admin_user)
    assert client.get(_url("rollup", "demo")).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url("rollup", "demo"))
    assert response.status_code == 303
    assert response["Location"] == _url("dataset", "demo") + "?rollup=queued"
    assert sent == [dataset.pk]
    assert "Refresh queued" in client.get(response["Location"]).content.decode()


def test_refresh_now_sits_on_the_figures_line(client, rolled, admin_user):
    """A <form> inside a <p> makes the browser close the <p> before the form, so "Refresh now"
    dropped onto a line of its own under "Figures as of". The line is a <div> holding both."""
    client.force_login(admin_user)
    page = client.get(_url("dataset", "demo")).content.decode()
    # no <form> anywhere inside a paragraph (what HTML parsers split apart)
    for paragraph in re.findall(r"<p[\s>].*?</p>", page, re.S):
        assert "<form" not in paragraph, paragraph
    # and the figures line holds the refresh form
    line = re.search(r'<div class="muted dash-meta">(.*?)</div>', page, re.S)
    assert line is not None
    assert "Figures as of" in line.group(1) and "Refresh now" in line.group(1)
