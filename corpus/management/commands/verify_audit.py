from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.services.audit import audit_verify


class Command(BaseCommand):
    help = "Recompute the audit hash chain; exit non-zero naming the first broken event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="from_seq", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["from_seq"] < 1:
            raise CommandError("--from must be 1 or more")
        checked, problem = audit_verify(from_seq=options["from_seq"])
        if problem:
            raise CommandError(
                f"audit chain broken: {problem} ({checked} events verified before it)"
            )
        self.stdout.write(f"audit chain intact: {checked} events verified")
