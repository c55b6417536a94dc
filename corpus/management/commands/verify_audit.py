from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.models import AuditHead
from corpus.services.anchor import anchor_path
from corpus.services.audit_verify import audit_check, audit_verify_incremental


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chain in constant memory and compare it with the chain head "
        "and the anchor file; exit non-zero naming the first event altered, removed, inserted "
        "or reordered."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from", dest="from_seq", type=int, default=1, help="first event to recompute"
        )
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument(
            "--no-anchors", action="store_true", help="skip the anchor file comparison"
        )
        parser.add_argument(
            "--record",
            action="store_true",
            help="do what the periodic task does: verify from its checkpoint, record the verdict "
            "(/healthz, admin banner) and anchor the head when due",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from_seq = options["from_seq"]
        if from_seq < 1:
            raise CommandError("--from must be 1 or more")
        if not 1 <= options["batch_size"] <= 100_000:
            raise CommandError("--batch-size must be from 1 to 100000")
        if options["record"]:
            if from_seq != 1 or options["no_anchors"]:
                raise CommandError("--record verifies from its own checkpoint, with anchors")
            state = audit_verify_incremental()
            if not state.ok:
                raise CommandError(f"audit chain broken: {state.problem}")
            self.stdout.write(f"audit chain intact up to #{state.verified_seq} (recorded)")
            return
        head = AuditHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
        if from_seq > head + 1:
            raise CommandError(f"--from {from_seq} is past the chain head #{head}")
        report = audit_check(
            from_seq=from_seq,
            batch_size=options["batch_size"],
            anchors=not options["no_anchors"],
        )
        if report.problem:
            raise CommandError(
                f"audit chain broken: {report.problem} ({report.checked} events verified before it)"
            )
        if options["no_anchors"]:
            anchors = "anchors not checked"
        else:
            # Events past the last anchor are the ones a database writer could still cut or
            # rewrite unnoticed; the anchor task keeps that tail to seconds.
            tail = report.head_seq - report.anchored_seq
            anchors = (
                f"{report.anchors_checked} anchors match ({anchor_path()}); "
                f"{tail} event{'' if tail == 1 else 's'} past the last anchor"
                + (f" (#{report.anchored_seq})" if report.anchored_seq else " (none yet)")
            )
        self.stdout.write(
            f"audit chain intact: {report.checked} events verified "
            f"(#{from_seq}–#{report.last_seq}), head #{report.head_seq}, {anchors}"
        )
