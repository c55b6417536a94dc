"""The Django admin, every class registered here once. Rows the services write are read-only
(``ReadOnlyAdmin``); the few an admin may edit here (datasets, sources, items, scores, users,
groups) are ``AuditedAdmin`` subclasses, so each change is one audit event. An item's state is
never edited here: it moves through the review services, the scoring pipeline and retractions,
which keep the feed and the "not after export" rule."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from corpus.admin_audit import AuditedAdmin, AuditedGroupAdmin, AuditedUserAdmin
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
    NearDupIndexState,
    NearDuplicate,
    Retraction,
    Score,
    ScoringRules,
    Source,
)
from corpus.services.audit import actor_for_user
from corpus.services.tokens import token_revoke


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that services write and audit (the audit chain, exports, the feed, detector models,
    the review app's rows): the admin shows them; changes go through the pages, the API and the
    commands, which audit them. Rows keyed by a composite primary key (AuditEventItem,
    ExportItem) are not registered: Django's admin does not support such keys; they show
    through their event's and export's pages and the API."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Dataset)
class DatasetAdmin(AuditedAdmin):
    audit_object_type = "dataset"
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name", "description"]
    filter_horizontal = ["reviewers"]


@admin.register(Source)
class SourceAdmin(AuditedAdmin):
    audit_object_type = "source"
    list_display = ["name", "dataset", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["name"]


class ParentInline(admin.TabularInline):
    model = ItemParent
    fk_name = "child"
    raw_id_fields = ["parent"]
    extra = 0


@admin.register(Item)
class ItemAdmin(AuditedAdmin):
    audit_object_type = "item"
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
    # State and what goes with it change only through the services (review, scoring,
    # retraction, gold): editing them here would skip the feed and the export rules.
    readonly_fields = [
        "state",
        "state_reason",
        "is_gold",
        "content_hash",
        "created_at",
        "updated_at",
        "decided_at",
        "decided_by",
    ]
    inlines = [ParentInline]
    show_full_result_count = False


@admin.register(Score)
class ScoreAdmin(AuditedAdmin):
    audit_object_type = "score"
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


@admin.register(NearDuplicate)
class NearDuplicateAdmin(ReadOnlyAdmin):
    """Matches scoring stored (both ways); rescoring replaces them."""

    list_display = ["item", "other", "jaccard", "containment"]
    raw_id_fields = ["item", "other"]
    search_fields = ["=item__id", "=other__id"]
    show_full_result_count = False


@admin.register(NearDupIndexState)
class NearDupIndexStateAdmin(ReadOnlyAdmin):
    """What the near-duplicate index should reflect; scoring keeps it, and heals the index."""

    list_display = ["dataset", "generation", "confirmed", "degraded_reason", "healed_at"]
    search_fields = ["dataset__slug", "degraded_reason"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the log is append-only, even for superusers."""

    list_display = ["seq", "time", "actor", "action", "object_type", "object_id", "dataset"]
    list_filter = ["action", "object_type", "dataset"]
    search_fields = ["actor", "object_id", "=seq"]
    show_full_result_count = False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with `manage.py create_token` (the key is printed once), read-only here
    and never deleted: revoking goes through ``token_revoke``, which audits it, so a revoked
    token's history stays whole."""

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
    actions = ["revoke_tokens"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Every field is read-only: there is nothing to save, and nothing may be written
        around the token service."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing related to save either."""

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        actor = actor_for_user(request.user)
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            before = token.revoked_at
            token = token_revoke(actor=actor, token=token)
            revoked += before is None and token.revoked_at is not None
        self.message_user(
            request,
            f"Revoked {revoked} token{'s' if revoked != 1 else ''} at "
            f"{timezone.now():%Y-%m-%d %H:%M} UTC.",
            messages.SUCCESS,
        )
        return None


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

    def changelist_view(self, request, extra_context=None):
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


# Users and groups: Django's own admin classes, audited. django.contrib.auth registered them.
for _model, _class in ((get_user_model(), AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _class)
