"""Browser pages of the corpus app (the API lives in corpus/urls.py)."""

from django.urls import path

from corpus import views

app_name = "corpus_ui"

urlpatterns = [
    path("", views.home, name="home"),
]
