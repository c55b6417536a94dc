from django.contrib import admin

from corpus.models import ApiToken, AuditEvent, Dataset, Item, ItemParent, Score, Source


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
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the log is append-only, even for superusers."""

    list_display = ["seq", "time", "actor", "action", "object_type", "object_id", "dataset"]
    list_filter = ["action", "object_type", "dataset"]
    search_fields = ["actor", "object_id", "=seq"]
    show_full_result_count = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


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


# Last: it re-registers the classes above (and the auth ones) with audited versions.
from corpus import admin_audit  # noqa: E402, F401
