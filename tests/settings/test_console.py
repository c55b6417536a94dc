"""The settings console of a dataset (/datasets/<slug>/settings/): who may use it, each form's
save, refusal (400 with the field named) and preview, with and without htmx."""

import pytest

from corpus.models import AuditEvent, ExportPolicy, ScoringRules
from tests.review.conftest import login

pytestmark = pytest.mark.django_db

PAGE = "/datasets/demo/settings/"
HX = {"HTTP_HX_REQUEST": "true"}
RULES = {
    "reject_exact_duplicates": "on",
    "reject_near_duplicates": "on",
    "near_duplicate_threshold": "0.9",
    "report_threshold": "0.5",
}
POLICY = {
    "mode": "accumulate",
    "max_synthetic_share": "0.4",
    "source_caps": "web: 30%\ncrawl: 500",
    "generator_caps": "",
    "on_violation": "sample",
    "seed": "7",
}


def test_the_page_is_for_admins(client, review_dataset, alice, charlie, lead, admin_user):
    assert client.get(PAGE).status_code == 302
    assert login(charlie).get(PAGE).status_code == 404
    assert login(alice).get(PAGE).status_code == 403
    assert login(lead).post(PAGE).status_code == 405
    for admin in (lead, admin_user):
        response = login(admin).get(PAGE)
        assert response.status_code == 200
        for section in ("review-policy", "reasons", "quotas", "scoring-rules", "export-policy"):
            assert f'id="{section}"'.encode() in response.content
        assert b'id="alerts-form"' in response.content  # the dashboard app's alerts form


def test_reviewers_cannot_post_settings(review_dataset, alice):
    for path in ("scoring-rules", "export-policy", "export-policy/json", "export-policy/preview"):
        assert login(alice).post(PAGE + path, RULES).status_code == 403
    assert not ScoringRules.objects.exists()


def test_scoring_rules_saved_with_htmx_answer_the_section_with_a_notice(review_dataset, lead):
    response = login(lead).post(PAGE + "scoring-rules", RULES, **HX)

    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<section id="scoring-rules"')
    assert b"Scoring rules saved" in response.content
    rules = ScoringRules.objects.get(dataset=review_dataset)
    assert rules.near_duplicate_threshold == 0.9
    assert rules.reject_degenerate is False  # an unticked box switches the rule off
    assert AuditEvent.objects.get(action="scoring_rules.updated").actor.endswith(":lead")


def test_scoring_rules_saved_without_htmx_redirect_back(review_dataset, lead):
    response = login(lead).post(PAGE + "scoring-rules", RULES)
    assert response.status_code == 303
    assert response["Location"] == PAGE + "#scoring-rules"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"near_duplicate_threshold": "1.5"}, b"less than or equal to 1.0"),
        ({"near_duplicate_threshold": "0.3"}, b"must not be above the near-duplicate threshold"),
        ({"report_threshold": "many"}, b"Enter a number."),
    ],
)
def test_bad_scoring_rules_are_a_400_with_the_error_in_the_section(
    review_dataset, lead, data, message
):
    response = login(lead).post(PAGE + "scoring-rules", {**RULES, **data}, **HX)

    assert response.status_code == 400
    assert b'<section id="scoring-rules"' in response.content
    assert b'class="form-errors" role="alert"' in response.content
    assert message in response.content
    assert not ScoringRules.objects.exists()


def test_the_scoring_rules_preview_counts_and_saves_nothing(review_dataset, lead):
    response = login(lead).post(PAGE + "scoring-rules/preview", RULES, **HX)

    assert response.status_code == 200
    assert b'id="scoring-rules-preview"' in response.content
    assert b"would be auto-rejected if rescored" in response.content
    assert not ScoringRules.objects.exists()


def test_the_export_policy_form_saves_a_version(review_dataset, lead):
    response = login(lead).post(PAGE + "export-policy", POLICY, **HX)

    assert response.status_code == 200
    assert b"saved as version 1" in response.content
    spec = ExportPolicy.objects.get(dataset=review_dataset).spec
    assert spec["max_synthetic_share"] == 0.4
    assert spec["source_caps"] == {"web": {"share": 0.3}, "crawl": {"count": 500}}
    assert spec["seed"] == 7
    # the form shows the saved caps as it takes them, and the JSON view the same document
    assert b"crawl: 500\nweb: 30%" in response.content
    assert b"&quot;crawl&quot;" in response.content
    assert AuditEvent.objects.filter(action="export_policy.updated").count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_synthetic_share": "1.5"}, b"less than or equal to 1.0"),
        ({"source_caps": "web 30"}, b"Line 1: write"),
        ({"source_caps": "web: 2.5"}, b"a count is a whole number"),
        ({"generator_caps": "gpt: 120%"}, b"less than or equal to 1"),
        ({"mode": "sometimes"}, b"Select a valid choice"),
    ],
)
def test_a_bad_export_policy_is_a_400_naming_the_field(review_dataset, lead, data, message):
    response = login(lead).post(PAGE + "export-policy", {**POLICY, **data}, **HX)

    assert response.status_code == 400
    assert b'class="form-errors" role="alert"' in response.content
    assert message in response.content
    assert not ExportPolicy.objects.exists()


def test_the_json_view_saves_and_refuses_with_the_field(review_dataset, lead):
    bad = login(lead).post(PAGE + "export-policy/json", {"policy": '{"max_depth": 2}'}, **HX)
    assert bad.status_code == 400
    assert b"<code>max_depth</code>" in bad.content
    broken = login(lead).post(PAGE + "export-policy/json", {"policy": "{"}, **HX)
    assert broken.status_code == 400
    assert b"not valid JSON" in broken.content
    assert not ExportPolicy.objects.exists()

    ok = login(lead).post(PAGE + "export-policy/json", {"policy": '{"max_generation": 2}'}, **HX)
    assert ok.status_code == 200
    assert ExportPolicy.objects.get().spec["max_generation"] == 2


def test_the_export_policy_preview_shows_the_effect_and_saves_nothing(review_dataset, lead):
    response = login(lead).post(PAGE + "export-policy/preview", POLICY, **HX)

    assert response.status_code == 200
    assert b'id="export-policy-preview"' in response.content
    assert b"would hold <strong>0</strong> of 0 approved items" in response.content
    assert not ExportPolicy.objects.exists()


def test_a_refused_save_without_htmx_renders_the_page_with_the_error(review_dataset, lead):
    response = login(lead).post(PAGE + "export-policy", {**POLICY, "min_human_share": "-1"})

    assert response.status_code == 400
    assert b"<h1>" in response.content
    assert b"greater than or equal to 0.0" in response.content


def test_the_django_admin_shows_scoring_rules_and_says_where_to_edit_them(
    client, review_dataset, admin_user
):
    ScoringRules.objects.create(dataset=review_dataset)
    client.force_login(admin_user)

    response = client.get("/admin/corpus/scoringrules/")

    assert response.status_code == 200
    assert b"/datasets/&lt;slug&gt;/settings/" in response.content
    assert b'href="/admin/corpus/scoringrules/add/"' not in response.content
    rules = ScoringRules.objects.get()
    change = client.post(
        f"/admin/corpus/scoringrules/{rules.pk}/change/", {"near_duplicate_threshold": "0.1"}
    )
    assert change.status_code == 403
    assert ScoringRules.objects.get().near_duplicate_threshold == 0.5
