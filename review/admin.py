"""Read-only views of review rows for superusers. Changes go through the review pages, whose
services audit them; the Django admin would bypass the audit chain, so it cannot edit."""

from django.contrib import admin

from corpus.admin import ReadOnlyAdmin
from review.models import (
    BulkJob,
    Claim,
    Decision,
    GoldItem,
    ReviewerDay,
    ReviewerQuota,
    ReviewPolicy,
    Skip,
)


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "item",
        "dataset",
        "reviewer",
        "verdict",
        "reason",
        "via",
        "seconds",
        "gold_expected",
        "created_at",
        "undone_at",
    ]
    list_filter = ["dataset", "verdict", "via", "reason"]
    list_select_related = ["dataset", "reviewer", "item"]
    raw_id_fields = ["item"]
    search_fields = ["=item__id", "reviewer__username"]
    show_full_result_count = False


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = ["item", "dataset", "reviewer", "claimed_at", "expires_at"]
    list_filter = ["dataset"]
    list_select_related = ["dataset", "reviewer", "item"]
    raw_id_fields = ["item"]


@admin.register(Skip)
class SkipAdmin(ReadOnlyAdmin):
    list_display = ["item", "dataset", "reviewer", "created_at"]
    list_filter = ["dataset"]
    list_select_related = ["dataset", "reviewer", "item"]
    raw_id_fields = ["item"]


@admin.register(ReviewPolicy)
class ReviewPolicyAdmin(ReadOnlyAdmin):
    list_display = [
        "dataset",
        "consensus_approvals",
        "consensus_min_detector",
        "consensus_min_generation",
        "consensus_unknown_origin",
        "gold_rate",
        "version",
        "updated_at",
    ]


@admin.register(ReviewerQuota)
class ReviewerQuotaAdmin(ReadOnlyAdmin):
    list_display = ["dataset", "reviewer", "daily_limit", "updated_at"]
    list_filter = ["dataset"]


@admin.register(ReviewerDay)
class ReviewerDayAdmin(ReadOnlyAdmin):
    list_display = ["day", "dataset", "reviewer", "decided"]
    list_filter = ["dataset", "day"]
    search_fields = ["reviewer__username"]
    date_hierarchy = "day"


@admin.register(GoldItem)
class GoldItemAdmin(ReadOnlyAdmin):
    list_display = ["item", "dataset", "expected", "created_by", "created_at"]
    list_filter = ["dataset", "expected"]
    raw_id_fields = ["item"]


@admin.register(BulkJob)
class BulkJobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "dataset",
        "verdict",
        "state",
        "total",
        "decided",
        "skipped",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["dataset", "state", "verdict"]
    list_select_related = ["dataset", "requested_by"]
