"""Which items a person holds right now (a reviewer's live claim), asked without importing review.

``review`` imports ``corpus``, never the reverse; yet scoring must not pull an item away from a
reviewer mid-decision when a rule comes to apply to it. The review app registers how to ask
(``review.apps``); without it (a process that never loaded review) nothing counts as held.
"""

from collections.abc import Callable, Collection

_held: Callable[[Collection[int]], set[int]] | None = None


def holds_register(check: Callable[[Collection[int]], set[int]]) -> None:
    """Install the function that says which of some item ids are held under a live claim."""
    global _held
    _held = check


def items_held(item_ids: Collection[int]) -> set[int]:
    """The ids among ``item_ids`` a reviewer holds under a live claim."""
    if not item_ids or _held is None:
        return set()
    return _held(item_ids)
