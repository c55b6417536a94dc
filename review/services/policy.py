"""What admins change about how a dataset is reviewed: the consensus rules and gold rate, and
the list of reject reasons. Each change bumps the policy version and is audited with what it
was before, so a decision can always be read against the rules in force when it was made."""

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from corpus.models import Dataset
from corpus.services.audit import actor_for_user, audit_append, audit_lock
from review.models import MAX_REJECT_REASONS, ReviewPolicy
from review.services import ReviewError

REASON_KEY_RE = re.compile(r"^[a-z0-9_]{1,64}$")
MAX_REASON_LABEL = 100
MAX_GOLD_RATE = 0.5

POLICY_FIELDS = (
    "consensus_approvals",
    "consensus_min_detector",
    "consensus_min_generation",
    "consensus_unknown_origin",
    "gold_rate",
)


def _locked_policy(dataset: Dataset) -> ReviewPolicy:
    audit_lock()  # lock order: the audit chain first, then rows
    policy = ReviewPolicy.objects.select_for_update().filter(dataset=dataset).first()
    return policy if policy is not None else ReviewPolicy(dataset=dataset)


@transaction.atomic
def review_policy_update(
    *,
    actor: Any,
    dataset: Dataset,
    consensus_approvals: int,
    consensus_min_detector: float | None,
    consensus_min_generation: int | None,
    consensus_unknown_origin: bool,
    gold_rate: float,
) -> ReviewPolicy:
    if not 2 <= consensus_approvals <= 9:
        raise ReviewError(
            "Consensus needs between 2 and 9 approvals from distinct reviewers.",
            field="consensus_approvals",
        )
    if consensus_min_detector is not None and not 0 <= consensus_min_detector <= 1:
        raise ReviewError(
            "A detector threshold is between 0 and 1.", field="consensus_min_detector"
        )
    if consensus_min_generation is not None and consensus_min_generation < 0:
        raise ReviewError("A generation is 0 or more.", field="consensus_min_generation")
    if not 0 <= gold_rate <= MAX_GOLD_RATE:
        raise ReviewError(
            f"The gold rate is between 0 and {MAX_GOLD_RATE} (a share of items).",
            field="gold_rate",
        )
    policy = _locked_policy(dataset)
    after = {
        "consensus_approvals": consensus_approvals,
        "consensus_min_detector": consensus_min_detector,
        "consensus_min_generation": consensus_min_generation,
        "consensus_unknown_origin": consensus_unknown_origin,
        "gold_rate": gold_rate,
    }
    changes = {
        name: [getattr(policy, name), value]
        for name, value in after.items()
        if getattr(policy, name) != value
    }
    if not changes:
        return policy
    for name, value in after.items():
        setattr(policy, name, value)
    policy.version += 1
    policy.updated_at = timezone.now()
    policy.save()
    audit_append(
        actor=actor_for_user(actor),
        action="review.policy_changed",
        object_type="dataset",
        object_id=dataset.slug,
        dataset=dataset,
        payload={"version": policy.version, "changes": changes},
    )
    return policy


def reasons_validate(reasons: list[dict[str, str]]) -> list[dict[str, str]]:
    if not reasons:
        raise ReviewError("Keep at least one reject reason.", field="reasons")
    if len(reasons) > MAX_REJECT_REASONS:
        raise ReviewError(
            f"At most {MAX_REJECT_REASONS} reasons (one per key, 1 to 9).", field="reasons"
        )
    seen = set()
    clean = []
    for number, reason in enumerate(reasons, start=1):
        key = reason.get("key", "").strip()
        label = " ".join(reason.get("label", "").split())
        if not REASON_KEY_RE.match(key):
            raise ReviewError(
                f"Reason {number}: the key '{key}' must be 1-64 lowercase letters, digits or _.",
                field="reasons",
            )
        if key in seen:
            raise ReviewError(f"Reason {number}: the key '{key}' is used twice.", field="reasons")
        if not label or len(label) > MAX_REASON_LABEL:
            raise ReviewError(
                f"Reason {number}: a label has 1 to {MAX_REASON_LABEL} characters.",
                field="reasons",
            )
        seen.add(key)
        clean.append({"key": key, "label": label})
    return clean


@transaction.atomic
def reject_reasons_update(
    *, actor: Any, dataset: Dataset, reasons: list[dict[str, str]]
) -> ReviewPolicy:
    """Replace the dataset's reject reasons (order = digit keys). Past decisions keep the key
    they were made with."""
    clean = reasons_validate(reasons)
    policy = _locked_policy(dataset)
    before = list(policy.reject_reasons)
    if before == clean:
        return policy
    policy.reject_reasons = clean
    policy.version += 1
    policy.updated_at = timezone.now()
    policy.save()
    audit_append(
        actor=actor_for_user(actor),
        action="review.reasons_changed",
        object_type="dataset",
        object_id=dataset.slug,
        dataset=dataset,
        payload={"version": policy.version, "before": before, "after": clean},
    )
    return policy
