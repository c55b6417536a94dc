"""Review pages. Each view parses its input, calls one service (or reads through selectors),
and renders. htmx requests get the page's partial (``"review/triage.html#triage"``), every other
request the whole page, so each page works without JavaScript."""

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from corpus import roles
from corpus.api_support import cursor_encode
from corpus.http import UserHttpRequest
from corpus.models import Dataset, Item
from corpus.templatetags.synthgate import dashboard_url
from review import selectors
from review.forms import (
    BulkAllForm,
    BulkForm,
    DecisionForm,
    GoldForm,
    ListFilterForm,
    StatsForm,
)
from review.models import BulkJob, Decision, Verdict
from review.services import ReviewError
from review.services.bulk_jobs import bulk_job_cancel, bulk_job_request, bulk_job_resume
from review.services.consensus import ItemFacts, consensus_reasons
from review.services.decisions import (
    LEFT_OUT_REASONS,
    MAX_BULK_ITEMS,
    DecisionOutcome,
    decision_record_and_next,
    decision_undo,
    decisions_bulk,
)
from review.services.gold import gold_mark, gold_unmark
from review.services.queue import ClaimOutcome, claim_renew, item_claim, item_skip

STATUS_FOR = {"invalid": 400, "conflict": 409, "quota": 409}
# htmx stops polling when it gets this status (the lease is gone; nothing left to renew).
STOP_POLLING = 286


def login_needed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """login_required that also works for htmx: a swapped-in login form would be confusing, so
    an htmx request is told to load the login page as a whole page instead."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if request.htmx:  # type: ignore[attr-defined]
                page = request.htmx.current_url_abs_path or request.get_full_path()  # type: ignore[attr-defined]
                return HttpResponseClientRedirect(f"{reverse('login')}?{urlencode({'next': page})}")
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _form_error(form: Any) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# --- where people land --------------------------------------------------------------------------


def landing_url(user: Any) -> str:
    """Where a person starts after logging in: an admin on the dashboard of the one dataset
    (several: the datasets list); a reviewer in the triage of their one dataset (several: the
    list of their queues); someone without a dataset on the list, which says why it is empty."""
    index = reverse("review:index")
    if not user.is_authenticated:
        return index
    slugs = list(selectors.review_datasets(user=user).values_list("slug", flat=True)[:2])
    if len(slugs) != 1:
        return index
    if selectors.is_admin(user):
        return dashboard_url(slugs[0]) or index
    return reverse("review:triage", args=slugs)


@login_needed
@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(landing_url(request.user))


# --- dashboard -----------------------------------------------------------------------------------


@login_needed
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "review/index.html",
        {
            "rows": selectors.dashboard_rows(user=request.user),
            "without_role": selectors.listed_without_role(user=request.user),
            "is_admin": selectors.is_admin(request.user),
        },
    )


# --- triage --------------------------------------------------------------------------------------


def _triage_context(
    dataset: Dataset, user: Any, outcome: ClaimOutcome, last_decision: Decision | None = None
) -> dict[str, Any]:
    policy = outcome.policy
    context: dict[str, Any] = {
        "dataset": dataset,
        "outcome": outcome,
        "quota": outcome.quota,
        "reasons": policy.reject_reasons,
        "last_decision": last_decision
        or selectors.last_decision_get(dataset=dataset, reviewer=user),
        "is_admin": selectors.is_admin(user),
    }
    if outcome.claim is not None:
        item = selectors.item_for_review_get(
            dataset=dataset, item_id=outcome.claim.item_id, read=outcome.item
        )
        reference = selectors.reference_medians(dataset=dataset)
        context.update(selectors.item_evidence(item=item, reference=reference))
        context["claim"] = outcome.claim
        context["consensus"] = consensus_reasons(policy=policy, facts=ItemFacts.of(item))
        context["consensus_approvals"] = policy.consensus_approvals
    elif outcome.status == "empty":
        context["skipped_returning"] = selectors.skipped_returning_count(
            dataset=dataset, reviewer=user, now=timezone.now()
        )
    return context


def _triage_response(
    request: UserHttpRequest,
    dataset: Dataset,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
    decided: DecisionOutcome | None = None,
    claimed: ClaimOutcome | None = None,
) -> HttpResponse:
    """Claim (or keep) the reviewer's item and render it. After a decision, what it already
    read or claimed (the policy, the next item, the decision: now the one to undo) is reused."""
    outcome = claimed or item_claim(dataset=dataset, reviewer=request.user)
    last = decided.decision if decided is not None else None
    context = _triage_context(dataset, request.user, outcome, last_decision=last)
    context.update(notice=notice, error=error)
    template = "review/triage.html#triage" if request.htmx else "review/triage.html"
    return render(request, template, context, status=status)


def _after_action(
    request: UserHttpRequest,
    dataset: Dataset,
    *,
    notice: str,
    decided: DecisionOutcome | None = None,
    claimed: ClaimOutcome | None = None,
) -> HttpResponse:
    """htmx: the next item in place. Without JavaScript: post/redirect/get to the triage page."""
    if request.htmx:
        return _triage_response(request, dataset, notice=notice, decided=decided, claimed=claimed)
    messages.success(request, notice)
    return _see_other(reverse("review:triage", args=[dataset.slug]))


def _failed(request: UserHttpRequest, dataset: Dataset, exc: ReviewError) -> HttpResponse:
    return _triage_response(request, dataset, error=exc.message, status=STATUS_FOR[exc.code])


def _decision_notice(outcome: DecisionOutcome) -> str:
    decision = outcome.decision
    if decision.verdict == Verdict.REJECT:
        return f"Rejected item {decision.item_id}: {outcome.reason_label}."
    if outcome.tally is not None and outcome.item_state == Item.State.QUEUED:
        return (
            f"Your approval of item {decision.item_id} is counted; it needs "
            f"{outcome.tally.required} approvals from different reviewers."
        )
    return f"Approved item {decision.item_id}."


@login_needed
@require_GET
@vary_on_headers("HX-Request")
def triage(request: UserHttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_review(user=request.user, slug=slug)
    return _triage_response(request, dataset)


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def decide(request: UserHttpRequest, slug: str, item_id: int) -> HttpResponse:
    dataset = selectors.dataset_for_review(user=request.user, slug=slug)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _triage_response(request, dataset, error=_form_error(form), status=400)
    try:
        outcome, claimed = decision_record_and_next(
            dataset=dataset,
            reviewer=request.user,
            item_id=item_id,
            verdict=form.cleaned_data["verdict"],
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
        )
    except ReviewError as exc:
        return _failed(request, dataset, exc)
    return _after_action(
        request, dataset, notice=_decision_notice(outcome), decided=outcome, claimed=claimed
    )


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def skip(request: UserHttpRequest, slug: str, item_id: int) -> HttpResponse:
    dataset = selectors.dataset_for_review(user=request.user, slug=slug)
    try:
        item_skip(dataset=dataset, reviewer=request.user, item_id=item_id)
    except ReviewError as exc:
        return _failed(request, dataset, exc)
    return _after_action(
        request, dataset, notice=f"Skipped item {item_id}; other reviewers will see it."
    )


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def undo(request: UserHttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_review(user=request.user, slug=slug)
    try:
        outcome = decision_undo(dataset=dataset, reviewer=request.user)
    except ReviewError as exc:
        return _failed(request, dataset, exc)
    verb = "approval" if outcome.decision.verdict == Verdict.APPROVE else "rejection"
    where = (
        "It is back on your screen."
        if outcome.reclaimed
        else "It is back in the queue (another reviewer has it open)."
    )
    return _after_action(
        request,
        dataset,
        notice=f"Undone: your {verb} of item {outcome.decision.item_id}. {where}",
    )


@login_needed
@require_GET
def progress(request: HttpRequest, slug: str) -> HttpResponse:
    """The queue left and the scoring backlog, polled by the triage page (its own request, so
    the claim path pays nothing for the counts)."""
    dataset = selectors.dataset_for_review(user=request.user, slug=slug)
    context = {"dataset": dataset, "progress": selectors.queue_progress(dataset=dataset)}
    return render(request, "review/_progress.html", context)


@login_needed
@require_POST
def renew(request: UserHttpRequest, slug: str, item_id: int) -> HttpResponse:
    dataset = selectors.dataset_for_review(user=request.user, slug=slug)
    claim = claim_renew(dataset=dataset, reviewer=request.user, item_id=item_id)
    context = {"dataset": dataset, "claim": claim, "item_id": item_id}
    status = 200 if claim is not None else (STOP_POLLING if request.htmx else 409)
    return render(request, "review/_lease.html", context, status=status)


# --- one item ------------------------------------------------------------------------------------


def _item_page(
    request: HttpRequest,
    dataset: Dataset,
    item_id: int,
    *,
    gold_form: GoldForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    item = selectors.item_for_review_get(dataset=dataset, item_id=item_id)
    admin = selectors.is_admin(request.user)
    context = selectors.item_evidence(
        item=item, reference=selectors.reference_medians(dataset=dataset)
    )
    gold = selectors.gold_get(item_id=item.pk) if admin else None
    # Votes on an open item stay hidden from reviewers so nobody follows the crowd.
    show_votes = admin or item.state != Item.State.QUEUED
    context.update(
        dataset=dataset,
        is_admin=admin,
        gold=gold,
        gold_form=gold_form or GoldForm(initial={"action": "mark"}),
        decisions=selectors.item_decisions(item=item) if show_votes else None,
        reasons=selectors.review_policy_get(dataset=dataset).reject_reasons,
        error=error,
    )
    return render(request, "review/item.html", context, status=status)


@login_needed
@require_GET
def item_detail(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    dataset = selectors.dataset_for_review(user=request.user, slug=slug)
    return _item_page(request, dataset, item_id)


@login_needed
@require_POST
def gold(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    form = GoldForm(request.POST)
    if not form.is_valid():
        return _item_page(request, dataset, item_id, gold_form=form, status=400)
    try:
        if form.cleaned_data["action"] == "mark":
            gold_mark(
                actor=request.user,
                dataset=dataset,
                item_id=item_id,
                expected=form.cleaned_data["expected"],
                note=form.cleaned_data["note"],
            )
            notice = f"Item {item_id} is now a gold check."
        else:
            gold_unmark(actor=request.user, dataset=dataset, item_id=item_id)
            notice = f"Item {item_id} is no longer a gold check."
    except ReviewError as exc:
        return _item_page(
            request,
            dataset,
            item_id,
            gold_form=form,
            error=exc.message,
            status=STATUS_FOR[exc.code],
        )
    messages.success(request, notice)
    return _see_other(reverse("review:item", args=[dataset.slug, item_id]))


# --- list mode -----------------------------------------------------------------------------------


@login_needed
@require_GET
@vary_on_headers("HX-Request")
def item_list(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_review(user=request.user, slug=slug)
    sources = selectors.dataset_sources(dataset=dataset)
    data = request.GET.copy()
    if "state" not in data:
        data["state"] = Item.State.QUEUED  # the first visit shows the queue
    form = ListFilterForm(data, sources=sources)
    page = None
    next_url = ""
    status = 200
    if form.is_valid():
        query = form.query()
        page = selectors.review_item_list(dataset=dataset, user=request.user, query=query)
        if page.next_cursor is not None:
            params = data.copy()
            params["cursor"] = cursor_encode({**page.next_cursor, "sort": query.sort})
            next_url = f"?{params.urlencode()}"
    else:
        status = 400
    context = {
        "dataset": dataset,
        "form": form,
        "controls": form.controls(),
        "items_url": reverse("review:list", args=[dataset.slug]),
        "page": page,
        "filters": _filters_query(data),
        "next_url": next_url,
        "reasons": selectors.review_policy_get(dataset=dataset).reject_reasons,
        "is_admin": selectors.is_admin(request.user),
        "back": request.get_full_path(),
        "bulk_all": roles.may_bulk_decide_all(request.user, dataset),
    }
    if context["bulk_all"] and not request.htmx:  # type: ignore[attr-defined]
        # The banner above the filters (outside the swapped table): a job under way.
        context["active_job"] = selectors.bulk_job_active(dataset=dataset)
    template = "review/list.html#item-table" if request.htmx else "review/list.html"  # type: ignore[attr-defined]
    return render(request, template, context, status=status)


def _filters_query(data: Any) -> str:
    """The list's filters (not its page position) as a query string, for the total."""
    params = data.copy()
    params.pop("cursor", None)
    return str(params.urlencode())


@login_needed
@require_GET
def item_list_total(request: HttpRequest, slug: str) -> HttpResponse:
    """How many items match the list's filters: loaded by the list page in its own request, so
    the page itself pays nothing for the count (counted up to ``LIST_COUNT_CAP`` + 1)."""
    dataset = selectors.dataset_for_review(user=request.user, slug=slug)
    data = request.GET.copy()
    if "state" not in data:
        data["state"] = Item.State.QUEUED
    form = ListFilterForm(data, sources=selectors.dataset_sources(dataset=dataset))
    if not form.is_valid():
        return render(request, "review/_list_total.html", {"invalid": True}, status=400)
    total = selectors.review_item_count(dataset=dataset, user=request.user, query=form.query())
    context = {"total": total, "capped": total > selectors.LIST_COUNT_CAP}
    context["cap"] = selectors.LIST_COUNT_CAP
    return render(request, "review/_list_total.html", context)


def _safe_back(dataset: Dataset, back: str) -> str:
    """Only a path back into this dataset's list is followed (no open redirect)."""
    base = reverse("review:list", args=[dataset.slug])
    return back if back.startswith(base) and "//" not in back else base


@login_needed
@require_POST
def bulk(request: UserHttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_review(user=request.user, slug=slug)
    back = _safe_back(dataset, request.POST.get("back", ""))
    form = BulkForm(request.POST)
    reasons = selectors.review_policy_get(dataset=dataset).reject_reasons
    context: dict[str, Any] = {"dataset": dataset, "form": form, "back": back, "reasons": reasons}
    if not form.is_valid():
        # The selection stays: the page lists the chosen items, ticked, to decide again.
        context["error"] = _form_error(form)
        context["selected"] = sorted(
            {int(v) for v in request.POST.getlist("items") if v.isdigit()}
        )[:MAX_BULK_ITEMS]
        context["verdict"] = request.POST.get("verdict", "")
        return render(request, "review/bulk.html", context, status=400)
    data = form.cleaned_data
    context.update(
        count=len(set(data["items"])),
        items=sorted(set(data["items"])),
        verdict=data["verdict"],
        reason=data["reason"],
        reason_label=next((r["label"] for r in reasons if r["key"] == data["reason"]), ""),
        note=data["note"],
    )
    if not data["confirm"]:
        return render(request, "review/bulk.html", context)
    try:
        outcome = decisions_bulk(
            dataset=dataset,
            reviewer=request.user,
            item_ids=data["items"],
            verdict=data["verdict"],
            reason=data["reason"],
            note=data["note"],
        )
    except ReviewError as exc:
        context["error"] = exc.message
        return render(request, "review/bulk.html", context, status=STATUS_FOR[exc.code])
    context["outcome"] = outcome
    context["left_out"] = [(LEFT_OUT_REASONS[why], ids) for why, ids in outcome.left_out.items()]
    return render(request, "review/bulk.html", context)


# --- filter-wide bulk jobs (admins) -------------------------------------------------------------


def _list_data(data: Any) -> Any:
    """The list's parameters as the list reads them: the queue when no state is given."""
    data = data.copy()
    if "state" not in data:
        data["state"] = Item.State.QUEUED
    return data


@login_needed
@require_http_methods(["GET", "POST"])
def bulk_all(request: UserHttpRequest, slug: str) -> HttpResponse:
    """Approve or reject every item matching the list's filters. GET asks: the exact count and
    the largest matching id now, which the confirmation carries back (the job decides nothing
    newer). POST with ``confirm`` queues the job and goes to its page."""
    dataset = selectors.dataset_for_bulk_jobs(user=request.user, slug=slug)
    asking = request.method == "GET"
    data = _list_data(request.GET if asking else request.POST)
    filters = ListFilterForm(data, sources=selectors.dataset_sources(dataset=dataset))
    form = BulkAllForm(data)
    context: dict[str, Any] = {
        "dataset": dataset,
        "filters_form": filters,
        "form": form,
        "reasons": selectors.review_policy_get(dataset=dataset).reject_reasons,
        "active": selectors.bulk_job_active(dataset=dataset),
        "filter_params": filters.filter_params(),
        "list_query": urlencode(filters.filter_params()),
    }
    # Both forms checked, so that every error shows at once.
    valid = [filters.is_valid(), form.is_valid()]
    if not valid[0] or "verdict" not in form.cleaned_data:
        return render(request, "review/bulk_all.html", context, status=400)
    query = filters.query()
    asked = dict(form.cleaned_data)  # as sent: a service error may take a field out of it
    status = 200 if all(valid) else 400
    if all(valid) and not asking and asked["confirm"]:
        try:
            job = bulk_job_request(
                dataset=dataset,
                requested_by=request.user,
                query=query,
                verdict=asked["verdict"],
                reason=asked["reason"],
                note=asked["note"],
                ceiling=asked["ceiling"],
            )
        except ReviewError as exc:
            if exc.field in form.fields:
                form.add_error(exc.field, exc.message)
            else:
                context["error"] = exc.message
            status = STATUS_FOR[exc.code]
        else:
            return _see_other(reverse("review:bulk-job", args=[dataset.slug, job.pk]))
    scope = selectors.bulk_job_scope(
        dataset=dataset, user=request.user, query=query, ceiling=asked.get("ceiling")
    )
    context.update(
        count=scope.count,
        ceiling=scope.last,
        verdict=asked["verdict"],
        # What was typed stays, to be fixed in place.
        reason=data.get("reason", ""),
        note=data.get("note", ""),
        queued_only=query.state == Item.State.QUEUED,
    )
    return render(request, "review/bulk_all.html", context, status=status)


def _job_context(dataset: Dataset, job: BulkJob) -> dict[str, Any]:
    filters = ListFilterForm.of_filters(
        job.filters, sources=selectors.dataset_sources(dataset=dataset)
    )
    reasons = selectors.review_policy_get(dataset=dataset).reject_reasons
    return {
        "dataset": dataset,
        "job": job,
        "filters": filters.described(),
        "list_query": urlencode(filters.filter_params()),
        "reason_label": next((r["label"] for r in reasons if r["key"] == job.reason), job.reason),
        "skipped": [
            (LEFT_OUT_REASONS.get(why, why), entry["count"], entry["ids"])
            for why, entry in sorted(job.skipped_by_reason.items())
        ],
    }


@login_needed
@require_GET
@vary_on_headers("HX-Request")
def bulk_job(request: UserHttpRequest, slug: str, job_id: int) -> HttpResponse:
    """A bulk job's progress, polled every second by its page while it is queued or running;
    once it is finished the answer says 286 (htmx: swap this in and stop polling)."""
    dataset = selectors.dataset_for_bulk_jobs(user=request.user, slug=slug)
    job = selectors.bulk_job_get(dataset=dataset, job_id=job_id)
    context = _job_context(dataset, job)
    if not request.htmx:
        return render(request, "review/bulk_job.html", context)
    response = render(request, "review/bulk_job.html#bulk-job", context)
    if not job.is_active:
        return HttpResponseStopPolling(response.content)
    return response


@login_needed
@require_POST
@vary_on_headers("HX-Request")
def bulk_job_action(request: UserHttpRequest, slug: str, job_id: int, action: str) -> HttpResponse:
    """Cancel a queued or running job, or resume a failed or cancelled one."""
    dataset = selectors.dataset_for_bulk_jobs(user=request.user, slug=slug)
    job = selectors.bulk_job_get(dataset=dataset, job_id=job_id)
    status = 200
    error = ""
    try:
        if action == "cancel":
            job = bulk_job_cancel(job=job, actor=request.user)
        else:
            job = bulk_job_resume(job=job, actor=request.user)
    except ReviewError as exc:
        error, status = exc.message, STATUS_FOR[exc.code]
    if not request.htmx:
        if error:
            context = {**_job_context(dataset, job), "error": error}
            return render(request, "review/bulk_job.html", context, status=status)
        return _see_other(reverse("review:bulk-job", args=[dataset.slug, job.pk]))
    context = {**_job_context(dataset, job), "error": error}
    return render(request, "review/bulk_job.html#bulk-job", context, status=status)


@login_needed
@require_GET
def bulk_jobs(request: UserHttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_bulk_jobs(user=request.user, slug=slug)
    context = {"dataset": dataset, "jobs": selectors.bulk_job_list(dataset=dataset)}
    return render(request, "review/bulk_jobs.html", context)


# --- settings and statistics (admins) -----------------------------------------------------------


@login_needed
@require_GET
def review_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """The settings moved to the dataset's settings page; old links and bookmarks follow."""
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    return HttpResponsePermanentRedirect(reverse("settings:page", args=[dataset.slug]))


@login_needed
@require_GET
def stats(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = selectors.dataset_for_admin(user=request.user, slug=slug)
    data = request.GET.copy()
    data.setdefault("days", "30")  # the selector shows the period the table covers
    form = StatsForm(data)
    days = form.period() if form.is_valid() else 30
    since = selectors.day_start(timezone.now()) - timedelta(days=days - 1)
    return render(
        request,
        "review/stats.html",
        {
            "dataset": dataset,
            "form": form,
            "days": days,
            "rows": selectors.reviewer_stats(dataset=dataset, since=since),
        },
        status=200 if form.is_valid() else 400,
    )
