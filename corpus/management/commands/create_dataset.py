from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_slug

from corpus.services.audit import SYSTEM
from corpus.services.datasets import DatasetError, dataset_create


class Command(BaseCommand):
    help = "Create a dataset, optionally with its reviewers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default=None, help="display name (default: the slug)")
        parser.add_argument("--description", default="")
        parser.add_argument("--reviewers", default="", help="comma-separated usernames")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(f"'{slug}' is not a valid slug (letters, digits, - and _)") from None
        reviewers = [u.strip() for u in options["reviewers"].split(",") if u.strip()]
        try:
            dataset = dataset_create(
                actor=SYSTEM,
                slug=slug,
                name=options["name"] or slug,
                description=options["description"],
                reviewers=reviewers,
            )
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"created dataset {dataset.slug}")
