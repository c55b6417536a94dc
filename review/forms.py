"""Parsing of what the review pages post. Forms check shape and types; the services check the
rules (and are the guard when something bypasses a form)."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from rest_framework.exceptions import ValidationError as DRFValidationError

from corpus.api_support import cursor_decode
from corpus.models import Item
from review.models import Verdict
from review.selectors import BANDS, FILTER_FIELDS, SORTS, ListQuery
from review.services.decisions import MAX_BULK_ITEMS, MAX_NOTE_CHARS

CURSOR_KEYS = {
    "priority": ("priority", "id"),
    "detector": ("det", "id"),
    "oldest": ("id",),
    "newest": ("id",),
}
YES_NO = [("", "any"), ("yes", "yes"), ("no", "no")]


class DecisionForm(forms.Form):
    verdict = forms.ChoiceField(choices=Verdict.choices)
    reason = forms.CharField(required=False, max_length=64)
    note = forms.CharField(required=False, max_length=MAX_NOTE_CHARS, strip=True)


class IntListField(forms.Field):
    """Several values of one name (checkboxes), each an id."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        try:
            return [int(v) for v in value]
        except (TypeError, ValueError):
            raise ValidationError("Item ids are whole numbers.") from None

    def validate(self, value: list[int]) -> None:
        super().validate(value)
        if len(set(value)) > MAX_BULK_ITEMS:
            raise ValidationError(f"Select at most {MAX_BULK_ITEMS} items at once.")


class BulkForm(forms.Form):
    items = IntListField(error_messages={"required": "Select at least one item."})
    verdict = forms.ChoiceField(choices=Verdict.choices)
    reason = forms.CharField(required=False, max_length=64)
    note = forms.CharField(required=False, max_length=MAX_NOTE_CHARS, strip=True)
    confirm = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("verdict") == Verdict.REJECT and not data.get("reason"):
            self.add_error("reason", "Choose a reason for the rejection.")
        return data


class BulkAllForm(forms.Form):
    """A decision on every item matching the list's filters (which come in the same request,
    read by ``ListFilterForm``). ``ceiling``: the largest matching id when the admin was asked,
    so that items ingested after the confirmation page was drawn are left alone."""

    verdict = forms.ChoiceField(choices=Verdict.choices)
    reason = forms.CharField(required=False, max_length=64)
    note = forms.CharField(required=False, max_length=MAX_NOTE_CHARS, strip=True)
    ceiling = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    confirm = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("confirm") and data.get("verdict") == Verdict.REJECT and not data.get("reason"):
            self.add_error("reason", "Choose a reason for the rejection.")
        return data


class ListFilterForm(forms.Form):
    state = forms.ChoiceField(
        choices=[("", "any")] + Item.State.choices, required=False, label="State"
    )
    # By name, as the API's ?source= takes it.
    source = forms.ChoiceField(required=False, label="Source")
    origin = forms.ChoiceField(
        choices=[("", "any")] + Item.Origin.choices, required=False, label="Declared origin"
    )
    generator = forms.CharField(required=False, max_length=200, label="Generator model")
    band = forms.ChoiceField(
        choices=[("", "any"), *BANDS.items()], required=False, label="Detector score"
    )
    near_duplicate = forms.ChoiceField(choices=YES_NO, required=False, label="Near-duplicate")
    degenerate = forms.ChoiceField(choices=YES_NO, required=False, label="Degenerate")
    sort = forms.ChoiceField(choices=list(SORTS.items()), required=False, label="Sort by")
    cursor = forms.CharField(required=False, max_length=500)

    def __init__(self, *args: Any, sources: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source_ids = {s.name: s.pk for s in sources}
        source = self.fields["source"]
        assert isinstance(source, forms.ChoiceField)
        source.choices = [("", "any")] + [(s.name, s.name) for s in sources]

    def clean_cursor(self) -> dict[str, Any] | None:
        raw = self.cleaned_data.get("cursor") or ""
        if not raw:
            return None
        try:
            position = cursor_decode(raw)
        except DRFValidationError:
            raise ValidationError("This page link is broken; start from the first page.") from None
        return position

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        cursor = data.get("cursor")
        sort = data.get("sort") or "priority"
        if cursor is not None:
            keys = CURSOR_KEYS[sort]
            numbers = all(
                isinstance(cursor.get(k), int | float) and not isinstance(cursor.get(k), bool)
                for k in keys
            )
            # A cursor belongs to the sort order it was made for.
            if cursor.get("sort") != sort or not numbers:
                self.add_error("cursor", "This page link is broken; start from the first page.")
        return data

    def controls(self) -> list[dict[str, Any]]:
        """The filter controls as plain data: the list page renders them on every visit, and
        Django's widget templates cost more than the rest of the page."""
        controls = []
        for name, field in self.fields.items():
            if name == "cursor":
                continue
            current = "" if self[name].value() is None else str(self[name].value())
            control: dict[str, Any] = {"name": name, "label": field.label or name, "value": current}
            if isinstance(field, forms.ChoiceField):
                choices: list[tuple[Any, Any]] = list(field.choices)  # type: ignore[arg-type]
                control["options"] = [
                    (str(value), label, str(value) == current) for value, label in choices
                ]
            controls.append(control)
        return controls

    @classmethod
    def of_filters(cls, filters: dict[str, Any], *, sources: list[Any]) -> "ListFilterForm":
        """The bound form of stored filters (``ListQuery.filters()``, source by id), to show
        them and to link back to the list they came from."""
        names = {s.pk: s.name for s in sources}
        data = {name: filters.get(name) for name in FILTER_FIELDS}
        data["source"] = names.get(filters.get("source"), "")
        return cls({k: "" if v is None else str(v) for k, v in data.items()}, sources=sources)

    def filter_params(self) -> list[tuple[str, str]]:
        """The filters as submitted (not the order nor the page): the hidden fields of a form
        that acts on every matching item, and the query of a link back to the list."""
        return [(name, str(self.data.get(name) or "")) for name in FILTER_FIELDS]

    def described(self) -> list[tuple[str, str]]:
        """(label, value) of each filter that narrows the list, the state always, as a person
        reads them (the options' labels)."""
        shown = []
        for control in self.controls():
            if control["name"] not in FILTER_FIELDS:
                continue
            if not control["value"] and control["name"] != "state":
                continue
            options = control.get("options") or []
            value = next((label for _, label, chosen in options if chosen), control["value"])
            shown.append((str(control["label"]), str(value)))
        return shown

    def query(self) -> ListQuery:
        data = self.cleaned_data
        sort = data.get("sort") or "priority"
        cursor = data.get("cursor")
        return ListQuery(
            state=data.get("state") or "",
            source=self.source_ids.get(data.get("source") or ""),
            origin=data.get("origin") or "",
            generator=data.get("generator") or "",
            band=data.get("band") or "",
            near_duplicate=data.get("near_duplicate") or "",
            degenerate=data.get("degenerate") or "",
            sort=sort,
            cursor=cursor,
        )


class PolicyForm(forms.Form):
    consensus_approvals = forms.IntegerField(min_value=2, max_value=9)
    consensus_min_detector = forms.FloatField(required=False, min_value=0, max_value=1)
    consensus_min_generation = forms.IntegerField(required=False, min_value=0)
    consensus_unknown_origin = forms.BooleanField(required=False)
    gold_rate = forms.FloatField(min_value=0, max_value=0.5)


class ReasonsForm(forms.Form):
    """One reason per line, ``key: Label``; line order is the digit order."""

    reasons = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), max_length=5000)

    def clean_reasons(self) -> list[dict[str, str]]:
        reasons = []
        for number, line in enumerate(self.cleaned_data["reasons"].splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, label = line.partition(":")
            if not sep:
                raise ValidationError(f"Line {number}: write it as 'key: Label'.")
            reasons.append({"key": key.strip(), "label": label.strip()})
        return reasons

    @staticmethod
    def initial_text(reasons: list[dict[str, str]]) -> str:
        return "\n".join(f"{r['key']}: {r['label']}" for r in reasons)


class QuotaForm(forms.Form):
    reviewer = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    daily_limit = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def __init__(self, *args: Any, reviewers: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reviewers = {u.pk: u for u in reviewers}
        reviewer = self.fields["reviewer"]
        assert isinstance(reviewer, forms.ChoiceField)
        reviewer.choices = [("", "everyone (default)")] + [
            (u.pk, u.get_username()) for u in reviewers
        ]


class GoldForm(forms.Form):
    action = forms.ChoiceField(choices=[("mark", "mark"), ("unmark", "unmark")])
    expected = forms.ChoiceField(choices=Verdict.choices, required=False)
    note = forms.CharField(required=False, max_length=500)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") == "mark" and not data.get("expected"):
            self.add_error("expected", "Choose the verdict a careful reviewer should give.")
        return data


class StatsForm(forms.Form):
    days = forms.TypedChoiceField(
        coerce=int,
        choices=[(1, "today"), (7, "7 days"), (30, "30 days"), (365, "a year")],
        required=False,
        empty_value=None,
    )

    def period(self) -> int:
        """The chosen period in days; a month when none is chosen."""
        return self.cleaned_data.get("days") or 30
