"""The admins' exports page: policy, preview, create, progress, download, manifest, retract.

htmx swaps the page's regions (``{% partialdef %}`` blocks named after their element ids); every
form also works as a plain POST that redirects back, so the page works without JavaScript.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from corpus import selectors
from corpus.api.exports import export_file_response
from corpus.json_input import JsonInputError, json_limits, json_parse
from corpus.models import Dataset, Export, ExportPolicy, Retraction
from corpus.roles import site_admin_required
from corpus.services.audit import actor_for_user
from corpus.services.exports.build import ExportRequestError, export_preview, export_request
from corpus.services.items import ItemStateError
from corpus.services.policy import PolicyError, policy_current, policy_set
from corpus.services.retractions import item_retract

PAGE = "corpus/exports.html"
DETAIL = "corpus/export_detail.html"


# Exports are the dataset admins' work (corpus.roles).
admin_only = site_admin_required("Only admins manage exports.")


def _exports(dataset: Dataset) -> list[Export]:
    return list(
        Export.objects.filter(dataset=dataset)
        .select_related("dataset", "policy")
        .order_by("-id")[:50]
    )


def _policy_context(dataset: Dataset, **extra: Any) -> dict[str, Any]:
    current = policy_current(dataset=dataset)
    history = list(ExportPolicy.objects.filter(dataset=dataset).order_by("-version")[:10])
    return {
        "policy": current,
        "policy_text": json.dumps(current.spec.as_json(), indent=2, sort_keys=True),
        "policy_history": history,
        **extra,
    }


def _page_context(dataset: Dataset, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "exports": _exports(dataset),
        "retractions": list(Retraction.objects.filter(dataset=dataset).order_by("-feed_seq")[:20]),
        "formats": Export.Format.values,
        "modes": Export.Mode.values,
        **_policy_context(dataset),
        **extra,
    }


@require_GET
@admin_only
def exports_index(request: HttpRequest) -> HttpResponse:
    datasets = list(selectors.dataset_list())
    if len(datasets) == 1:
        return redirect("corpus_ui:exports", slug=datasets[0].slug)
    return render(request, "corpus/exports_index.html", {"datasets": datasets})


@require_GET
@admin_only
def exports_page(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_get(slug=slug)
    return render(request, PAGE, _page_context(dataset))


@require_POST
@admin_only
@vary_on_headers("HX-Request")
def exports_policy_save(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_get(slug=slug)
    text = request.POST.get("policy", "")
    errors: list[dict[str, Any]] = []
    saved = None
    try:
        raw = json_parse(text.encode(), limits=json_limits()).value
    except JsonInputError as exc:
        errors = exc.errors
    else:
        try:
            saved = policy_set(dataset=dataset, raw=raw, actor=actor_for_user(request.user))
        except PolicyError as exc:
            errors = exc.errors
    if not request.htmx:
        if errors:
            return render(request, PAGE, _page_context(dataset, policy_errors=errors), status=400)
        return redirect("corpus_ui:exports", slug=slug)
    context = {"dataset": dataset, **_policy_context(dataset, policy_errors=errors, saved=saved)}
    if errors:
        context["policy_text"] = text  # keep what the admin typed, to fix it
    return render(request, f"{PAGE}#policy", context, status=400 if errors else 200)


@require_POST
@admin_only
@vary_on_headers("HX-Request")
def exports_preview(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_get(slug=slug)
    mode = request.POST.get("mode") or None
    try:
        preview = export_preview(dataset=dataset, mode=mode)
        errors: list[dict[str, Any]] = []
    except ExportRequestError as exc:
        preview, errors = None, exc.errors
    context = {
        "dataset": dataset,
        "preview": preview,
        "preview_rows": _preview_rows(preview),
        "preview_errors": errors,
    }
    if not request.htmx:
        return render(request, PAGE, {**_page_context(dataset), **context})
    return render(request, f"{PAGE}#preview", context)


def _preview_rows(preview: dict[str, Any] | None) -> list[dict[str, Any]]:
    """(dimension, value, available, kept) rows of a preview, for one table."""
    if not preview:
        return []
    rows = []
    for dimension in ("origin", "source", "generator", "generation"):
        kept = preview["kept"].get(dimension, {})
        for value, n in preview["available"].get(dimension, {}).items():
            rows.append(
                {"dimension": dimension, "value": value, "available": n, "kept": kept.get(value, 0)}
            )
    return rows


@require_POST
@admin_only
@vary_on_headers("HX-Request")
def exports_create(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_get(slug=slug)
    errors: list[dict[str, Any]] = []
    try:
        export_request(
            dataset=dataset,
            actor=actor_for_user(request.user),
            format=request.POST.get("format", Export.Format.JSONL),
            mode=request.POST.get("mode") or None,
        )
    except ExportRequestError as exc:
        errors = exc.errors
    if not request.htmx:
        if errors:
            return render(request, PAGE, _page_context(dataset, create_errors=errors), status=400)
        return redirect("corpus_ui:exports", slug=slug)
    context = {"dataset": dataset, "exports": _exports(dataset), "create_errors": errors}
    return render(request, f"{PAGE}#exports-table", context, status=400 if errors else 200)


@require_GET
@admin_only
def export_row(request: HttpRequest, slug: str, export_id: int) -> HttpResponse:
    """One row of the exports table; polled while the export builds. Once it is done the
    response says 286 (htmx: swap this and stop polling)."""
    dataset = selectors.dataset_get(slug=slug)
    export = get_object_or_404(
        Export.objects.select_related("dataset", "policy"), pk=export_id, dataset=dataset
    )
    response = render(request, f"{PAGE}#export-row", {"dataset": dataset, "export": export})
    if export.is_done:
        return HttpResponseStopPolling(response.content)
    return response


@require_GET
@admin_only
def export_detail(request: HttpRequest, slug: str, export_id: int) -> HttpResponse:
    dataset = selectors.dataset_get(slug=slug)
    export = get_object_or_404(
        Export.objects.select_related("dataset", "policy"), pk=export_id, dataset=dataset
    )
    return render(request, DETAIL, {"dataset": dataset, "export": export, **_composition(export)})


def _composition(export: Export) -> dict[str, Any]:
    """The manifest's counts as (label, count, share) bars, one chart per dimension."""
    manifest = export.manifest or {}
    rows = manifest.get("rows") or 0
    charts = []
    for dimension in ("origin", "source", "generator", "generation"):
        counts = manifest.get("counts", {}).get(dimension, {})
        bars = [
            {"label": label, "count": n, "share": n / rows if rows else 0.0}
            for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        charts.append({"dimension": dimension, "bars": bars})
    return {
        "charts": charts,
        "manifest_json": json.dumps(manifest, indent=2, sort_keys=True),
        "left_out": manifest.get("left_out", {}),
        "diversity": manifest.get("diversity", {}),
        "retracted": manifest.get("retractions_since_previous", {}),
    }


@require_GET
@admin_only
def export_download(request: HttpRequest, slug: str, export_id: int) -> HttpResponseBase:
    dataset = selectors.dataset_get(slug=slug)
    export = get_object_or_404(
        Export.objects.select_related("dataset"), pk=export_id, dataset=dataset
    )
    return export_file_response(request, export, actor=actor_for_user(request.user))


@require_POST
@admin_only
@vary_on_headers("HX-Request")
def item_retract_view(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_get(slug=slug)
    errors: list[dict[str, Any]] = []
    done = None
    raw_id = request.POST.get("item_id", "").strip()
    reason = request.POST.get("reason", "")
    if not raw_id.isdigit():
        errors.append({"field": "item_id", "message": "an item id (a number)"})
    elif not dataset.items.filter(pk=int(raw_id)).exists():
        errors.append({"field": "item_id", "message": f"no item {raw_id} in '{dataset.slug}'"})
    else:
        try:
            done = item_retract(
                item_id=int(raw_id), reason=reason, actor=actor_for_user(request.user)
            )
        except ItemStateError as exc:
            errors.append({"field": "item_id", "message": str(exc)})
        except ValueError as exc:
            errors.append({"field": "reason", "message": str(exc)})
    status = 400 if errors else 200
    if not request.htmx:
        if errors:
            return render(request, PAGE, _page_context(dataset, retract_errors=errors), status=400)
        return redirect("corpus_ui:exports", slug=slug)
    context = {
        "dataset": dataset,
        "retract_errors": errors,
        "retracted": done,
        "retractions": list(Retraction.objects.filter(dataset=dataset).order_by("-feed_seq")[:20]),
    }
    return render(request, f"{PAGE}#retract", context, status=status)
