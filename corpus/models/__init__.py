"""The data and its history. One module per area; import models from ``corpus.models``."""

from corpus.models.audit import AppendOnlyQuerySet, AuditEvent, AuditHead
from corpus.models.datasets import Dataset, Source
from corpus.models.exports import (
    Export,
    ExportFormat,
    ExportItem,
    ExportMode,
    ExportPolicy,
    ExportStatus,
    FeedEntry,
    FeedKind,
    Retraction,
)
from corpus.models.items import Item, ItemOrigin, ItemParent, ItemState, Score
from corpus.models.scoring import DetectorModel, ScoringRules
from corpus.models.tokens import ApiToken

__all__ = [
    "ApiToken",
    "AppendOnlyQuerySet",
    "AuditEvent",
    "AuditHead",
    "Dataset",
    "Export",
    "ExportFormat",
    "ExportItem",
    "ExportMode",
    "ExportPolicy",
    "ExportStatus",
    "FeedEntry",
    "FeedKind",
    "DetectorModel",
    "Item",
    "ItemOrigin",
    "ItemParent",
    "ItemState",
    "Retraction",
    "Score",
    "ScoringRules",
    "Source",
]
