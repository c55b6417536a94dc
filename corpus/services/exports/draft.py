"""The effect of an export policy that is not saved yet: what the next export would hold under
it, beside what it would hold under the policy in force. Reads only."""

from __future__ import annotations

from typing import Any

from corpus.models import Dataset
from corpus.services.exports import selection
from corpus.services.exports.build import _scope, export_preview
from corpus.services.policy import PolicySpec


def export_preview_draft(*, dataset: Dataset, spec: PolicySpec) -> dict[str, Any]:
    """``export_preview``'s answer for ``spec`` (in its own mode, a delta following the newest
    ready export), with ``current``: the kept total under the saved policy in that mode."""
    scope = _scope(dataset=dataset, mode=spec.mode, since_id=None)
    plan = selection.plan_compute(
        dataset=dataset, spec=spec, since=selection.Since.of(scope.since), thresholds=False
    )
    blocked = plan.blocked() if spec.on_violation == "block" else []
    current = export_preview(dataset=dataset, mode=spec.mode)
    available = selection.by_dimension(plan.available)
    kept = selection.by_dimension(plan.kept)
    return {
        "mode": spec.mode,
        "since": scope.since.pk if scope.since else None,
        "available": {"total": plan.available_total, **available},
        "kept": {"total": 0 if blocked else plan.kept_total, **kept},
        "origin_rows": [
            (origin, n, 0 if blocked else kept["origin"].get(origin, 0))
            for origin, n in sorted(available["origin"].items())
        ],
        "left_out": plan.left_out(),
        "blocked": blocked,
        "would_fail": bool(blocked),
        "current_kept": current["kept"]["total"],
        "current_version": current["policy_version"],
    }
