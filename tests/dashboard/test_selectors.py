"""Every chart's figures on the hand-built dataset of conftest.py, to the exact number."""

from datetime import timedelta

import pytest

from corpus.models import FeedKind, Item
from corpus.services.feed import feed_append
from dashboard.models import DashboardState, TailGram
from dashboard.selectors import dashboard_get
from dashboard.services.rollup import dashboard_rollup, tail_coverage_get
from dashboard.tail import tail_grams
from tests.dashboard.conftest import DAY, NOW

pytestmark = pytest.mark.django_db

TODAY = DAY.date().isoformat()
YESTERDAY = (DAY - timedelta(days=1)).date().isoformat()


@pytest.fixture
def charts(board, admin_user):  # type: ignore[no-untyped-def]
    dashboard_rollup(dataset=board["dataset"], now=NOW)
    found = dashboard_get(dataset=board["dataset"], user=admin_user, is_admin=True, now=NOW)
    return {chart.key: chart for chart in found.charts}


def test_approved_share_of_each_origin(charts):
    chart = charts["approved_share"]
    assert chart.columns == ["day", "approved", "human_share", "synthetic_share", "unknown_share"]
    assert chart.rows == [[TODAY, 3, 0.333333, 0.666667, 0.0]]


def test_export_share_from_each_ready_export(charts, board):
    chart = charts["export_share"]
    [row] = chart.rows
    assert row[1:] == [DAY.isoformat(), 4, 0.5, 0.25, 0.25]


def test_diversity_of_approved_against_reference(charts):
    assert charts["compression"].rows == [[TODAY, 3.0, 2.0]]
    assert charts["distinct_2"].rows == [[TODAY, 0.8, 1.0]]
    assert charts["repetition"].rows == [[TODAY, 0.2, 0.0]]


def test_tail_coverage_is_the_share_of_rare_reference_words_approved(charts):
    # rare reference words: beta gamma delta epsilon zeta; approved hold beta gamma delta
    assert charts["tail_coverage"].rows == [[TODAY, 0.6]]
    assert charts["tail_coverage"].headline == "60.0% now"


def test_detector_histogram_per_generator(charts):
    chart = charts["detector_histogram"]
    assert chart.columns == ["bin_low", "bin_high", "(no generator)", "gen-x", "gen-y"]
    nonzero = [row for row in chart.rows if any(row[2:])]
    assert nonzero == [[0.0, 0.1, 1, 0, 0], [0.1, 0.2, 0, 1, 1], [0.9, 1.0, 0, 2, 0]]
    assert len(chart.rows) == 10


def test_generation_depth_mix_of_approved(charts):
    assert charts["depth_mix"].rows == [["0", 1], ["1", 1], ["2", 0], ["3", 0], ["4+", 1]]


def test_near_duplicate_clusters_and_rates(charts):
    chart = charts["near_duplicates"]
    assert chart.rows == [
        ["(no generator)", 1, 0, 0.0],
        ["gen-x", 3, 2, 0.666667],
        ["gen-y", 1, 0, 0.0],
    ]
    assert chart.headline == "1 near-duplicate clusters"


def test_flow_per_day(charts):
    assert charts["flow"].columns == [
        "day",
        "ingested",
        "auto_rejected",
        "queued",
        "approved",
        "rejected",
    ]
    assert charts["flow"].rows == [[YESTERDAY, 2, 0, 2, 0, 0], [TODAY, 8, 1, 6, 3, 1]]


def test_queue_left_and_scoring_backlog(charts):
    assert charts["queue"].rows == [
        ["queue_left", 3],
        ["scoring_backlog", 1],
        ["oldest_unscored_minutes", 90.0],
    ]


def test_reviewer_throughput(charts):
    assert charts["throughput"].columns == ["day", "alice", "bob"]
    assert charts["throughput"].rows == [[YESTERDAY, 2, 0], [TODAY, 3, 1]]


def test_agreement_kappa_and_gold_accuracy(charts):
    chart = charts["agreement"]
    assert chart.headline == "Cohen's kappa 0.50 on 4 items with several votes"
    assert chart.rows == [["alice", 1, 1, 1.0], ["bob", 1, 0, 0.0]]


def test_a_reviewer_gets_the_queue_and_own_figures_only(board, alice):
    dashboard_rollup(dataset=board["dataset"], now=NOW)
    found = dashboard_get(dataset=board["dataset"], user=alice, is_admin=False, now=NOW)
    charts = {chart.key: chart for chart in found.charts}
    assert list(charts) == ["queue", "throughput", "agreement"]
    assert charts["throughput"].rows == [[YESTERDAY, 2], [TODAY, 3]]
    assert charts["agreement"].rows == [["alice", 1, 1, 1.0]]
    assert charts["agreement"].headline == ""


def test_tail_coverage_falls_when_rare_words_leave_the_approved_set(board, admin_user):
    ds = board["dataset"]
    dashboard_rollup(dataset=ds, now=NOW)
    # a1 ("beta gamma omega") is undone: beta and gamma are no longer covered, delta still is
    Item.objects.filter(pk=board["a1"].pk).update(state="queued", decided_at=None)
    feed_append(dataset_id=ds.pk, item_ids=[board["a1"].pk], kind=FeedKind.REOPENED)
    dashboard_rollup(dataset=ds, now=NOW + timedelta(days=1))
    assert tail_coverage_get(dataset=ds) == pytest.approx(0.2)
    # and a2 retracted: nothing rare is left
    Item.objects.filter(pk=board["a2"].pk).update(state="retracted")
    feed_append(dataset_id=ds.pk, item_ids=[board["a2"].pk], kind=FeedKind.RETRACTED)
    dashboard_rollup(dataset=ds, now=NOW + timedelta(days=2))
    found = dashboard_get(dataset=ds, user=admin_user, is_admin=True, now=NOW + timedelta(days=2))
    line = [row[1] for row in found.chart("tail_coverage").rows]
    assert line == [0.6, 0.2, 0.0]


def test_rollup_twice_counts_nothing_twice(board):
    ds = board["dataset"]
    dashboard_rollup(dataset=ds, now=NOW)
    dashboard_rollup(dataset=ds, now=NOW)
    [beta] = tail_grams("beta").tolist()
    gram = TailGram.objects.get(dataset=ds, gram=beta)
    assert (gram.reference_docs, gram.approved_docs) == (2, 1)
    assert tail_coverage_get(dataset=ds) == pytest.approx(0.6)
    state = DashboardState.objects.get(dataset=ds)
    assert state.reference_item_id == board["refs"][-1].pk


def test_new_reference_items_join_the_rare_set(board):
    ds = board["dataset"]
    dashboard_rollup(dataset=ds, now=NOW)
    # "omega" was in no reference document: now it is rare and approved (a1, a2, a3 hold it)
    from tests.dashboard.conftest import item

    item(ds, "omega omega", origin="human", is_reference=True, state="approved")
    dashboard_rollup(dataset=ds, now=NOW)
    assert tail_coverage_get(dataset=ds) == pytest.approx(4 / 6)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (["approve", "approve", "approve", "reject"], ["approve", "reject", "approve", "reject"]),
        (["approve", "reject", "reject", "approve", "approve"], ["reject"] * 3 + ["approve"] * 2),
        (["approve"] * 9 + ["reject"], ["approve"] * 10),
    ],
)
def test_cohen_kappa_is_scikit_learns(a, b):
    from sklearn.metrics import cohen_kappa_score

    from dashboard.services.rollup import cohen_kappa

    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
