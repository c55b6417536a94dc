from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.models import Dataset
from dashboard.services.alerts import alerts_evaluate
from dashboard.services.rollup import dashboard_rollup


class Command(BaseCommand):
    help = (
        "Roll up the dashboard figures of one dataset (or all) and evaluate its alerts now, as "
        "the periodic task does (after seeding a demo, or to catch up a large dataset)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", help="slug; all datasets when omitted")
        parser.add_argument(
            "--full",
            action="store_true",
            help="recompute every block of item ids, not only those whose items changed (after "
            "changing the database by hand; the periodic task does it once a day)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        datasets = Dataset.objects.order_by("slug")
        if options["dataset"]:
            datasets = datasets.filter(slug=options["dataset"])
            if not datasets.exists():
                raise CommandError(f"no dataset '{options['dataset']}'")
        for dataset in datasets:
            state = dashboard_rollup(dataset=dataset, full=options["full"])
            changes = alerts_evaluate(dataset=dataset)
            fired = sum(1 for event, _ in changes if event == "alert.fired")
            cleared = len(changes) - fired
            self.stdout.write(
                f"{dataset.slug}: rolled up at {state.computed_at:%Y-%m-%d %H:%M:%S %Z}; "
                f"alerts fired {fired}, cleared {cleared}"
            )
