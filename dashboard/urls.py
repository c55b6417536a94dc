"""Dataset pages of the dashboard app, under /datasets/<slug>/ beside corpus' exports pages."""

from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("datasets/", views.dashboard_index, name="index"),
    path("datasets/<slug:slug>/", views.dataset_dashboard, name="dataset"),
    path(
        "datasets/<slug:slug>/charts/<slug:chart>.csv",
        views.chart_data,
        {"fmt": "csv"},
        name="chart-csv",
    ),
    path(
        "datasets/<slug:slug>/charts/<slug:chart>.json",
        views.chart_data,
        {"fmt": "json"},
        name="chart-json",
    ),
    path("datasets/<slug:slug>/settings/alerts/", views.alert_settings, name="alerts"),
    path("datasets/<slug:slug>/rollup", views.rollup_request, name="rollup"),
]
