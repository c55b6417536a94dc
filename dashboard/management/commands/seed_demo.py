from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from corpus.demo import DEMO_SLUG, demo_seed
from corpus.models import Dataset
from dashboard.services.demo import demo_history_seed


class Command(BaseCommand):
    """In the dashboard app, not in corpus: besides the corpus part it seeds a review history
    (review services) and rolls the dashboard up, and corpus never imports review."""

    help = (
        "Create the demo: dataset 'demo' with its texts, users reviewer1 and reviewer2 (its "
        "reviewers) and admin, password SYNTHGATE_DEMO_PASSWORD; score its texts, have the "
        "reviewers decide the queue, build one export and roll the dashboard up. Running it "
        "again adds only what is missing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = demo_seed(password=settings.SYNTHGATE_DEMO_PASSWORD)
        self._corpus(report)
        history = demo_history_seed(dataset=Dataset.objects.get(slug=DEMO_SLUG))
        if history.changed:
            self.stdout.write(
                f"review history: scored {history.scored} items; reviewers approved "
                f"{history.approved} and rejected {history.rejected}"
                + (f"; built export {history.export_id}" if history.export_id else "")
            )
        self.stdout.write(f"dashboard rolled up for '{DEMO_SLUG}'")

    def _corpus(self, report: Any) -> None:
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
                "already there"
            )
        )
