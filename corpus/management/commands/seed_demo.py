from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from corpus.demo import DEMO_SLUG, demo_seed


class Command(BaseCommand):
    help = (
        "Create the demo: dataset 'demo' with its texts, users reviewer1 and reviewer2 (its "
        "reviewers) and admin, password SYNTHGATE_DEMO_PASSWORD. Running it again adds only "
        "what is missing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = demo_seed(password=settings.SYNTHGATE_DEMO_PASSWORD)
        if not report.changed:
            self.stdout.write(
                f"demo already seeded: dataset '{DEMO_SLUG}' with {report.items_existing} demo "
                "items; nothing to do"
            )
            return
        if report.users_created:
            self.stdout.write(f"created users: {', '.join(report.users_created)}")
        if report.passwords_reset:
            self.stdout.write(
                "reset to SYNTHGATE_DEMO_PASSWORD the password of: "
                + ", ".join(report.passwords_reset)
            )
        if report.dataset_created:
            self.stdout.write(f"created dataset '{DEMO_SLUG}'")
        if report.reviewers_added:
            self.stdout.write(f"added reviewers: {', '.join(report.reviewers_added)}")
        for source, created in report.batches:
            self.stdout.write(f"ingested {created} items from {source}")
        self.stdout.write(
            self.style.SUCCESS(
                f"demo seeded: {report.items_created} new items, {report.items_existing} "
                "already there; scoring is queued for the worker"
            )
        )
