"""Review pages, mounted at /review/."""

from django.urls import path

from review import views

app_name = "review"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/", views.triage, name="triage"),
    path("<slug:slug>/undo", views.undo, name="undo"),
    path("<slug:slug>/progress", views.progress, name="progress"),
    path("<slug:slug>/items/", views.item_list, name="list"),
    path("<slug:slug>/items/bulk", views.bulk, name="bulk"),
    path("<slug:slug>/items/total", views.item_list_total, name="list-total"),
    path("<slug:slug>/items/bulk-all", views.bulk_all, name="bulk-all"),
    path("<slug:slug>/bulk-jobs/", views.bulk_jobs, name="bulk-jobs"),
    path("<slug:slug>/bulk-jobs/<int:job_id>/", views.bulk_job, name="bulk-job"),
    path(
        "<slug:slug>/bulk-jobs/<int:job_id>/cancel",
        views.bulk_job_action,
        {"action": "cancel"},
        name="bulk-job-cancel",
    ),
    path(
        "<slug:slug>/bulk-jobs/<int:job_id>/resume",
        views.bulk_job_action,
        {"action": "resume"},
        name="bulk-job-resume",
    ),
    path("<slug:slug>/items/<int:item_id>/", views.item_detail, name="item"),
    path("<slug:slug>/items/<int:item_id>/decide", views.decide, name="decide"),
    path("<slug:slug>/items/<int:item_id>/skip", views.skip, name="skip"),
    path("<slug:slug>/items/<int:item_id>/lease", views.renew, name="renew"),
    path("<slug:slug>/items/<int:item_id>/gold", views.gold, name="gold"),
    path("<slug:slug>/settings/", views.review_settings, name="settings"),
    path("<slug:slug>/reviewers/", views.stats, name="stats"),
]
