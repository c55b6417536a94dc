from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The dataset dashboard and its alerts. An app of its own because it reads both corpus
    (items, scores, exports, the feed) and review (decisions, gold checks, reviewer days), and
    corpus may not import review (DESIGN.md, section 2)."""

    name = "dashboard"
    verbose_name = "Dashboard"
