"""Editing a dataset's scoring rules, and what an edit would change before it is saved.

The scorer reads the rules fresh for every batch (``scoring_rules_get``;
no cache), so a saved edit decides the very next batch. Items already queued keep their state
until they are rescored (``manage.py rescore``); ``scoring_rules_preview`` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils import timezone

from corpus.models import Dataset, DetectorModel, Item, NearDuplicate, ScoringRules
from corpus.services.audit import audit_append, audit_lock

# The fields an admin edits, in the order forms and the API show them.
RULE_FIELDS = (
    "reject_exact_duplicates",
    "reject_near_duplicates",
    "near_duplicate_threshold",
    "report_threshold",
    "reject_degenerate",
)
THRESHOLDS = ("near_duplicate_threshold", "report_threshold")


class ScoringRulesError(ValueError):
    """Invalid rules: ``errors`` are ``{"field", "message"}`` dicts (the API's error shape)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e.get('field', '')}: {e['message']}" for e in errors))
        self.errors = errors


def scoring_rules_get(*, dataset: Dataset) -> ScoringRules:
    """The dataset's scoring rules, or the defaults (unsaved) when it has none. Here rather than
    beside the scorer: the web process reads them, and importing ``corpus.services.scoring``
    loads the scoring stack (numpy, SciPy, scikit-learn: about 140 MB per web worker)."""
    rules = ScoringRules.objects.filter(dataset=dataset).first()
    return rules if rules is not None else ScoringRules(dataset=dataset)


def scoring_rules_values(rules: ScoringRules) -> dict[str, Any]:
    return {name: getattr(rules, name) for name in RULE_FIELDS}


def scoring_rules_defaults() -> dict[str, Any]:
    return scoring_rules_values(ScoringRules())


def scoring_rules_validate(values: dict[str, Any]) -> dict[str, Any]:
    """The complete rule set, checked: omitted fields take their defaults; unknown fields, wrong
    types and thresholds outside 0..1 are refused, each error naming its field."""
    errors: list[dict[str, Any]] = []
    for name in sorted(set(values) - set(RULE_FIELDS)):
        errors.append({"field": name, "message": "unknown field"})
    clean = scoring_rules_defaults()
    for name in RULE_FIELDS:
        if name not in values:
            continue
        value = values[name]
        if name in THRESHOLDS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                errors.append({"field": name, "message": "a number from 0 to 1"})
                continue
            if not 0.0 <= float(value) <= 1.0:
                errors.append({"field": name, "message": "must be from 0 to 1"})
                continue
            clean[name] = float(value)
        else:
            if not isinstance(value, bool):
                errors.append({"field": name, "message": "true or false"})
                continue
            clean[name] = value
    if not errors and clean["report_threshold"] > clean["near_duplicate_threshold"]:
        # Matches below the report threshold are never looked up, so a near-duplicate
        # threshold under it could never fire.
        errors.append(
            {
                "field": "report_threshold",
                "message": "must not be above the near-duplicate threshold "
                f"({clean['near_duplicate_threshold']:.2f}): the scorer only finds matches at "
                "or above the report threshold",
            }
        )
    if errors:
        raise ScoringRulesError(errors)
    return clean


@transaction.atomic
def scoring_rules_set(*, dataset: Dataset, values: dict[str, Any], actor: str) -> ScoringRules:
    """Validate and store the dataset's rules, audited with what changed (nothing changed: no
    event). Takes the audit chain lock first, then the rules row, as every writer does."""
    clean = scoring_rules_validate(values)
    audit_lock()
    rules = ScoringRules.objects.select_for_update().filter(dataset=dataset).first()
    if rules is None:
        rules = ScoringRules(dataset=dataset)
        before = None
    else:
        before = scoring_rules_values(rules)
    changed = {
        name: [None if before is None else before[name], clean[name]]
        for name in RULE_FIELDS
        if before is None or before[name] != clean[name]
    }
    if before is not None and not changed:
        return rules
    for name, value in clean.items():
        setattr(rules, name, value)
    rules.updated_at = timezone.now()
    rules.save()
    audit_append(
        actor=actor,
        action="scoring_rules.updated",
        object_type="scoring_rules",
        object_id=dataset.slug,
        dataset=dataset,
        payload={"rules": clean, "changed": changed},
    )
    return rules


@dataclass(frozen=True)
class RulesPreview:
    """Queued items the candidate rules would auto-reject on a rescore, per rule and in all
    (an item two rules catch counts once in ``total``), beside the same counts today."""

    queued: int
    total: int
    by_rule: dict[str, int]
    total_now: int


def _rule_filters(values: dict[str, Any]) -> dict[str, Q]:
    rules: dict[str, Q] = {}
    if values["reject_exact_duplicates"]:
        rules["exact duplicate"] = Q(score__exact_duplicate_of__isnull=False)
    if values["reject_near_duplicates"]:
        # As the scorer's rule (``near_duplicate_rule``): a match at or above the threshold
        # with a reference item, an approved item, or an earlier-ingested item in any state.
        qualifying = NearDuplicate.objects.filter(
            item_id=OuterRef("pk"), jaccard__gte=values["near_duplicate_threshold"]
        ).filter(
            Q(other__is_reference=True)
            | Q(other__state=Item.State.APPROVED)
            | Q(other_id__lt=OuterRef("pk"))
        )
        rules["near duplicate"] = Q(Exists(qualifying)) & Q(is_reference=False)
    if values["reject_degenerate"]:
        rules["degenerate"] = Q(score__degenerate=True)
    return rules


def _counts(queued: Any, rules: dict[str, Q]) -> tuple[dict[str, int], int]:
    if not rules:
        return {}, 0
    aggregates: dict[str, Any] = {
        f"r{i}": Count("id", filter=q) for i, q in enumerate(rules.values())
    }
    any_rule = Q()
    for q in rules.values():
        any_rule |= q
    aggregates["total"] = Count("id", filter=any_rule)
    row = queued.aggregate(**aggregates)
    return {name: row[f"r{i}"] for i, name in enumerate(rules)}, row["total"]


def scoring_rules_preview(*, dataset: Dataset, values: dict[str, Any]) -> RulesPreview:
    """What saving ``values`` would move, read from the queued items' stored evidence (one
    aggregate query each for the candidate and the current rules). Near-duplicate matches
    below the report threshold in force when an item was scored were never recorded, so a
    lowered threshold can only be counted down to that report threshold."""
    clean = scoring_rules_validate(values)
    current = scoring_rules_values(
        ScoringRules.objects.filter(dataset=dataset).first() or ScoringRules()
    )
    queued = Item.objects.filter(dataset=dataset, state=Item.State.QUEUED)
    by_rule, total = _counts(queued, _rule_filters(clean))
    _, total_now = _counts(queued, _rule_filters(current))
    return RulesPreview(queued=queued.count(), total=total, by_rule=by_rule, total_now=total_now)


def detector_in_use(*, dataset: Dataset) -> dict[str, Any]:
    """The detector that scores the dataset's items, as the settings page and the API show it."""
    row = (
        DetectorModel.objects.filter(dataset=dataset, name="learned", is_active=True)
        .values("version", "auroc", "n_train", "created_at")
        .first()
    )
    learned: dict[str, Any]
    if row is None:
        learned = {"name": "learned", "model": "default (shipped with Synthgate)"}
    else:
        learned = {
            "name": "learned",
            "model": f"retrained on this dataset, version {row['version']}",
            "auroc": row["auroc"],
            "n_train": row["n_train"],
            "trained_at": row["created_at"],
        }
    return {
        "learned": learned,
        "lm": bool(settings.SYNTHGATE_LM_DETECTOR),
        "lm_capacity": _lm_capacity(dataset) if settings.SYNTHGATE_LM_DETECTOR else None,
    }


def _lm_capacity(dataset: Dataset) -> dict[str, Any]:
    """The lm queue's rate (measured by its workers, else the setting) against the dataset's
    ingest: its busiest day of the last week in the dashboard rollup, over 24 hours (a count of
    a day's items would read millions of rows on every page view)."""
    from corpus.services.lm_scoring import lm_capacity
    from dashboard.models import DashboardDay

    since = (timezone.localtime() - timedelta(days=7)).date()
    busiest = (
        DashboardDay.objects.filter(dataset=dataset, day__gt=since).aggregate(most=Max("ingested"))[
            "most"
        ]
        or 0
    )
    ingest = busiest / 86400
    capacity = lm_capacity(ingest_items_per_second=ingest)
    return {
        **capacity,
        "ingest_items_per_second": ingest,
        "share_percent": round(100 * capacity["share_of_ingest"]),
    }
