"""The dataset dashboard (``/datasets/<slug>/``), its chart data as CSV and JSON, and the alert
thresholds form."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from corpus.services.audit import actor_for_user
from dashboard import selectors
from dashboard.access import dashboard_access, visible_datasets
from dashboard.forms import AlertRulesForm
from dashboard.models import AlertRules
from dashboard.services.alerts import AlertRulesError, alert_rules_get, alert_rules_set
from review.views import login_needed

PAGE = "dashboard/dashboard.html"
ALERTS_PAGE = "dashboard/alerts_settings.html"
ALERTS_FORM = "dashboard/_alerts_form.html"


def _csv(columns: list[str], rows: list[list[Any]], filename: str) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        # Untrusted labels (generator names) must not start a spreadsheet formula.
        writer.writerow(
            [f"'{v}" if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in row]
        )
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_needed
@require_GET
def dashboard_index(request: HttpRequest) -> HttpResponse:
    """The datasets whose dashboard the user may see; straight to it when there is one."""
    datasets = list(visible_datasets(user=request.user))
    if len(datasets) == 1:
        return redirect("dashboard:dataset", slug=datasets[0].slug)
    return render(request, "dashboard/index.html", {"datasets": datasets})


@login_needed
@require_GET
def dataset_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    dataset, is_admin = dashboard_access(user=request.user, slug=slug)
    board = selectors.dashboard_get(dataset=dataset, user=request.user, is_admin=is_admin)
    fmt = request.GET.get("format", "")
    if fmt == "json":
        return JsonResponse(
            {
                "dataset": dataset.slug,
                "computed_at": board.computed_at.isoformat() if board.computed_at else None,
                "charts": [chart.as_json() for chart in board.charts],
            }
        )
    if fmt == "csv":
        # Every chart in one long table: chart, then the chart's own columns as col1..colN.
        width = max((len(c.columns) for c in board.charts), default=0)
        rows = []
        for chart in board.charts:
            rows.append(["#" + chart.key, *chart.columns])
            rows += [[chart.key, *row] for row in chart.rows]
        return _csv(
            ["chart", *[f"col{i + 1}" for i in range(width)]], rows, f"{slug}-dashboard.csv"
        )
    if fmt:
        return JsonResponse(
            {"errors": [{"field": "format", "message": "format is csv or json"}]}, status=400
        )
    context = {"board": board, "dataset": dataset, "rollup_queued": "rollup" in request.GET}
    return render(request, PAGE, context)


@login_needed
@require_GET
def chart_data(request: HttpRequest, slug: str, chart: str, fmt: str) -> HttpResponse:
    dataset, is_admin = dashboard_access(user=request.user, slug=slug)
    found = selectors.chart_get(dataset=dataset, user=request.user, is_admin=is_admin, key=chart)
    if found is None:
        raise Http404("No such chart.")
    if fmt == "json":
        return JsonResponse(found.as_json())
    return _csv(found.columns, found.rows, f"{slug}-{chart}.csv")


@login_needed
@require_POST
def rollup_request(request: HttpRequest, slug: str) -> HttpResponse:
    """Admins: roll up the figures now instead of at the next period (a worker does it; the
    task is safe to run twice). Back to the dashboard, which says when the figures are from."""
    dataset, _ = dashboard_access(user=request.user, slug=slug, admin_only=True)
    from dashboard.tasks import dashboard_rollup_task

    dashboard_rollup_task.delay_on_commit(dataset.pk)
    response = redirect(f"{reverse('dashboard:dataset', args=[slug])}?rollup=queued")
    response.status_code = 303
    return response


def _initial(rules: AlertRules) -> dict[str, Any]:
    return {
        name: getattr(rules, name)
        for name in (
            "max_synthetic_share",
            "min_tail_coverage",
            "max_near_duplicate_rate",
            "max_backlog_minutes",
            "webhook_url",
        )
    }


def alerts_form_context(dataset: Any) -> dict[str, Any]:
    """What ``dashboard/_alerts_form.html`` needs, for a page that includes it (the settings
    console): ``dataset``, ``alerts_form`` and ``rules``."""
    rules = alert_rules_get(dataset=dataset)
    return {
        "dataset": dataset,
        "alerts_form": AlertRulesForm(initial=_initial(rules)),
        "rules": rules,
    }


@login_needed
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def alert_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the page with the form. POST (htmx or plain): validate, save, audit; errors answer
    400 with the form and its messages, success re-renders it with a "saved" notice (htmx) or
    redirects back to the page (303)."""
    dataset, _ = dashboard_access(user=request.user, slug=slug, admin_only=True)
    rules = alert_rules_get(dataset=dataset)
    if request.method == "GET":
        return render(request, ALERTS_PAGE, alerts_form_context(dataset))
    form = AlertRulesForm(request.POST)
    saved = None
    if form.is_valid():
        try:
            saved = alert_rules_set(
                dataset=dataset, actor=actor_for_user(request.user), values=form.values()
            )
        except AlertRulesError as exc:
            for name, message in exc.errors.items():
                form.add_error(name, message)
    if saved is not None and not request.htmx:  # type: ignore[attr-defined]
        response = redirect("dashboard:alerts", slug=slug)
        response.status_code = 303
        return response
    context = {
        "dataset": dataset,
        "alerts_form": form,
        "rules": saved or rules,
        "alerts_saved": saved,
    }
    status = 200 if saved is not None else 400
    template = ALERTS_FORM if request.htmx else ALERTS_PAGE  # type: ignore[attr-defined]
    return render(request, template, context, status=status)
