from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.models import Dataset
from corpus.services.scoring import index_rebuild, items_rescore_select, items_score


class Command(BaseCommand):
    help = (
        "Rebuild the near-duplicate index in Redis from the signatures stored in the database "
        "(dropping buckets of older layouts), then rescore items whose signatures come from "
        "another scorer version, which is how an index is migrated to new shingling."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", help="only this dataset (default: all)")
        parser.add_argument(
            "--no-rescore",
            action="store_true",
            help="only rebuild; leave items scored by another scorer version out of the index",
        )
        parser.add_argument("--batch", type=int, default=500, help="items per rescoring batch")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = None
        if options["dataset"]:
            dataset = Dataset.objects.filter(slug=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"no dataset '{options['dataset']}'")
        if options["batch"] < 1:
            raise CommandError("--batch must be at least 1")
        count = index_rebuild(dataset=dataset)
        self.stdout.write(f"indexed {count} items")
        if options["no_rescore"]:
            return
        rescored = 0
        for ds in [dataset] if dataset else Dataset.objects.order_by("pk"):
            ids = items_rescore_select(dataset=ds)
            for start in range(0, len(ids), options["batch"]):
                items_score(item_ids=ids[start : start + options["batch"]])
            rescored += len(ids)
        self.stdout.write(f"rescored {rescored} items with stale or missing evidence")
