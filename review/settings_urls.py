"""The settings console of a dataset, mounted at /datasets/<slug>/settings/ (config/urls.py)."""

from django.urls import path

from review import settings_views as views

app_name = "settings"

urlpatterns = [
    path("", views.settings_page, name="page"),
    path("review-policy", views.review_policy_save, name="review-policy"),
    path("reasons", views.reasons_save, name="reasons"),
    path("quota", views.quota_save, name="quota"),
    path("scoring-rules", views.scoring_rules_save, name="scoring-rules"),
    path("scoring-rules/preview", views.scoring_rules_preview_view, name="scoring-rules-preview"),
    path("export-policy", views.export_policy_save, name="export-policy"),
    path("export-policy/json", views.export_policy_json_save, name="export-policy-json"),
    path("export-policy/preview", views.export_policy_preview, name="export-policy-preview"),
]
