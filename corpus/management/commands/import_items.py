"""Bulk import from a JSONL or Parquet file, with the API's validation, in constant memory.

Each row is an item exactly as the ingest API takes it (text, external_id, source, origin,
generator_model, generator_version, prompt, sampling_params, parents, generation, metadata).
Rows are read as a stream (JSONL line by line, Parquet batch by batch) and stored in batches of
up to SYNTHGATE_MAX_ITEMS_PER_REQUEST, each batch all or nothing through the ingest service, so
the audit log gets one event per batch and scoring is enqueued as for the API.

Invalid rows are reported with their line (JSONL) or row (Parquet) number and skipped; valid
rows are imported. The exit status is 0 unless --strict is given and a row was invalid: a
partial import of a large file is the useful outcome, and re-running after fixing the bad rows
is safe because ingest is idempotent on (source, external_id), else on the content hash.
"""

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DataError, IntegrityError
from tqdm import tqdm

from corpus.models import Dataset
from corpus.services.audit import SYSTEM
from corpus.services.ingest import IngestError, ItemIn, items_ingest, items_parse
from corpus.services.maintenance import tables_analyze_stale

ACTOR = f"{SYSTEM}:import_items"
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
JSON_OBJECT_FIELDS = ("metadata", "sampling_params")
SUMMARY_LINES_SHOWN = 20
# Rows created between two checks of the planner statistics (corpus/services/maintenance.py):
# a large import grows the item table many times over, faster than a periodic check may run,
# and the scoring queries its batches enqueue are planned on those statistics.
ANALYZE_EVERY_CREATED = 50_000


@dataclass
class Row:
    """One input row: its 1-based line (or row) number and the raw item, or why it is unusable."""

    number: int
    raw: Any = None
    problem: str = ""


@dataclass
class Tally:
    created: int = 0
    duplicate: int = 0
    invalid: int = 0
    invalid_numbers: list[int] = field(default_factory=list)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # orjson's message locates the error at "line 1"; the column is what helps here.
        orjson_error = f"{exc.msg} at column {exc.colno}"
    # orjson refuses a "\ud800" escape of a lone surrogate; the stdlib accepts it and the item
    # validation then names the field that holds it, as the API does.
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (invalid byte at column {exc.start + 1})") from None
    except ValueError:
        raise ValueError(f"not valid JSON: {orjson_error}") from None


def _jsonl_rows(path: Path, progress: tqdm) -> Iterator[Row]:
    with path.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            progress.update(len(line))
            if not line.strip():
                continue
            try:
                yield Row(number, _json_loads(line))
            except ValueError as exc:
                yield Row(number, problem=str(exc))


def _parquet_value(name: str, value: Any) -> Any:
    # Parquet has no JSON type: object fields arrive as JSON strings (what pandas writes) or as
    # structs (already dicts); a map column arrives as a list of key/value pairs.
    if name in JSON_OBJECT_FIELDS:
        if isinstance(value, str | bytes):
            return json.loads(value, parse_constant=_refuse_constant)
        if isinstance(value, list) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
            return dict(value)
    return value


def _parquet_rows(parquet_file: Any, batch_size: int, progress: tqdm) -> Iterator[Row]:
    number = 0
    for batch in parquet_file.iter_batches(batch_size=batch_size):
        for record in batch.to_pylist():
            number += 1
            progress.update(1)
            try:
                # A null cell means "not given", as an absent key does in JSON.
                raw = {k: _parquet_value(k, v) for k, v in record.items() if v is not None}
            except ValueError as exc:
                yield Row(number, problem=f"a JSON column is not valid JSON: {exc}")
            else:
                yield Row(number, raw)


class Command(BaseCommand):
    help = (
        "Import items from a JSONL or Parquet file into a dataset, with the API's validation. "
        "Invalid rows are reported and skipped; exit status 1 only with --strict."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a .jsonl/.ndjson or .parquet/.pq file")
        parser.add_argument("--dataset", required=True, help="slug of the target dataset")
        parser.add_argument(
            "--source",
            default=None,
            help="source (producer) for rows that name none; external ids are unique per "
            "source (default: 'reference' with --reference, else 'import')",
        )
        parser.add_argument(
            "--origin",
            choices=["human", "synthetic", "unknown"],
            default=None,
            help="origin of rows that declare none; a row declaring another origin is invalid",
        )
        parser.add_argument(
            "--reference",
            action="store_true",
            help="load human reference items, approved on arrival (every row must be human)",
        )
        parser.add_argument(
            "--format", choices=["jsonl", "parquet"], default=None, help="default: by extension"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="rows per transaction (default and maximum: SYNTHGATE_MAX_ITEMS_PER_REQUEST)",
        )
        parser.add_argument(
            "--strict", action="store_true", help="exit with status 1 if any row was invalid"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        fmt = options["format"] or FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise CommandError(
                f"cannot tell the format of {path.name} from its extension; "
                "pass --format jsonl or --format parquet"
            )
        dataset = Dataset.objects.filter(slug=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset '{options['dataset']}'")
        limit = settings.SYNTHGATE_MAX_ITEMS_PER_REQUEST
        batch_size = options["batch_size"] or limit
        if not 1 <= batch_size <= limit:
            raise CommandError(f"--batch-size must be from 1 to {limit}")
        if options["reference"] and options["origin"] not in (None, "human"):
            raise CommandError("--reference loads human items; it cannot be used with --origin")
        self.dataset = dataset
        self.reference = options["reference"]
        self.origin = options["origin"] or ("human" if self.reference else None)
        self.source = options["source"] or ("reference" if self.reference else "import")
        self.tally = Tally()
        self.unit = "line" if fmt == "jsonl" else "row"
        self.chunk_invalid: list[tuple[int, str]] = []

        parquet_file = None
        if fmt == "parquet":
            import pyarrow.parquet as pq

            try:
                parquet_file = pq.ParquetFile(path)
            except Exception as exc:  # pyarrow raises several types for a file it cannot read
                raise CommandError(f"{path.name} is not a readable Parquet file: {exc}") from None
        interactive = sys.stderr.isatty()
        with tqdm(
            total=path.stat().st_size if parquet_file is None else parquet_file.metadata.num_rows,
            unit="B" if parquet_file is None else " rows",
            unit_scale=parquet_file is None,
            disable=not interactive,
            file=sys.stderr,
            desc=f"importing {path.name}",
        ) as progress:
            self.progress = progress
            rows = (
                _jsonl_rows(path, progress)
                if parquet_file is None
                else _parquet_rows(parquet_file, batch_size, progress)
            )
            last = 0
            analyzed_at = 0
            try:
                while True:
                    try:
                        chunk = list(islice(rows, batch_size))
                    except (OSError, ValueError) as exc:  # unreadable half-way (Parquet pages)
                        self._summary(path)
                        raise CommandError(
                            f"{path.name}: cannot read past {self.unit} {last}: {exc}"
                        ) from None
                    if not chunk:
                        break
                    try:
                        self._import_chunk(chunk)
                    finally:
                        self._flush_invalid()
                    last = chunk[-1].number
                    if self.tally.created - analyzed_at >= ANALYZE_EVERY_CREATED:
                        tables_analyze_stale()
                        analyzed_at = self.tally.created
            except KeyboardInterrupt:
                self._summary(path)
                raise CommandError(
                    f"interrupted; {self.unit}s up to {last} were processed, and running the "
                    "same command again skips what was stored"
                ) from None
        if self.tally.created > analyzed_at:
            tables_analyze_stale()
        self._summary(path)
        if options["strict"] and self.tally.invalid:
            raise CommandError(f"{self.tally.invalid} invalid row(s) (--strict)")

    # Rows -----------------------------------------------------------------------------------

    def _invalid(self, row: Row, message: str) -> None:
        self.chunk_invalid.append((row.number, message))

    def _flush_invalid(self) -> None:
        """Report a chunk's invalid rows in file order (they are found in several passes)."""
        self.chunk_invalid.sort()
        for number, message in self.chunk_invalid:
            self.tally.invalid += 1
            if len(self.tally.invalid_numbers) < SUMMARY_LINES_SHOWN:
                self.tally.invalid_numbers.append(number)
            with self.progress.external_write_mode():
                self.stdout.write(f"{self.unit} {number}: {message}")
        self.chunk_invalid.clear()

    def _prepare(self, row: Row) -> dict[str, Any] | None:
        """The raw item with the command's defaults applied, or None (reported) if unusable."""
        if row.problem:
            self._invalid(row, row.problem)
            return None
        raw = row.raw
        if not isinstance(raw, dict):
            self._invalid(row, f"expected a JSON object, got {type(raw).__name__}")
            return None
        if self.origin is not None:
            declared = raw.get("origin", self.origin)
            if declared != self.origin:
                self._invalid(
                    row,
                    f"origin: '{declared}' contradicts "
                    + (
                        "--reference (reference items are human)"
                        if self.reference
                        else f"--origin {self.origin}"
                    ),
                )
                return None
            raw = {**raw, "origin": self.origin}
        return raw

    def _import_chunk(self, chunk: list[Row]) -> None:
        prepared = [(row, self._prepare(row)) for row in chunk]
        candidates = [(row, raw) for row, raw in prepared if raw is not None]
        if not candidates:
            return
        try:
            items = items_parse([raw for _, raw in candidates])
            entries = list(zip([row for row, _ in candidates], items, strict=True))
        except IngestError as exc:
            bad = self._report(exc, [row for row, _ in candidates])
            good = [(row, raw) for i, (row, raw) in enumerate(candidates) if i not in bad]
            # The rest parse now: validation is per item, with no cross-item rules.
            entries = (
                list(zip([r for r, _ in good], items_parse([raw for _, raw in good]), strict=True))
                if good
                else []
            )
        self._ingest(entries)

    def _report(self, exc: IngestError, rows: list[Row]) -> set[int]:
        """Report the rows an IngestError names; returns their positions in ``rows``."""
        by_index: dict[int, list[str]] = {}
        for error in exc.errors:
            index = error.get("index")
            if index is None:
                continue
            where = f"{error['field']}: " if error.get("field") else ""
            by_index.setdefault(index, []).append(where + error["message"])
        if not by_index:  # an error about the batch as a whole: no row can be blamed
            raise CommandError("; ".join(e["message"] for e in exc.errors))
        for index in sorted(by_index):
            self._invalid(rows[index], "; ".join(by_index[index]))
        return set(by_index)

    def _ingest(self, entries: list[tuple[Row, ItemIn]]) -> None:
        """Store a batch; rows only the database can refuse are isolated and the rest stored."""
        while entries:
            try:
                outcome = items_ingest(
                    dataset=self.dataset,
                    items=[item for _, item in entries],
                    actor=ACTOR,
                    default_source=self.source,
                    reference=self.reference,
                )
            except IngestError as exc:
                # Unknown parents and cycles: drop the rows named and retry the others (a row
                # whose parent was just dropped is then named in the next round).
                bad = self._report(exc, [row for row, _ in entries])
                entries = [entry for i, entry in enumerate(entries) if i not in bad]
                continue
            except (DataError, IntegrityError) as exc:
                # A refusal the validation does not foresee: bisect down to the rows that cause it.
                if len(entries) == 1:
                    self._invalid(entries[0][0], f"refused by the database: {exc}".strip())
                    return
                middle = len(entries) // 2
                self._ingest(entries[:middle])
                self._ingest(entries[middle:])
                return
            self.tally.created += outcome.created
            self.tally.duplicate += outcome.duplicates
            return

    def _summary(self, path: Path) -> None:
        tally = self.tally
        self.stdout.write(
            f"{path.name} -> {self.dataset.slug}: created {tally.created}, duplicate "
            f"{tally.duplicate}, invalid {tally.invalid}"
        )
        if tally.invalid:
            shown = ", ".join(str(n) for n in tally.invalid_numbers)
            more = (
                f" and {tally.invalid - len(tally.invalid_numbers)} more (all listed above)"
                if tally.invalid > len(tally.invalid_numbers)
                else ""
            )
            self.stdout.write(f"invalid {self.unit}s: {shown}{more}")
