"""The periodic rollup task: fans out per dataset, rolls up, evaluates alerts; safe to repeat."""

import pytest
from django.conf import settings

from dashboard.models import Alert, AlertRules, DashboardDay, DashboardState
from dashboard.tasks import dashboard_rollup_all_task, dashboard_rollup_task

pytestmark = pytest.mark.django_db


def test_beat_runs_the_rollup():
    entry = settings.CELERY_BEAT_SCHEDULE["dashboard-rollup"]
    assert entry["task"] == "dashboard.tasks.dashboard_rollup_all_task"


def test_fan_out_one_task_per_dataset(board, other_dataset, monkeypatch):
    sent = []
    monkeypatch.setattr(dashboard_rollup_task, "delay", lambda dataset_id: sent.append(dataset_id))
    assert dashboard_rollup_all_task.apply().get() == 2
    assert sorted(sent) == sorted([board["dataset"].pk, other_dataset.pk])


def test_task_rolls_up_then_evaluates_alerts_and_twice_changes_nothing(board):
    ds = board["dataset"]
    AlertRules.objects.create(dataset=ds, max_synthetic_share=0.5)
    assert dashboard_rollup_task.apply(args=(ds.pk,)).get() is True
    state = DashboardState.objects.get(dataset=ds)
    assert state.figures["agreement"]["kappa"] == 0.5
    assert DashboardDay.objects.filter(dataset=ds).exists()
    assert Alert.objects.filter(dataset=ds, cleared_at__isnull=True).count() == 1
    assert dashboard_rollup_task.apply(args=(ds.pk,)).get() is True
    assert Alert.objects.filter(dataset=ds).count() == 1


def test_task_for_a_missing_dataset_does_nothing(db):
    assert dashboard_rollup_task.apply(args=(987654,)).get() is False


def test_rollup_command(board, other_dataset):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("rollup_dashboard", "--dataset", "demo", stdout=out)
    assert out.getvalue().startswith("demo: rolled up at ")
    assert DashboardState.objects.filter(dataset=board["dataset"]).exists()
    assert not DashboardState.objects.filter(dataset=other_dataset).exists()
    call_command("rollup_dashboard", stdout=out)
    assert DashboardState.objects.filter(dataset=other_dataset).exists()
    # --full recomputes what was written behind the services' back
    from corpus.models import Item

    Item.objects.filter(pk=board["q1"].pk).update(state="rejected")
    call_command("rollup_dashboard", "--dataset", "demo", stdout=out)
    queued = DashboardState.objects.get(dataset=board["dataset"]).figures["queue"]["queued"]
    call_command("rollup_dashboard", "--dataset", "demo", "--full", stdout=out)
    state = DashboardState.objects.get(dataset=board["dataset"])
    assert state.figures["queue"]["queued"] == queued - 1
    with pytest.raises(CommandError, match="no dataset 'nope'"):
        call_command("rollup_dashboard", "--dataset", "nope")
