"""Who may do what: the one definition of each role, used by every page, API view, template and
the navigation (templates read it through the ``roles`` context processor).

- **site admin**: an active superuser, or a member of the ``admin`` group. Reads the audit log,
  manages exports and every dataset's review settings, sees every item.
- **dataset admin**: whoever may change a dataset's settings and exports. There is no per-dataset
  admin list today, so it is the site admin; callers ask ``may_administer`` so that adding one
  changes this module only.
- **reviewer of a dataset**: has the ``reviewer`` role (group) *and* is listed in
  ``Dataset.reviewers``; reads that dataset's items. Being listed without the role grants
  nothing, so removing the role cuts access at once. Reviewers decide items one at a time or
  a page's selection at once; deciding everything a filter matches (a bulk job over up to a
  whole dataset, ``may_bulk_decide_all``) is the dataset admin's.
- **Django admin user**: ``is_staff`` (Django's own rule for ``/admin/``). Staff status alone is
  not the admin role: it opens the Django admin and nothing else.

API tokens are not people: their scopes (``corpus.auth``) decide what a pipeline may do.
"""

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

View = Callable[..., HttpResponseBase]

ADMIN_GROUP = "admin"
REVIEWER_GROUP = "reviewer"
ROLE_GROUPS = (ADMIN_GROUP, REVIEWER_GROUP)

# Where a request's user keeps its role groups once read, so a page asks the database once.
_CACHE_ATTR = "_role_groups"


def role_groups(user: Any) -> frozenset[str]:
    """The role groups (``admin``, ``reviewer``) the user belongs to, read once per request."""
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        if not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) is None:
            cached = frozenset()
        else:
            cached = frozenset(
                user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True)
            )
        setattr(user, _CACHE_ATTR, cached)
    return cached


def role_groups_remember(user: Any, groups: Iterable[str]) -> None:
    """Record groups a caller already read with another query (saves this module's query)."""
    if getattr(user, _CACHE_ATTR, None) is None:
        setattr(user, _CACHE_ATTR, frozenset(groups) & frozenset(ROLE_GROUPS))


def _active(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "pk", None) is not None
    )


def is_site_admin(user: Any) -> bool:
    return _active(user) and (bool(user.is_superuser) or ADMIN_GROUP in role_groups(user))


def is_reviewer(user: Any) -> bool:
    """Has the reviewer role (site admins have it too); which datasets: ``Dataset.reviewers``."""
    return _active(user) and (REVIEWER_GROUP in role_groups(user) or is_site_admin(user))


def may_use_django_admin(user: Any) -> bool:
    """Django's own rule for ``/admin/`` (``AdminSite.has_permission``)."""
    return _active(user) and bool(user.is_staff)


def may_administer(user: Any, dataset: Any = None) -> bool:
    """A dataset admin (today: the site admin) for ``dataset``; any dataset when None."""
    return is_site_admin(user)


def may_bulk_decide_all(user: Any, dataset: Any = None) -> bool:
    """May approve or reject every item matching a filter at once (a filter-wide bulk job, up
    to a whole dataset): a dataset admin. Reviewers decide at most a page's selection at once."""
    return may_administer(user, dataset)


def reviewable_dataset_ids(user: Any) -> frozenset[int] | None:
    """The datasets whose items the user may read: None for all (site admin), else their ids."""
    if is_site_admin(user):
        return None
    if not is_reviewer(user):
        return frozenset()
    from corpus.models import Dataset

    return frozenset(Dataset.objects.filter(reviewers=user).values_list("pk", flat=True))


def may_review(user: Any, dataset: Any) -> bool:
    """May read and review the items of ``dataset`` (a Dataset or its id)."""
    dataset_id = getattr(dataset, "pk", dataset)
    allowed = reviewable_dataset_ids(user)
    return allowed is None or dataset_id in allowed


def dataset_access(user: Any) -> Callable[[int], bool]:
    """A memoized ``may this user read dataset N's items?`` for a page that shows several (an
    item and its lineage): one query at most."""
    allowed = reviewable_dataset_ids(user)
    if allowed is None:
        return lambda dataset_id: True
    return lambda dataset_id: dataset_id in allowed


class Roles:
    """What templates see as ``roles``: each answer computed on first use, then kept."""

    def __init__(self, user: Any) -> None:
        self._user = user

    @property
    def site_admin(self) -> bool:
        return is_site_admin(self._user)

    @property
    def reviewer(self) -> bool:
        return is_reviewer(self._user)

    @property
    def django_admin(self) -> bool:
        return may_use_django_admin(self._user)

    @property
    def exports(self) -> bool:
        return may_administer(self._user)

    @property
    def audit(self) -> bool:
        return is_site_admin(self._user)


def site_admin_required(message: str) -> Callable[[View], View]:
    """Site admins only: anonymous callers are sent to log in, others refused (403, ``message``)."""

    def decorate(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not is_site_admin(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
