"""Browser pages of the corpus app (the API lives in corpus/api/urls.py)."""

from django.urls import path

from corpus import views
from corpus.views import audit as audit_views
from corpus.views import exports as export_views
from corpus.views import items as item_views

app_name = "corpus_ui"

urlpatterns = [
    path("", views.home, name="home"),
    path("audit/", audit_views.audit_browser, name="audit"),
    path("items/<int:item_id>/", item_views.item_page, name="item"),
    path("exports/", export_views.exports_index, name="exports-index"),
    path("datasets/<slug:slug>/exports/", export_views.exports_page, name="exports"),
    path(
        "datasets/<slug:slug>/exports/policy",
        export_views.exports_policy_save,
        name="exports-policy",
    ),
    path(
        "datasets/<slug:slug>/exports/preview",
        export_views.exports_preview,
        name="exports-preview",
    ),
    path("datasets/<slug:slug>/exports/new", export_views.exports_create, name="exports-create"),
    path(
        "datasets/<slug:slug>/exports/<int:export_id>/",
        export_views.export_detail,
        name="export-detail",
    ),
    path(
        "datasets/<slug:slug>/exports/<int:export_id>/row",
        export_views.export_row,
        name="export-row",
    ),
    path(
        "datasets/<slug:slug>/exports/<int:export_id>/progress",
        export_views.export_progress,
        name="export-progress",
    ),
    path(
        "datasets/<slug:slug>/exports/<int:export_id>/download",
        export_views.export_download,
        name="export-download",
    ),
    path("datasets/<slug:slug>/retract", export_views.item_retract_view, name="item-retract"),
]
