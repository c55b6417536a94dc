"""Forms of the corpus settings an admin edits in the browser: scoring rules and the export
policy. They parse what a person types; the services validate the rules (the API shares them)."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from corpus.services.policy import PolicyError, PolicySpec, policy_parse

_CAP_LINE = re.compile(r"^(?P<name>.+?)\s*:\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<pct>%?)$")


class ScoringRulesForm(forms.Form):
    reject_exact_duplicates = forms.BooleanField(required=False, label="Exact duplicates")
    reject_near_duplicates = forms.BooleanField(required=False, label="Near-duplicates")
    near_duplicate_threshold = forms.FloatField(
        min_value=0.0, max_value=1.0, label="Near-duplicate threshold"
    )
    report_threshold = forms.FloatField(min_value=0.0, max_value=1.0, label="Report threshold")
    reject_degenerate = forms.BooleanField(required=False, label="Degenerate text")


def caps_text(caps: dict[str, dict[str, Any]]) -> str:
    """``{"web": {"share": 0.3}, "crawl": {"count": 500}}`` as the form's lines."""
    lines = []
    for name in sorted(caps):
        cap = caps[name]
        if cap.get("share") is not None:
            lines.append(f"{name}: {cap['share'] * 100:g}%")
        else:
            lines.append(f"{name}: {cap['count']}")
    return "\n".join(lines)


def _caps_parse(text: str) -> dict[str, dict[str, Any]]:
    caps: dict[str, dict[str, Any]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _CAP_LINE.match(line)
        if not match:
            raise forms.ValidationError(
                f"Line {number}: write 'name: 30%' for a share or 'name: 500' for a count."
            )
        name, value = match["name"].strip(), match["value"]
        if name in caps:
            raise forms.ValidationError(f"Line {number}: '{name}' is capped twice.")
        if match["pct"]:
            caps[name] = {"share": float(value) / 100.0}
        elif "." in value:
            raise forms.ValidationError(
                f"Line {number}: a count is a whole number; add % for a share."
            )
        else:
            caps[name] = {"count": int(value)}
    return caps


class ExportPolicyForm(forms.Form):
    """The export policy document as fields; shares are fractions (0.3 is 30 %)."""

    mode = forms.ChoiceField(choices=[("accumulate", "accumulate"), ("delta", "delta")])
    max_synthetic_share = forms.FloatField(
        label="Synthetic share at most", min_value=0.0, max_value=1.0, required=False
    )
    max_unknown_share = forms.FloatField(
        label="Unknown-origin share at most", min_value=0.0, max_value=1.0, required=False
    )
    min_human_share = forms.FloatField(
        label="Human share at least", min_value=0.0, max_value=1.0, required=False
    )
    source_caps = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Per-source caps"
    )
    generator_caps = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Per-generator caps"
    )
    max_generation = forms.IntegerField(
        required=False, min_value=0, label="Generation depth at most"
    )
    max_per_cluster = forms.IntegerField(
        required=False, min_value=1, label="Items per near-duplicate cluster at most"
    )
    on_violation = forms.ChoiceField(
        choices=[("sample", "sample down to the caps"), ("block", "block the export")],
        label="When a cap binds",
    )
    seed = forms.IntegerField(min_value=0, max_value=2**63 - 1, label="Sampling seed")

    @classmethod
    def initial_for(cls, spec: PolicySpec) -> dict[str, Any]:
        data = spec.as_json()
        data["source_caps"] = caps_text(data["source_caps"])
        data["generator_caps"] = caps_text(data["generator_caps"])
        return data

    def clean_source_caps(self) -> dict[str, dict[str, Any]]:
        return _caps_parse(self.cleaned_data.get("source_caps") or "")

    def clean_generator_caps(self) -> dict[str, dict[str, Any]]:
        return _caps_parse(self.cleaned_data.get("generator_caps") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.spec = policy_parse(dict(data))
        except PolicyError as exc:
            for error in exc.errors:
                field = str(error.get("field", "")).split(".")[0]
                self.add_error(field if field in self.fields else None, error["message"])
        return data

    def document(self) -> dict[str, Any]:
        """The validated policy as the JSON the API takes (valid forms only)."""
        return self.spec.as_json()
