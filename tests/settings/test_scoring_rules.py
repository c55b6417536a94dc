"""Scoring rules: the service, the API (GET, PUT /api/v1/datasets/{slug}/scoring-rules/), the
preview of what an edit would move, and that an edit decides the next scoring outcome."""

import pytest

from corpus.models import AuditEvent, Item, NearDuplicate, Score, ScoringRules
from corpus.services.audit import SYSTEM, audit_verify
from corpus.services.scoring_rules import (
    ScoringRulesError,
    scoring_rules_preview,
    scoring_rules_set,
)
from tests.factories import ItemFactory
from tests.pipeline.test_scoring_pipeline import ingest, score

pytestmark = pytest.mark.django_db

URL = "/api/v1/datasets/demo/scoring-rules/"
LOOPING = "the model keeps saying the same thing " * 60
DEFAULTS = {
    "reject_exact_duplicates": True,
    "reject_near_duplicates": True,
    "near_duplicate_threshold": 0.5,
    "report_threshold": 0.3,
    "reject_degenerate": True,
}


# --- the next scoring outcome ---------------------------------------------------------------------


def test_switching_a_rule_off_changes_the_next_scoring_outcome_and_is_audited(dataset):
    # given the default rules: degenerate text is auto-rejected
    first = ingest(dataset, [LOOPING])
    score(first)
    assert Item.objects.get(pk=first[0]).state == Item.State.AUTO_REJECTED
    # when an admin switches the degenerate rule off
    scoring_rules_set(
        dataset=dataset, values={**DEFAULTS, "reject_degenerate": False}, actor="user:1:lead"
    )
    # then the next degenerate item scored is queued for review
    second = ingest(dataset, ["a different sentence goes round and round again " * 60])
    score(second)
    item = Item.objects.get(pk=second[0])
    assert item.score.degenerate is True
    assert item.state == Item.State.QUEUED
    # and the change is in the audit chain, naming what changed and who changed it
    event = AuditEvent.objects.get(action="scoring_rules.updated")
    assert event.actor == "user:1:lead"
    assert event.object_id == "demo"
    assert event.payload["changed"]["reject_degenerate"] == [None, False]
    assert audit_verify()[1] is None  # the chain verifies


def test_a_lower_near_duplicate_threshold_rejects_the_next_near_duplicate(dataset):
    base = " ".join(f"word{i}" for i in range(200))
    reference = ingest(dataset, [base], reference=True, origin="human")
    score(reference)
    # A near-copy of the reference, under a threshold of 0.99.
    near = base.replace("word100 ", "changed ").replace("word150 ", "changed ")
    scoring_rules_set(
        dataset=dataset, values={**DEFAULTS, "near_duplicate_threshold": 0.99}, actor=SYSTEM
    )
    kept = ingest(dataset, [near])
    score(kept)
    assert Item.objects.get(pk=kept[0]).state == Item.State.QUEUED
    jaccard = Score.objects.get(item_id=kept[0]).near_duplicate_jaccard
    assert 0.5 <= jaccard < 0.99

    scoring_rules_set(
        dataset=dataset, values={**DEFAULTS, "near_duplicate_threshold": 0.6}, actor=SYSTEM
    )
    rejected = ingest(dataset, [base.replace("word60 ", "changed ")])
    score(rejected)
    item = Item.objects.get(pk=rejected[0])
    assert item.state == Item.State.AUTO_REJECTED
    assert item.state_reason.startswith("near_duplicate")


def test_saving_the_same_rules_twice_appends_one_event(dataset):
    scoring_rules_set(dataset=dataset, values=DEFAULTS, actor=SYSTEM)
    scoring_rules_set(dataset=dataset, values=DEFAULTS, actor=SYSTEM)
    assert AuditEvent.objects.filter(action="scoring_rules.updated").count() == 1
    assert ScoringRules.objects.filter(dataset=dataset).count() == 1


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"near_duplicate_threshold": 1.5}, "near_duplicate_threshold"),
        ({"report_threshold": -0.1}, "report_threshold"),
        ({"report_threshold": "high"}, "report_threshold"),
        ({"reject_degenerate": "yes"}, "reject_degenerate"),
        ({"near_duplicate_threshold": 0.2}, "report_threshold"),  # under the report threshold
        ({"reject_everything": True}, "reject_everything"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(dataset, values, field):
    with pytest.raises(ScoringRulesError) as caught:
        scoring_rules_set(dataset=dataset, values=values, actor=SYSTEM)
    assert [e["field"] for e in caught.value.errors] == [field]
    assert not ScoringRules.objects.exists()
    assert not AuditEvent.objects.filter(action="scoring_rules.updated").exists()


# --- the preview ------------------------------------------------------------------------------


def _queued(dataset, matches=(), **score):  # type: ignore[no-untyped-def]
    item = ItemFactory(dataset=dataset, state=Item.State.QUEUED)
    Score.objects.create(item=item, scorer_version="1", **score)
    for other, jaccard in matches:
        NearDuplicate.objects.create(item=item, other=other, jaccard=jaccard, containment=jaccard)
    return item


def test_the_preview_counts_the_queued_items_new_rules_would_move(dataset):
    reference = ItemFactory(dataset=dataset, state=Item.State.APPROVED, is_reference=True)
    approved = ItemFactory(dataset=dataset, state=Item.State.APPROVED)
    _queued(dataset, matches=[(reference, 0.7)])
    _queued(dataset, matches=[(approved, 0.65)], degenerate=True)
    _queued(dataset, matches=[(reference, 0.55)])
    first = _queued(dataset)
    later = _queued(dataset, matches=[(first, 0.9)])  # an earlier queued match: it goes
    # the same pair seen from the earlier item: a later match, so it survives
    NearDuplicate.objects.create(item=first, other=later, jaccard=0.9, containment=0.9)
    _queued(dataset, degenerate=True)
    ItemFactory(dataset=dataset, state=Item.State.APPROVED)  # not queued: never counted
    # Today's rules reject degenerate text; the two degenerate items were scored before that.
    preview = scoring_rules_preview(
        dataset=dataset, values={**DEFAULTS, "near_duplicate_threshold": 0.6}
    )
    assert preview.queued == 6
    assert preview.by_rule == {"exact duplicate": 0, "near duplicate": 3, "degenerate": 2}
    assert preview.total == 4  # the item both rules catch counts once
    assert preview.total_now == 5  # under the defaults: threshold 0.5
    assert not ScoringRules.objects.exists()  # a preview saves nothing


# --- the API ------------------------------------------------------------------------------------


def test_get_answers_the_defaults_and_the_detector(api, admin_token, dataset):
    response = api.as_token(admin_token).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["rules"] == DEFAULTS
    assert body["updated_at"] is None
    assert body["detector"]["learned"]["name"] == "learned"
    assert body["detector"]["lm"] is False


def test_put_replaces_the_rules_audited_as_the_token(api, admin_token, dataset):
    response = api.as_token(admin_token).put(
        URL, {"reject_near_duplicates": False, "near_duplicate_threshold": 0.9}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["rules"] == {
        **DEFAULTS,
        "reject_near_duplicates": False,
        "near_duplicate_threshold": 0.9,
    }
    rules = ScoringRules.objects.get(dataset=dataset)
    assert rules.reject_near_duplicates is False and rules.near_duplicate_threshold == 0.9
    event = AuditEvent.objects.get(action="scoring_rules.updated")
    assert event.actor == f"token:{admin_token.pk}:root"
    assert api.as_token(admin_token).get(URL).json()["rules"]["near_duplicate_threshold"] == 0.9


def test_put_with_bad_fields_is_a_400_naming_each_field(api, admin_token, dataset):
    response = api.as_token(admin_token).put(
        URL, {"near_duplicate_threshold": 2, "reject_degenerate": "no", "x": 1}, format="json"
    )
    assert response.status_code == 400
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == ["near_duplicate_threshold", "reject_degenerate", "x"]
    assert not ScoringRules.objects.exists()


def test_put_of_something_else_than_an_object_is_a_400(api, admin_token, dataset):
    response = api.as_token(admin_token).put(URL, [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "the rules must be a JSON object"


def test_wrong_method_is_a_405(api, admin_token, dataset):
    assert api.as_token(admin_token).post(URL, {}, format="json").status_code == 405
    assert api.as_token(admin_token).delete(URL).status_code == 405


def test_other_roles_are_refused(api, dataset, produce_token, consume_token):
    assert api.get(URL).status_code == 401
    assert api.put(URL, DEFAULTS, format="json").status_code == 401
    for token in (produce_token, consume_token):
        assert api.as_token(token).get(URL).status_code == 403
        assert api.as_token(token).put(URL, DEFAULTS, format="json").status_code == 403
    assert not ScoringRules.objects.exists()


def test_an_unknown_dataset_is_a_404(api, admin_token, dataset):
    response = api.as_token(admin_token).get("/api/v1/datasets/nope/scoring-rules/")
    assert response.status_code == 404


def test_the_schema_documents_both_operations(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    operations = schema["paths"]["/api/v1/datasets/{slug}/scoring-rules/"]
    assert operations["get"]["operationId"] == "scoring_rules_get"
    assert operations["put"]["operationId"] == "scoring_rules_put"
    assert "400" in operations["put"]["responses"]
