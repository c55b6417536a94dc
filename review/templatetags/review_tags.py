"""Small formatting filters for the review pages (numbers only; text is never marked safe)."""

from typing import Any

from django import template

register = template.Library()

DASH = "—"


@register.filter
def percent(value: Any, digits: int = 0) -> str:
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def num(value: Any, digits: int = 2) -> str:
    if value is None or value == "":
        return DASH
    return f"{float(value):.{int(digits)}f}"


@register.filter
def seconds(value: Any) -> str:
    """A duration in seconds, as a reviewer would say it."""
    if value is None or value == "":
        return DASH
    value = float(value)
    if value < 60:
        return f"{value:.0f} s"
    return f"{value // 60:.0f} min {value % 60:02.0f} s"


@register.filter
def reason_label(key: str, reasons: list[dict[str, str]]) -> str:
    for reason in reasons or []:
        if reason["key"] == key:
            return reason["label"]
    return (key or "").replace("_", " ")
