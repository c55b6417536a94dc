def test_ingest_then_read(api, produce_token, dataset, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = api.as_token(produce_token).post(
            "/api/v1/datasets/demo/items/",
            {"items": [{"text": "hello world", "origin": "synthetic"}]},
            format="json",
        )
    assert response.status_code == 201, response.json()
    item_id = response.json()["results"][0]["id"]
    assert api.get(f"/api/v1/items/{item_id}/").json()["text"] == "hello world"
