"""Template filters shared by every page."""

from datetime import UTC, datetime
from typing import Any

from django import template
from django.urls import Resolver404, resolve
from django.utils.html import format_html

register = template.Library()


@register.filter
def when(value: Any) -> str:
    """A moment as ``<time datetime="...">`` in UTC; static/js/synthgate.js rewrites the text
    in the reader's time zone and keeps the UTC time on hover. Without JavaScript it reads UTC."""
    if not isinstance(value, datetime):
        return "—" if value in (None, "") else str(value)
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M UTC")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        utc.isoformat(timespec="seconds").replace("+00:00", "Z"),
        text,
        text,
    )


@register.simple_tag
def dashboard_url(slug: str) -> str:
    """``/datasets/<slug>/``, the dataset's dashboard, when a view serves it; else ""."""
    path = f"/datasets/{slug}/"
    try:
        resolve(path)
    except Resolver404:
        return ""
    return path
