"""Seed the demo: users and groups, the `demo` dataset, and its items through the ingest service.

Idempotent: every step looks for what exists first, so a second run creates nothing, appends no
audit event and enqueues no scoring. Items are keyed by (source, external_id), the same key the
ingest API is idempotent on; a batch whose items all exist is skipped before the service is
called, because the service records even an all-duplicate request in the audit log.
"""

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from corpus.demo.synthetic import BATCHES
from corpus.models import Dataset, Item
from corpus.roles import ADMIN_GROUP, REVIEWER_GROUP
from corpus.services.audit import SYSTEM, audit_append
from corpus.services.datasets import dataset_create
from corpus.services.ingest import items_ingest, items_parse

DEMO_SLUG = "demo"
ACTOR = f"{SYSTEM}:seed_demo"
REVIEWERS = ("reviewer1", "reviewer2")
ADMIN = "admin"
# Group names other parts of Synthgate rely on (review decides who may review by them).


@dataclass
class SeedReport:
    users_created: list[str] = field(default_factory=list)
    passwords_reset: list[str] = field(default_factory=list)
    dataset_created: bool = False
    reviewers_added: list[str] = field(default_factory=list)
    items_created: int = 0
    items_existing: int = 0
    batches: list[tuple[str, int]] = field(default_factory=list)  # (source, created)

    @property
    def changed(self) -> bool:
        return bool(
            self.users_created
            or self.passwords_reset
            or self.dataset_created
            or self.reviewers_added
            or self.items_created
        )


def _users(*, password: str, report: SeedReport) -> dict[str, Any]:
    """The demo accounts, with the configured password (reset if it was changed, so the logins
    `make run` prints are true), and the groups named after the roles."""
    User = get_user_model()
    reviewer_group, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
    admin_group, _ = Group.objects.get_or_create(name=ADMIN_GROUP)
    users = {}
    for username in (*REVIEWERS, ADMIN):
        is_admin = username == ADMIN
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=f"{username}@demo.invalid")
            user.set_password(password)
            report.users_created.append(username)
        elif not user.check_password(password):
            user.set_password(password)
            report.passwords_reset.append(username)
        if is_admin:
            user.is_staff = user.is_superuser = True
        user.is_active = True
        user.save()
        user.groups.add(admin_group if is_admin else reviewer_group)
        users[username] = user
    if report.users_created or report.passwords_reset:
        audit_append(
            actor=ACTOR,
            action="demo.users_seeded",
            object_type="user",
            object_id=",".join(report.users_created + report.passwords_reset),
            payload={
                "created": report.users_created,
                "password_reset": report.passwords_reset,
                "groups": {REVIEWER_GROUP: list(REVIEWERS), ADMIN_GROUP: [ADMIN]},
            },
        )
    return users


def _dataset(*, users: dict[str, Any], report: SeedReport) -> Dataset:
    dataset = Dataset.objects.filter(slug=DEMO_SLUG).first()
    if dataset is None:
        report.dataset_created = True
        return dataset_create(
            actor=ACTOR,
            slug=DEMO_SLUG,
            name="Demo",
            description="Texts written for the Synthgate demo: human reference paragraphs, "
            "three generators' outputs, near-duplicates, looping outputs and rewrites.",
            reviewers=REVIEWERS,
        )
    present = set(dataset.reviewers.values_list("username", flat=True))
    missing = [name for name in REVIEWERS if name not in present]
    if missing:
        dataset.reviewers.add(*(users[name] for name in missing))
        report.reviewers_added = missing
        audit_append(
            actor=ACTOR,
            action="dataset.reviewers_added",
            object_type="dataset",
            object_id=dataset.slug,
            dataset=dataset,
            payload={"reviewers": sorted(users[name].pk for name in missing)},
        )
    return dataset


def _resolve_parents(dataset: Dataset, item: dict[str, Any]) -> dict[str, Any]:
    """'@source/external_id' -> that item's id; bare external ids are left to the service."""
    parents = []
    for parent in item.get("parents", []):
        if isinstance(parent, str) and parent.startswith("@"):
            source, _, external_id = parent[1:].partition("/")
            parents.append(
                Item.objects.values_list("pk", flat=True).get(
                    dataset=dataset, source__name=source, external_id=external_id
                )
            )
        else:
            parents.append(parent)
    return {**item, "parents": parents} if parents else item


@transaction.atomic
def demo_seed(*, password: str) -> SeedReport:
    """Create whatever part of the demo is missing, all or nothing. Scoring of new items is
    enqueued when the transaction commits (by the ingest service)."""
    report = SeedReport()
    users = _users(password=password, report=report)
    dataset = _dataset(users=users, report=report)
    for source, reference, raw_items in BATCHES:
        existing = set(
            Item.objects.filter(
                dataset=dataset,
                source__name=source,
                external_id__in=[item["external_id"] for item in raw_items],
            ).values_list("external_id", flat=True)
        )
        todo = [item for item in raw_items if item["external_id"] not in existing]
        report.items_existing += len(existing)
        if not todo:
            continue
        outcome = items_ingest(
            dataset=dataset,
            items=items_parse([_resolve_parents(dataset, item) for item in todo]),
            actor=ACTOR,
            default_source=source,
            reference=reference,
        )
        report.items_created += outcome.created
        report.batches.append((source, outcome.created))
    return report
