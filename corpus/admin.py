from django.contrib import admin

from corpus.models import (
    ApiToken,
    AuditEvent,
    AuditHead,
    AuditVerification,
    Dataset,
    DetectorModel,
    Export,
    ExportPolicy,
    FeedEntry,
    Item,
    ItemParent,
    Retraction,
    Score,
    ScoringRules,
    Source,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that services write and audit (the audit chain, exports, the feed, detector models,
    the review app's rows): the admin shows them; changes go through the pages, the API and the
    commands, which audit them. Rows keyed by a composite primary key (AuditEventItem,
    ExportItem) are not registered: Django's admin does not support such keys; they show
    through their event's and export's pages and the API."""

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name", "description"]
    filter_horizontal = ["reviewers"]


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "dataset", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["name"]


class ParentInline(admin.TabularInline):
    model = ItemParent
    fk_name = "child"
    raw_id_fields = ["parent"]
    extra = 0


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "dataset",
        "source",
        "origin",
        "generator_model",
        "generation",
        "state",
        "priority",
        "created_at",
    ]
    list_filter = ["dataset", "state", "origin", "is_reference", "generator_model"]
    search_fields = ["=id", "external_id", "content_hash", "text"]
    list_select_related = ["dataset", "source"]
    raw_id_fields = ["source"]
    readonly_fields = ["content_hash", "created_at", "updated_at", "decided_at", "decided_by"]
    inlines = [ParentInline]
    show_full_result_count = False


@admin.register(Score)
class ScoreAdmin(admin.ModelAdmin):
    list_display = [
        "item",
        "scorer_version",
        "exact_duplicate_of",
        "near_duplicate_jaccard",
        "degenerate",
        "detector_name",
        "detector_probability",
        "priority",
    ]
    list_filter = ["scorer_version", "degenerate", "detector_name"]
    raw_id_fields = ["item", "exact_duplicate_of", "near_duplicate_of"]
    search_fields = ["=item__id"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the log is append-only, even for superusers."""

    list_display = ["seq", "time", "actor", "action", "object_type", "object_id", "dataset"]
    list_filter = ["action", "object_type", "dataset"]
    search_fields = ["actor", "object_id", "=seq"]
    show_full_result_count = False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with `manage.py create_token` (the key is printed once)."""

    list_display = [
        "name",
        "key_prefix",
        "scopes",
        "dataset",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["dataset", "revoked_at"]
    search_fields = ["name", "key_prefix"]
    readonly_fields = ["key_hash", "key_prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(ItemParent)
class ItemParentAdmin(ReadOnlyAdmin):
    list_display = ["child", "parent"]
    raw_id_fields = ["child", "parent"]
    search_fields = ["=child__id", "=parent__id"]


@admin.register(AuditHead)
class AuditHeadAdmin(ReadOnlyAdmin):
    list_display = ["seq", "hash"]


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    list_display = ["ok", "verified_seq", "anchored_seq", "bad_seq", "checked_at", "problem"]


@admin.register(ExportPolicy)
class ExportPolicyAdmin(ReadOnlyAdmin):
    list_display = ["dataset", "version", "created_by", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["created_by"]


@admin.register(Export)
class ExportAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "dataset",
        "status",
        "format",
        "mode",
        "rows_written",
        "size",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "format", "mode", "dataset"]
    search_fields = ["=id", "requested_by", "sha256", "merkle_root"]
    raw_id_fields = ["since", "policy"]


@admin.register(FeedEntry)
class FeedEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "dataset", "item", "kind", "created_at"]
    list_filter = ["kind", "dataset"]
    search_fields = ["=seq", "=item__id"]
    raw_id_fields = ["item"]


@admin.register(Retraction)
class RetractionAdmin(ReadOnlyAdmin):
    list_display = ["item", "dataset", "reason", "actor", "feed_seq", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["=item__id", "reason", "actor"]
    raw_id_fields = ["item"]


@admin.register(ScoringRules)
class ScoringRulesAdmin(ReadOnlyAdmin):
    """Shown, not edited: rules change on each dataset's settings page
    (``/datasets/<slug>/settings/``) or through ``PUT /api/v1/datasets/<slug>/scoring-rules/``,
    which validate and audit them. A dataset without a row here uses the defaults."""

    def changelist_view(self, request, extra_context=None):  # type: ignore[no-untyped-def]
        from django.contrib import messages

        messages.info(
            request,
            "Scoring rules are edited on each dataset's settings page (/datasets/<slug>/"
            "settings/) or with PUT /api/v1/datasets/<slug>/scoring-rules/; a dataset not "
            "listed here uses the defaults.",
        )
        return super().changelist_view(request, extra_context)

    list_display = [
        "dataset",
        "reject_exact_duplicates",
        "reject_near_duplicates",
        "near_duplicate_threshold",
        "report_threshold",
        "reject_degenerate",
        "updated_at",
    ]


@admin.register(DetectorModel)
class DetectorModelAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "version",
        "dataset",
        "auroc",
        "n_train",
        "n_test",
        "is_active",
        "created_at",
    ]
    list_filter = ["name", "is_active", "dataset"]
    search_fields = ["version"]
    exclude = ["weights"]


# Last: it re-registers the classes above (and the auth ones) with audited versions.
from corpus import admin_audit  # noqa: E402, F401
