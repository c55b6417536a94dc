from django.urls import path

from corpus.api import datasets, items

app_name = "corpus"

urlpatterns = [
    path("datasets/", datasets.DatasetsApi.as_view(), name="datasets"),
    path("datasets/<slug:slug>/items/", items.DatasetItemsApi.as_view(), name="dataset-items"),
    path("items/<int:item_id>/", items.ItemDetailApi.as_view(), name="item-detail"),
]
