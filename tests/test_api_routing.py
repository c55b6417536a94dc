"""Routes served by one API view per operation (corpus.api.routing.methods): the wrong method,
the ``Allow`` header, CSRF, and the OpenAPI schema."""

import pytest
from rest_framework.test import APIClient
from rest_framework.views import APIView

from corpus.api import datasets
from corpus.api.routing import methods

DATASETS = "/api/v1/datasets/"
ITEMS = "/api/v1/datasets/demo/items/"
POLICY = "/api/v1/datasets/demo/export-policy/"
EXPORTS = "/api/v1/datasets/demo/exports/"
RULES = "/api/v1/datasets/demo/scoring-rules/"

# url, the token fixture allowed there, a method the route does not serve, the route's Allow
SPLIT_ROUTES = [
    (DATASETS, "admin_token", "delete", "GET, POST, HEAD, OPTIONS"),
    (ITEMS, "produce_token", "put", "GET, POST, HEAD, OPTIONS"),
    (POLICY, "admin_token", "post", "GET, PUT, HEAD, OPTIONS"),
    (EXPORTS, "consume_token", "patch", "GET, POST, HEAD, OPTIONS"),
    (RULES, "admin_token", "delete", "GET, PUT, HEAD, OPTIONS"),
]


@pytest.mark.parametrize(("url", "token_name", "wrong", "allow"), SPLIT_ROUTES)
def test_a_wrong_method_is_a_405_naming_the_methods_of_the_route(
    api, request, dataset, url, token_name, wrong, allow
):
    token = request.getfixturevalue(token_name)

    response = getattr(api.as_token(token), wrong)(url, {}, format="json")

    assert response.status_code == 405
    assert response["Allow"] == allow
    assert response.json() == {"errors": [{"message": f'Method "{wrong.upper()}" not allowed.'}]}


@pytest.mark.parametrize(("url", "token_name", "wrong", "allow"), SPLIT_ROUTES)
def test_a_served_method_still_names_every_method_of_the_route(
    api, request, dataset, url, token_name, wrong, allow
):
    token = request.getfixturevalue(token_name)

    response = api.as_token(token).get(url)

    assert response.status_code == 200
    assert response["Allow"] == allow


@pytest.mark.parametrize(("url", "token_name", "wrong", "allow"), SPLIT_ROUTES)
def test_a_wrong_method_without_a_token_is_refused_as_any_anonymous_request(
    api, dataset, url, token_name, wrong, allow
):
    # As with one view per route, authentication comes before the method check.
    anonymous_get = api.get(url)

    response = getattr(api, wrong)(url, {}, format="json")

    assert anonymous_get.status_code in (401, 403)
    assert response.status_code == anonymous_get.status_code


def test_head_is_served_by_the_list_view(api, admin_token, dataset):
    response = api.as_token(admin_token).head(DATASETS)

    assert response.status_code == 200


def test_a_token_post_needs_no_csrf_token(admin_token, db):
    # Django's CSRF middleware must not refuse the route: DRF decides per view, as for
    # as_view(), and token authentication needs no CSRF token.
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {admin_token.key}")

    response = client.post(DATASETS, {"slug": "fresh", "name": "Fresh"}, format="json")

    assert response.status_code == 201


def test_methods_refuses_a_view_that_does_not_serve_the_method():
    with pytest.raises(ValueError, match="DatasetListApi does not serve POST"):
        methods(get=datasets.DatasetListApi, post=datasets.DatasetListApi)


def test_methods_refuses_a_name_that_is_not_an_http_method():
    class Odd(APIView):
        def fetch(self, request):  # pragma: no cover - never routed
            raise AssertionError

    with pytest.raises(ValueError, match="does not serve FETCH"):
        methods(fetch=Odd)


def test_the_schema_documents_every_operation_of_the_split_routes(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()

    operations = {
        path: {
            method: (op["operationId"], op.get("description", ""))
            for method, op in schema["paths"][path].items()
            if method != "parameters"
        }
        for path in (
            "/api/v1/datasets/",
            "/api/v1/datasets/{slug}/items/",
            "/api/v1/datasets/{slug}/export-policy/",
            "/api/v1/datasets/{slug}/exports/",
            "/api/v1/datasets/{slug}/scoring-rules/",
        )
    }

    # Each operation is documented from its own view (its docstring is the description).
    assert operations == {
        "/api/v1/datasets/": {
            "get": ("datasets_list", "The datasets the token may see (admin tokens)."),
            "post": (
                "datasets_create",
                "Create a dataset (admin tokens not bound to one dataset).",
            ),
        },
        "/api/v1/datasets/{slug}/items/": {
            "get": (
                "items_list",
                "Pages through a dataset's items, oldest first (any token of the dataset).",
            ),
            "post": ("items_ingest", "Ingests a batch of items into a dataset (produce scope)."),
        },
        "/api/v1/datasets/{slug}/export-policy/": {
            "get": ("export_policy_get", "The dataset's current export policy (admin tokens)."),
            "put": (
                "export_policy_put",
                "The whole policy document; omitted fields take their defaults. Every PUT "
                "makes a new version.",
            ),
        },
        "/api/v1/datasets/{slug}/exports/": {
            "get": ("exports_list", "The dataset's exports, newest first (consume tokens)."),
            "post": (
                "exports_create",
                "Requests an export; it is built in the background (consume tokens).",
            ),
        },
        "/api/v1/datasets/{slug}/scoring-rules/": {
            "get": ("scoring_rules_get", "The dataset's scoring rules (admin tokens)."),
            "put": (
                "scoring_rules_put",
                "The whole rule set; omitted fields take their defaults. Items already queued "
                "keep their state until rescored (manage.py rescore).",
            ),
        },
    }
    assert "201" in schema["paths"]["/api/v1/datasets/{slug}/items/"]["post"]["responses"]
    assert "requestBody" in schema["paths"]["/api/v1/datasets/"]["post"]


def test_options_answers_for_the_whole_route(api, admin_token, dataset):
    response = api.as_token(admin_token).options(POLICY)

    assert response.status_code == 200
    assert response["Allow"] == "GET, PUT, HEAD, OPTIONS"
