"""One settings page per dataset, for its admins: ``/datasets/<slug>/settings/``.

It gathers what used to be scattered: the review policy and reject reasons, reviewer quotas,
the scoring rules (corpus) and the export policy (corpus, as a form and as JSON). It lives in
the review app because review may import corpus and never the reverse.

Every section is a ``{% partialdef %}`` of ``settings/page.html`` named after its element id.
An htmx post gets its section back: with a notice after a save, or with the field errors and a
4xx status (``static/js/synthgate.js`` swaps 400 answers in place). Without JavaScript a save
redirects back to the page (post/redirect/get) and a refused one renders the whole page.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from corpus.forms import ExportPolicyForm, ScoringRulesForm
from corpus.models import Dataset, ExportPolicy
from corpus.services.audit import actor_for_user
from corpus.services.exports.build import ExportRequestError
from corpus.services.exports.draft import export_preview_draft
from corpus.services.policy import PolicyError, policy_current, policy_set
from corpus.services.scoring_rules import (
    ScoringRulesError,
    detector_in_use,
    scoring_rules_get,
    scoring_rules_preview,
    scoring_rules_set,
    scoring_rules_values,
)
from review import selectors
from review.forms import PolicyForm, QuotaForm, ReasonsForm
from review.services import ReviewError
from review.services.policy import reject_reasons_update, review_policy_update
from review.services.quotas import quota_set
from review.views import login_needed

PAGE = "settings/page.html"


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _alerts_form(dataset: Dataset) -> Any:
    """The alerts form of the dashboard app (``dashboard/_alerts_form.html``), unbound, when that
    app is installed; else None and the page links to its alerts page."""
    from django.apps import apps

    if not apps.is_installed("dashboard"):
        return None
    from dashboard.views import alerts_form_context

    return alerts_form_context(dataset)["alerts_form"]


def _context(dataset: Dataset, **overrides: Any) -> dict[str, Any]:
    """Everything the page shows; a section's own form (bound, with its errors) overrides the
    fresh one."""
    policy = selectors.review_policy_get(dataset=dataset)
    rules = scoring_rules_get(dataset=dataset)
    export_policy = policy_current(dataset=dataset)
    context: dict[str, Any] = {
        "dataset": dataset,
        "policy": policy,
        "policy_form": PolicyForm(
            initial={
                "consensus_approvals": policy.consensus_approvals,
                "consensus_min_detector": policy.consensus_min_detector,
                "consensus_min_generation": policy.consensus_min_generation,
                "consensus_unknown_origin": policy.consensus_unknown_origin,
                "gold_rate": policy.gold_rate,
            }
        ),
        "reasons_form": ReasonsForm(
            initial={"reasons": ReasonsForm.initial_text(policy.reject_reasons)}
        ),
        "quota_form": QuotaForm(reviewers=selectors.reviewer_choices(dataset=dataset)),
        "quotas": selectors.quota_list(dataset=dataset),
        "gold_items": selectors.gold_list(dataset=dataset),
        "rules": rules,
        "rules_form": ScoringRulesForm(initial=scoring_rules_values(rules)),
        "detector": detector_in_use(dataset=dataset),
        "export_policy": export_policy,
        "export_form": ExportPolicyForm(initial=ExportPolicyForm.initial_for(export_policy.spec)),
        "export_json": json.dumps(export_policy.spec.as_json(), indent=2, sort_keys=True),
        "export_history": list(
            ExportPolicy.objects.filter(dataset=dataset).order_by("-version")[:10]
        ),
        "alerts_form": _alerts_form(dataset),
    }
    context.update(overrides)
    return context


def _answer(
    request: HttpRequest,
    dataset: Dataset,
    section: str,
    *,
    status: int = 200,
    notice: str = "",
    **overrides: Any,
) -> HttpResponse:
    """htmx: the section, with its notice or errors. Otherwise: a save redirects back to the page
    (post/redirect/get); a refusal or a preview renders the page."""
    if request.htmx:  # type: ignore[attr-defined]
        context = _context(dataset, notice=notice, **overrides)
        return render(request, f"{PAGE}#{section}", context, status=status)
    if status == 200 and notice:
        messages.success(request, notice)
        return _see_other(reverse("settings:page", args=[dataset.slug]) + f"#{section}")
    return render(request, PAGE, _context(dataset, **overrides), status=status)


@login_needed
@require_GET
def settings_page(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    return render(request, PAGE, _context(dataset))


# --- review policy, reasons, quotas --------------------------------------------------------------


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def review_policy_save(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    form = PolicyForm(request.POST)
    if form.is_valid():
        try:
            review_policy_update(actor=request.user, dataset=dataset, **form.cleaned_data)
        except ReviewError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return _answer(request, dataset, "review-policy", notice="Review policy saved.")
    return _answer(request, dataset, "review-policy", status=400, policy_form=form)


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def reasons_save(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    form = ReasonsForm(request.POST)
    if form.is_valid():
        try:
            reject_reasons_update(
                actor=request.user, dataset=dataset, reasons=form.cleaned_data["reasons"]
            )
        except ReviewError as exc:
            form.add_error("reasons", exc.message)
        else:
            return _answer(request, dataset, "reasons", notice="Reject reasons saved.")
    return _answer(request, dataset, "reasons", status=400, reasons_form=form)


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def quota_save(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    form = QuotaForm(request.POST, reviewers=selectors.reviewer_choices(dataset=dataset))
    if form.is_valid():
        reviewer_id = form.cleaned_data["reviewer"]
        try:
            quota_set(
                actor=request.user,
                dataset=dataset,
                reviewer=form.reviewers[reviewer_id] if reviewer_id is not None else None,
                daily_limit=form.cleaned_data["daily_limit"],
            )
        except ReviewError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return _answer(request, dataset, "quotas", notice="Quota saved.")
    return _answer(request, dataset, "quotas", status=400, quota_form=form)


# --- scoring rules -------------------------------------------------------------------------------


def _rules_errors(form: ScoringRulesForm, exc: ScoringRulesError) -> None:
    for error in exc.errors:
        field = error.get("field")
        form.add_error(field if field in form.fields else None, error["message"])


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def scoring_rules_save(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    form = ScoringRulesForm(request.POST)
    if form.is_valid():
        try:
            scoring_rules_set(
                dataset=dataset, values=form.cleaned_data, actor=actor_for_user(request.user)
            )
        except ScoringRulesError as exc:
            _rules_errors(form, exc)
        else:
            return _answer(
                request,
                dataset,
                "scoring-rules",
                notice="Scoring rules saved; the next items scored use them.",
            )
    return _answer(request, dataset, "scoring-rules", status=400, rules_form=form)


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def scoring_rules_preview_view(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    form = ScoringRulesForm(request.POST)
    preview = None
    if form.is_valid():
        try:
            preview = scoring_rules_preview(dataset=dataset, values=form.cleaned_data)
        except ScoringRulesError as exc:
            _rules_errors(form, exc)
    status = 200 if preview is not None else 400
    return _answer(
        request, dataset, "scoring-rules", status=status, rules_form=form, rules_preview=preview
    )


# --- export policy -------------------------------------------------------------------------------


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def export_policy_save(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    form = ExportPolicyForm(request.POST)
    if form.is_valid():
        try:
            saved = policy_set(
                dataset=dataset, raw=form.document(), actor=actor_for_user(request.user)
            )
        except PolicyError as exc:
            for error in exc.errors:
                form.add_error(None, error["message"])
        else:
            return _answer(
                request,
                dataset,
                "export-policy",
                notice=f"Export policy saved as version {saved.version}.",
            )
    return _answer(request, dataset, "export-policy", status=400, export_form=form)


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def export_policy_json_save(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    text = request.POST.get("policy", "")
    errors: list[dict[str, Any]] = []
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        errors = [{"field": "policy", "message": f"not valid JSON: {exc}"}]
    else:
        try:
            saved = policy_set(dataset=dataset, raw=raw, actor=actor_for_user(request.user))
        except PolicyError as exc:
            errors = exc.errors
    if errors:
        return _answer(
            request, dataset, "export-policy", status=400, export_json=text, json_errors=errors
        )
    return _answer(
        request,
        dataset,
        "export-policy",
        notice=f"Export policy saved as version {saved.version}.",
    )


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def export_policy_preview(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    form = ExportPolicyForm(request.POST)
    preview = None
    if form.is_valid():
        try:
            preview = export_preview_draft(dataset=dataset, spec=form.spec)
        except ExportRequestError as exc:
            for error in exc.errors:
                form.add_error(None, error["message"])
    if preview is None:
        return _answer(request, dataset, "export-policy", status=400, export_form=form)
    # The JSON view shows the draft too, so a policy-as-code user can copy what they previewed.
    draft = json.dumps(form.document(), indent=2, sort_keys=True)
    return _answer(
        request,
        dataset,
        "export-policy",
        export_form=form,
        export_preview=preview,
        export_json=draft,
    )
