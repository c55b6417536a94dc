"""How many approvals settle an item, and what its live decisions add up to.

The rule: any live reject rejects; otherwise an item is approved once it has as many approvals
from distinct reviewers as the policy requires for it (1 unless a consensus rule matches).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from corpus.models import Item, Score
from review.models import Decision, ReviewPolicy, Verdict


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What the consensus rules look at."""

    generation: int
    origin: str
    detector_probability: float | None

    @classmethod
    def of(cls, item: Item) -> "ItemFacts":
        score: Score | None = getattr(item, "score", None)
        return cls(
            generation=item.generation,
            origin=item.origin,
            detector_probability=score.detector_probability if score is not None else None,
        )


def consensus_reasons(*, policy: ReviewPolicy, facts: ItemFacts) -> list[str]:
    """The policy rules this item matches, in words (empty: one approval is enough)."""
    reasons = []
    probability = facts.detector_probability
    if (
        policy.consensus_min_detector is not None
        and probability is not None
        and probability >= policy.consensus_min_detector
    ):
        reasons.append(f"detector probability {probability:.2f} >= {policy.consensus_min_detector}")
    if (
        policy.consensus_min_generation is not None
        and facts.generation >= policy.consensus_min_generation
    ):
        reasons.append(f"generation {facts.generation} >= {policy.consensus_min_generation}")
    if policy.consensus_unknown_origin and facts.origin == Item.Origin.UNKNOWN:
        reasons.append("origin unknown")
    return reasons


def required_approvals(*, policy: ReviewPolicy, facts: ItemFacts) -> int:
    if consensus_reasons(policy=policy, facts=facts):
        return policy.consensus_approvals
    return 1


@dataclass(frozen=True, slots=True)
class Tally:
    state: str  # the item state the live decisions call for
    approvers: list[int]
    rejecters: list[int]
    required: int
    reason: str = ""  # the reject reason of the earliest live rejection

    @property
    def reviewer_ids(self) -> list[int]:
        """Who settled the item: the rejecters of a rejection, the approvers of an approval."""
        if self.state == Item.State.REJECTED:
            return self.rejecters
        if self.state == Item.State.APPROVED:
            return self.approvers
        return []


def tally(*, decisions: Sequence[Decision], required: int) -> Tally:
    approvers = sorted(
        {d.reviewer_id for d in decisions if d.undone_at is None and d.verdict == Verdict.APPROVE}
    )
    rejects = sorted(
        (d for d in decisions if d.undone_at is None and d.verdict == Verdict.REJECT),
        key=lambda d: (d.created_at, d.pk or 0),
    )
    rejecters = sorted({d.reviewer_id for d in rejects})
    if rejecters:
        state = Item.State.REJECTED
    elif len(approvers) >= required:
        state = Item.State.APPROVED
    else:
        state = Item.State.QUEUED
    return Tally(
        state=state,
        approvers=approvers,
        rejecters=rejecters,
        required=required,
        reason=rejects[0].reason if rejects else "",
    )
