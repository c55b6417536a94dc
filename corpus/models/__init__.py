"""The data and its history. One module per area; import models from ``corpus.models``."""

from corpus.models.audit import AppendOnlyQuerySet, AuditEvent, AuditHead
from corpus.models.datasets import Dataset, Source
from corpus.models.items import Item, ItemOrigin, ItemParent, ItemState, Score
from corpus.models.tokens import ApiToken

__all__ = [
    "ApiToken",
    "AppendOnlyQuerySet",
    "AuditEvent",
    "AuditHead",
    "Dataset",
    "Item",
    "ItemOrigin",
    "ItemParent",
    "ItemState",
    "Score",
    "Source",
]
