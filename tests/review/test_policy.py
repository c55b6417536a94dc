"""Review policy and reject reasons: validated, versioned, audited."""

import pytest

from corpus.models import AuditEvent
from review.models import DEFAULT_REJECT_REASONS, ReviewPolicy
from review.selectors import review_policy_get
from review.services import ReviewError
from review.services.policy import reject_reasons_update, review_policy_update

POLICY = {
    "consensus_approvals": 3,
    "consensus_min_detector": 0.8,
    "consensus_min_generation": 2,
    "consensus_unknown_origin": True,
    "gold_rate": 0.05,
}


def test_defaults_apply_until_an_admin_saves_a_policy(review_dataset):
    policy = review_policy_get(dataset=review_dataset)

    assert policy.pk is None or not ReviewPolicy.objects.exists()
    assert not policy.has_consensus_rules
    assert policy.reject_reasons == DEFAULT_REJECT_REASONS
    assert "machine_written" in [r["key"] for r in policy.reject_reasons]


def test_a_policy_change_is_versioned_and_audited_with_what_changed(review_dataset, lead):
    review_policy_update(actor=lead, dataset=review_dataset, **POLICY)
    review_policy_update(actor=lead, dataset=review_dataset, **POLICY)  # no change, no event

    policy = ReviewPolicy.objects.get()
    assert policy.version == 1
    event = AuditEvent.objects.get(action="review.policy_changed")
    assert event.payload["changes"]["consensus_approvals"] == [2, 3]
    assert event.payload["changes"]["gold_rate"] == [0.0, 0.05]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("consensus_approvals", 1),
        ("consensus_approvals", 10),
        ("consensus_min_detector", 1.5),
        ("consensus_min_generation", -1),
        ("gold_rate", 0.9),
    ],
)
def test_policy_values_out_of_range_are_refused(review_dataset, lead, field, value):
    with pytest.raises(ReviewError) as exc:
        review_policy_update(actor=lead, dataset=review_dataset, **{**POLICY, field: value})

    assert exc.value.field == field
    assert not ReviewPolicy.objects.exists()


def test_reasons_are_replaced_and_audited(review_dataset, lead):
    reasons = [
        {"key": "machine_written", "label": "Machine-written"},
        {"key": "pii", "label": "PII"},
    ]

    reject_reasons_update(actor=lead, dataset=review_dataset, reasons=reasons)

    assert review_policy_get(dataset=review_dataset).reject_reasons == reasons
    event = AuditEvent.objects.get(action="review.reasons_changed")
    assert event.payload["before"] == DEFAULT_REJECT_REASONS
    assert event.payload["after"] == reasons


@pytest.mark.parametrize(
    "reasons",
    [
        [],
        [{"key": "Bad Key", "label": "x"}],
        [{"key": "a", "label": "x"}, {"key": "a", "label": "y"}],
        [{"key": "a", "label": ""}],
        [{"key": f"k{i}", "label": "x"} for i in range(10)],
    ],
)
def test_bad_reason_lists_are_refused(review_dataset, lead, reasons):
    with pytest.raises(ReviewError):
        reject_reasons_update(actor=lead, dataset=review_dataset, reasons=reasons)

    assert not AuditEvent.objects.filter(action="review.reasons_changed").exists()
