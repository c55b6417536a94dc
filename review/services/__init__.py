"""Writes of the review app, one module per area: ``queue`` (claims, skips, lease expiry),
``decisions`` (decide, undo, bulk), ``consensus`` (how many approvals settle an item),
``quotas``, ``policy`` (consensus rules, gold rate, reject reasons) and ``gold``."""


class ReviewError(ValueError):
    """A review action that cannot happen; the message is meant for the reviewer.

    ``code`` tells views which status to answer with: ``invalid`` (bad input, 400), ``conflict``
    (the world moved on: the lease expired, someone else decided, 409), ``quota`` (409).
    ``field`` names the form field at fault, when there is one.
    """

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
