"""The REST API, version 1 (``/api/v1/``): one route per resource, each served by the API views
of ``corpus/api/``, one view per operation (``methods()`` where a route serves several)."""

from django.urls import path

from corpus.api import audit as audit_api
from corpus.api import datasets, items
from corpus.api import exports as exports_api
from corpus.api import feed as feed_api
from corpus.api import lineage as lineage_api
from corpus.api import scoring_rules as scoring_rules_api
from corpus.api.routing import methods

app_name = "corpus"

urlpatterns = [
    path(
        "datasets/",
        methods(get=datasets.DatasetListApi, post=datasets.DatasetCreateApi),
        name="datasets",
    ),
    path(
        "datasets/<slug:slug>/items/",
        methods(get=items.ItemListApi, post=items.ItemIngestApi),
        name="dataset-items",
    ),
    path("items/<int:item_id>/", items.ItemDetailApi.as_view(), name="item-detail"),
    path(
        "items/<int:item_id>/lineage/",
        lineage_api.ItemLineageApi.as_view(),
        name="item-lineage",
    ),
    path("audit/", audit_api.AuditEventsApi.as_view(), name="audit"),
    path(
        "datasets/<slug:slug>/export-policy/",
        methods(get=exports_api.ExportPolicyGetApi, put=exports_api.ExportPolicySetApi),
        name="export-policy",
    ),
    path(
        "datasets/<slug:slug>/exports/preview",
        exports_api.ExportPreviewApi.as_view(),
        name="exports-preview",
    ),
    path(
        "datasets/<slug:slug>/exports/",
        methods(get=exports_api.ExportListApi, post=exports_api.ExportCreateApi),
        name="exports",
    ),
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
        methods(get=scoring_rules_api.ScoringRulesGetApi, put=scoring_rules_api.ScoringRulesSetApi),
        name="scoring-rules",
    ),
    path("datasets/<slug:slug>/feed/", feed_api.FeedApi.as_view(), name="feed"),
    path("items/<int:item_id>/retract", exports_api.ItemRetractApi.as_view(), name="item-retract"),
]
