"""The data and its history. One module per area; import models from ``corpus.models``."""

from corpus.models.audit import (
    AppendOnlyQuerySet,
    AuditEvent,
    AuditEventItem,
    AuditHead,
    AuditVerification,
)
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
from corpus.models.items import (
    Item,
    ItemKind,
    ItemOrigin,
    ItemParent,
    ItemState,
    NearDuplicate,
    Score,
)
from corpus.models.scoring import DetectorModel, NearDupIndexState, ScoringRules
from corpus.models.tokens import ApiToken

__all__ = [
    "ApiToken",
    "AppendOnlyQuerySet",
    "AuditEvent",
    "AuditEventItem",
    "AuditHead",
    "AuditVerification",
    "Dataset",
    "DetectorModel",
    "Export",
    "ExportFormat",
    "ExportItem",
    "ExportMode",
    "ExportPolicy",
    "ExportStatus",
    "FeedEntry",
    "FeedKind",
    "Item",
    "ItemKind",
    "ItemOrigin",
    "ItemParent",
    "ItemState",
    "NearDupIndexState",
    "NearDuplicate",
    "Retraction",
    "Score",
    "ScoringRules",
    "Source",
]
