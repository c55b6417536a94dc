"""The dashboard's rows in the Django admin, read-only: the rollup writes them, and alert rules
change through their form (/datasets/<slug>/settings/alerts/), which validates and audits.
TailGram (a composite primary key) is not registered: Django's admin does not support it."""

from django.contrib import admin

from corpus.admin import ReadOnlyAdmin
from dashboard.models import Alert, AlertRules, DashboardDay, DashboardState


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["dataset", "kind", "subject", "value", "threshold", "fired_at", "cleared_at"]
    list_filter = ["kind"]
    search_fields = ["reason", "subject"]


@admin.register(AlertRules)
class AlertRulesAdmin(ReadOnlyAdmin):
    list_display = ["dataset", "version", "updated_at"]


@admin.register(DashboardDay)
class DashboardDayAdmin(ReadOnlyAdmin):
    list_display = ["dataset", "day", "ingested", "approved", "tail_coverage", "computed_at"]


@admin.register(DashboardState)
class DashboardStateAdmin(ReadOnlyAdmin):
    list_display = ["dataset", "feed_seq", "reference_item_id", "computed_at"]
