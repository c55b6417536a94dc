"""The REST API, version 1 (``/api/v1/``): one route per resource, each served by the API views
of ``corpus/api/``."""

from django.urls import path

from corpus.api import audit as audit_api
from corpus.api import datasets, items
from corpus.api import exports as exports_api
from corpus.api import feed as feed_api
from corpus.api import lineage as lineage_api
from corpus.api import scoring_rules as scoring_rules_api

app_name = "corpus"

urlpatterns = [
    path("datasets/", datasets.DatasetsApi.as_view(), name="datasets"),
    path("datasets/<slug:slug>/items/", items.DatasetItemsApi.as_view(), name="dataset-items"),
    path("items/<int:item_id>/", items.ItemDetailApi.as_view(), name="item-detail"),
    path(
        "items/<int:item_id>/lineage/",
        lineage_api.ItemLineageApi.as_view(),
        name="item-lineage",
    ),
    path("audit/", audit_api.AuditEventsApi.as_view(), name="audit"),
    path(
        "datasets/<slug:slug>/export-policy/",
        exports_api.ExportPolicyApi.as_view(),
        name="export-policy",
    ),
    path(
        "datasets/<slug:slug>/exports/preview",
        exports_api.ExportPreviewApi.as_view(),
        name="exports-preview",
    ),
    path("datasets/<slug:slug>/exports/", exports_api.ExportsApi.as_view(), name="exports"),
    path(
        "datasets/<slug:slug>/exports/<int:export_id>/",
        exports_api.ExportDetailApi.as_view(),
        name="export-detail",
    ),
    path(
        "datasets/<slug:slug>/exports/<int:export_id>/download",
        exports_api.ExportDownloadApi.as_view(),
        name="export-download",
    ),
    path(
        "datasets/<slug:slug>/scoring-rules/",
        scoring_rules_api.ScoringRulesApi.as_view(),
        name="scoring-rules",
    ),
    path("datasets/<slug:slug>/feed/", feed_api.FeedApi.as_view(), name="feed"),
    path("items/<int:item_id>/retract", exports_api.ItemRetractApi.as_view(), name="item-retract"),
]
