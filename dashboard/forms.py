from typing import Any

from django import forms


def _share(label: str, help_text: str) -> forms.FloatField:
    return forms.FloatField(
        label=label,
        help_text=help_text,
        min_value=0,
        max_value=1,
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.01", "placeholder": "off"}),
    )


class AlertRulesForm(forms.Form):
    """A dataset's alert thresholds. Shares are fractions 0 to 1; empty turns a rule off."""

    max_synthetic_share = _share(
        "Synthetic share of approved above", "0 to 1, e.g. 0.5; empty for no alert"
    )
    min_tail_coverage = _share("Tail coverage below", "0 to 1, e.g. 0.6; empty for no alert")
    max_near_duplicate_rate = _share(
        "A generator's near-duplicate rate above", "0 to 1, e.g. 0.2; empty for no alert"
    )
    max_backlog_minutes = forms.IntegerField(
        label="Scoring backlog older than (minutes)",
        help_text="empty for no alert",
        min_value=1,
        max_value=7 * 24 * 60,
        required=False,
        widget=forms.NumberInput(attrs={"placeholder": "off"}),
    )
    webhook_url = forms.URLField(
        label="Webhook URL",
        help_text="POSTed a signed JSON body when an alert fires or clears; empty for none",
        required=False,
        max_length=500,
        assume_scheme="https",
    )

    def clean_webhook_url(self) -> str:
        url: str = self.cleaned_data.get("webhook_url") or ""
        if url and not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("Use an http:// or https:// URL.")
        return url

    def values(self) -> dict[str, Any]:
        return dict(self.cleaned_data)
