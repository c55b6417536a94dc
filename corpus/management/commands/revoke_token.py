import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from corpus.models import ApiToken
from corpus.services.tokens import token_revoke


class Command(BaseCommand):
    help = "Revoke an API token, named by its name or by the start of its key (its prefix)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token", metavar="NAME_OR_PREFIX")

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = options["token"].strip()
        if not wanted:
            raise CommandError("name a token: its name or the start of its key")
        query = Q(name=wanted)
        # A prefix shorter than "sg_" plus a few characters would match nearly every token.
        if len(wanted) >= 6:
            query |= Q(
                key_prefix__startswith=wanted[: ApiToken._meta.get_field("key_prefix").max_length]
            )
        matches = list(ApiToken.objects.filter(query).order_by("pk"))
        active = [t for t in matches if t.is_active]
        if not matches:
            raise CommandError(f"no token named '{wanted}' or with a key starting '{wanted}'")
        if not active:
            self.stdout.write(f"token '{matches[0].name}' was already revoked; nothing changed")
            return
        if len(active) > 1:
            listed = ", ".join(f"{t.name} ({t.key_prefix}…)" for t in active)
            raise CommandError(f"'{wanted}' matches {len(active)} active tokens: {listed}")
        token = token_revoke(actor=f"cli:{getpass.getuser()}", token=active[0])
        self.stdout.write(f"revoked token '{token.name}' ({token.key_prefix}…)")
