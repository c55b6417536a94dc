"""The demo's review history, so that a new user's first look at the dashboard shows figures.

`seed_demo` runs this after the corpus part of the demo (``corpus.demo.demo_seed``): it scores
in-process every demo item not yet scored, the reference paragraphs included (the worker would,
moments later; the tasks it then runs find them scored and skip them), so that the near-copies
are rejected by their rule before anyone decides; then it has reviewer1 and reviewer2 decide the
queue but for ``LEFT_QUEUED`` items (left for the new user) through the review services, builds one
accumulate export through the export service, and rolls the dashboard up once, as
``manage.py rollup_dashboard`` does. Lives here, not in ``corpus``, because corpus never
imports review.

Idempotent: decisions are made only while the demo has none, the export only while it has none,
so a second run decides nothing and builds nothing (the rollup is recomputed, which changes no
count).
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from corpus.models import Dataset, Export, Item
from corpus.services.exports.build import export_build, export_request
from corpus.services.scoring import items_rescore_select, items_score
from dashboard.services.alerts import alerts_evaluate
from dashboard.services.rollup import dashboard_rollup
from review.models import Decision, Verdict
from review.services.decisions import decision_record, decisions_bulk
from review.services.policy import review_policy_update
from review.services.queue import item_claim

ACTOR = "system:seed_demo"
REVIEWERS = ("reviewer1", "reviewer2")
ADMIN = "admin"
# Rejected with these reasons, chosen by item id so that a rerun on a fresh database decides the
# same way.
SYNTHETIC_REASONS = ("machine_written", "low_quality", "duplicate")
# Left in the queue for the new user to review (triage and list mode are not empty).
LEFT_QUEUED = 8


@dataclass
class HistoryReport:
    scored: int = 0
    approved: int = 0
    rejected: int = 0
    export_id: int | None = None

    @property
    def changed(self) -> bool:
        return bool(self.scored or self.approved or self.rejected or self.export_id)


def _verdict(item: Item, *, second_vote: bool) -> tuple[str, str]:
    """Human and unknown-origin texts are approved; two synthetic texts in three are approved
    and the third rejected with a reason. A second reviewer (an item needing two approvals)
    disagrees on one synthetic text in three, so the agreement figure has something to
    measure."""
    if item.origin != Item.Origin.SYNTHETIC:
        return Verdict.APPROVE, ""
    reject = item.pk % 3 == 0 or (second_vote and item.pk % 3 == 1)
    if reject:
        return Verdict.REJECT, SYNTHETIC_REASONS[item.pk % len(SYNTHETIC_REASONS)]
    return Verdict.APPROVE, ""


def _policy(dataset: Dataset) -> None:
    """Two approvals from distinct reviewers for rewrites of rewrites, likely machine-written
    texts and texts of unknown origin, set as an admin would on the settings page, so that the
    agreement chart has items with several votes."""
    review_policy_update(
        actor=get_user_model().objects.get(username=ADMIN),
        dataset=dataset,
        consensus_approvals=2,
        consensus_min_detector=0.5,
        consensus_min_generation=2,
        consensus_unknown_origin=True,
        gold_rate=0.0,
    )


def _decide_all(dataset: Dataset, report: HistoryReport) -> None:
    """The reviewers take turns, one item each, until only ``LEFT_QUEUED`` items are left in the
    queue or it is empty for both (an item needing two approvals comes back to the other
    reviewer)."""
    User = get_user_model()
    reviewers = [User.objects.get(username=name) for name in REVIEWERS]
    # The texts people sent in sit at the end of the queue (nothing flags them); reviewer2
    # approves them from list mode, as a reviewer who recognised the source would.
    human = list(
        Item.objects.filter(
            dataset=dataset, state=Item.State.QUEUED, origin=Item.Origin.HUMAN
        ).values_list("pk", flat=True)
    )
    if human:
        bulk = decisions_bulk(
            dataset=dataset, reviewer=reviewers[1], item_ids=human, verdict=Verdict.APPROVE
        )
        report.approved += len(bulk.settled) + len(bulk.recorded)
    active = set(range(len(reviewers)))
    while active:
        for index in sorted(active):
            if Item.objects.filter(dataset=dataset, state=Item.State.QUEUED).count() <= LEFT_QUEUED:
                return
            reviewer = reviewers[index]
            outcome = item_claim(dataset=dataset, reviewer=reviewer)
            if outcome.claim is None:  # empty for them, or their daily quota reached
                active.discard(index)
                continue
            item = Item.objects.get(pk=outcome.claim.item_id)
            second = Decision.objects.filter(item=item, undone_at__isnull=True).exists()
            verdict, reason = _verdict(item, second_vote=second)
            decision_record(
                dataset=dataset,
                reviewer=reviewer,
                item_id=item.pk,
                verdict=verdict,
                reason=reason,
                note="demo history" if reason else "",
            )
            if verdict == Verdict.APPROVE:
                report.approved += 1
            else:
                report.rejected += 1


def demo_history_seed(*, dataset: Dataset) -> HistoryReport:
    """Score, decide and export what the demo lacks, then roll its dashboard up (see the
    module docstring). Not atomic: each service commits its own unit of work, as in use."""
    report = HistoryReport()
    # Every item without current evidence, the reference paragraphs included: `make run` seeds
    # before it starts the worker, so none of the ingest's scoring tasks has run, and a
    # near-copy is rejected by its rule only once its paragraph is indexed.
    unscored = items_rescore_select(dataset=dataset)
    if unscored:
        items_score(item_ids=unscored)
        report.scored = len(unscored)
    if not Decision.objects.filter(dataset=dataset).exists():
        _policy(dataset)
        _decide_all(dataset, report)
    if not Export.objects.filter(dataset=dataset).exists():
        export = export_request(dataset=dataset, actor=ACTOR, mode=Export.Mode.ACCUMULATE)
        export_build(export_id=export.pk)
        report.export_id = export.pk
    dashboard_rollup(dataset=dataset)
    alerts_evaluate(dataset=dataset)
    return report
