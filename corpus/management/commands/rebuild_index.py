from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.models import Dataset
from corpus.services.scoring import index_rebuild


class Command(BaseCommand):
    help = "Rebuild the near-duplicate index in Redis from the signatures stored in the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", help="only this dataset (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = None
        if options["dataset"]:
            dataset = Dataset.objects.filter(slug=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"no dataset '{options['dataset']}'")
        count = index_rebuild(dataset=dataset)
        self.stdout.write(f"indexed {count} items")
