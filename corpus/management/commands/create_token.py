from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.models import Dataset
from corpus.services.audit import SYSTEM
from corpus.services.tokens import TokenError, token_create


class Command(BaseCommand):
    help = "Create an API token and print its key (shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes", required=True, help="comma-separated: produce,consume,admin"
        )
        parser.add_argument("--dataset", default=None, help="restrict the token to this dataset")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = None
        if options["dataset"]:
            dataset = Dataset.objects.filter(slug=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"no dataset '{options['dataset']}'")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            _, key = token_create(
                actor=SYSTEM, name=options["name"], scopes=scopes, dataset=dataset
            )
        except TokenError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(key)
