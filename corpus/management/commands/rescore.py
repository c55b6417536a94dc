from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.models import Dataset
from corpus.services.scoring import items_rescore_select, items_score, items_score_enqueue


class Command(BaseCommand):
    help = (
        "Recompute evidence for a dataset's items whose score is missing, failed or from another "
        "scorer version (or all with --all). Enqueues batches unless --sync."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--all", action="store_true", help="rescore every item")
        parser.add_argument("--sync", action="store_true", help="score here instead of enqueuing")
        parser.add_argument("--batch", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = Dataset.objects.filter(slug=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset '{options['dataset']}'")
        if options["batch"] < 1:
            raise CommandError("--batch must be at least 1")
        ids = items_rescore_select(dataset=dataset, all_items=options["all"])
        if not options["sync"]:
            items_score_enqueue(item_ids=ids)
            self.stdout.write(f"enqueued {len(ids)} items for rescoring")
            return
        totals: dict[str, int] = {}
        for start in range(0, len(ids), options["batch"]):
            outcome = items_score(item_ids=ids[start : start + options["batch"]])
            for key, done in outcome.items():
                totals[key] = totals.get(key, 0) + len(done)
        summary = ", ".join(f"{v} {k}" for k, v in sorted(totals.items())) or "nothing to do"
        self.stdout.write(f"rescored {len(ids)} items: {summary}")
