from django.urls import path

from corpus import api

app_name = "corpus"

urlpatterns = [
    path("datasets/", api.DatasetsApi.as_view(), name="datasets"),
    path("datasets/<slug:slug>/items/", api.DatasetItemsApi.as_view(), name="dataset-items"),
    path("items/<int:item_id>/", api.ItemDetailApi.as_view(), name="item-detail"),
]
