"""Who may see which dataset's dashboard: the one place the role checks live, so that they can
be switched to the shared roles module in one edit.

Today they are review's: admins (superusers or the ``admin`` group) see every dataset and every
figure; reviewers listed on a dataset see its queue and their own figures; anyone else gets a
404 (a dataset's existence is not disclosed) and admin-only pages a 403.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from corpus.models import Dataset


def dashboard_access(*, user: Any, slug: str, admin_only: bool = False) -> tuple[Dataset, bool]:
    """(the dataset, whether the user is an admin of it); raises Http404 / PermissionDenied."""
    from review.selectors import dataset_for_review, is_admin

    dataset = dataset_for_review(user=user, slug=slug)
    admin = is_admin(user)
    if admin_only and not admin:
        raise PermissionDenied("Only admins change alert thresholds.")
    return dataset, admin


def visible_datasets(*, user: Any) -> QuerySet[Dataset]:
    from review.selectors import review_datasets

    return review_datasets(user=user)
