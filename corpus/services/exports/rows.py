"""One export row per item, the same in JSONL, Parquet and the feed.

Row fields: ``id``, ``text``, ``origin``, ``source``, ``generator`` and ``generator_version``
(null for items that name none), ``generation``, ``parents`` (ids), ``content_hash`` (sha256 of
the normalized text), ``is_reference``, ``scores`` (null for unscored items), ``decision``
(``decided_at`` and ``reviewer_ids``: ids, never names), ``metadata``, ``kind`` (text, chat or
code), ``messages`` (a chat item's turns as ``{"role", "content", "name"}``, the format
fine-tuning pipelines read; null for other kinds; ``text`` then holds the transcript) and
``language`` (code items).

``metadata``, ``scores.lexical`` and ``scores.detectors`` are JSON *strings*: their keys differ
from item to item, and a column whose nested type changes between rows is what makes pyarrow's
JSON reader (and so Hugging Face ``datasets``) refuse a file. Every other field has one type, so
each format loads with the same schema everywhere.

Rows are read in keyset batches straight into tuples (``values_list``): JSON columns are cast to
text in SQL so they are not parsed and re-serialized row by row. Each batch is three bounded
queries (items, their scores, their parents), never a scan from the start of a table.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from django.db import connection
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from corpus.models import ExportItem, Item, ItemParent, Score

if TYPE_CHECKING:
    import pyarrow as pa

_VALUES = (
    "id",
    "text",
    "origin",
    "source__name",
    "generator_model",
    "generator_version",
    "generation",
    "content_hash",
    "is_reference",
    "decided_at_text",
    "decided_by_text",
    "metadata_text",
    "kind",
    "messages",
    "language",
)
_SCORE_VALUES = (
    "item_id",
    "scorer_version",
    "near_duplicate_of_id",
    "near_duplicate_jaccard",
    "degenerate",
    "detector_name",
    "detector_version",
    "detector_probability",
    "lexical_text",
    "detectors_text",
)

# content_hash comes second so that it sits at a fixed place near the start of every JSON line
# (the Merkle root is computed from the lines as written, see build.py).
COLUMNS = (
    "id",
    "content_hash",
    "text",
    "origin",
    "source",
    "generator",
    "generator_version",
    "generation",
    "parents",
    "is_reference",
    "scores",
    "decision",
    "metadata",
    "kind",
    "messages",
    "language",
)


@functools.cache
def parquet_schema() -> pa.Schema:
    """The Parquet schema. pyarrow is imported on first use: every process that imports the
    item services would otherwise pay for it (~35 MB), not only the ones that export."""
    import pyarrow as pa

    scores = pa.struct(
        [
            ("scorer_version", pa.string()),
            ("near_duplicate_of", pa.int64()),
            ("near_duplicate_jaccard", pa.float64()),
            ("degenerate", pa.bool_()),
            ("detector", pa.string()),
            ("detector_version", pa.string()),
            ("detector_probability", pa.float64()),
            ("lexical", pa.string()),
            ("detectors", pa.string()),
        ]
    )
    decision = pa.struct([("decided_at", pa.string()), ("reviewer_ids", pa.list_(pa.int64()))])
    types = {
        "id": pa.int64(),
        "text": pa.string(),
        "origin": pa.string(),
        "source": pa.string(),
        "generator": pa.string(),
        "generator_version": pa.string(),
        "generation": pa.int64(),
        "parents": pa.list_(pa.int64()),
        "content_hash": pa.string(),
        "is_reference": pa.bool_(),
        "scores": scores,
        "decision": decision,
        "metadata": pa.string(),
        "kind": pa.string(),
        "messages": pa.list_(
            pa.struct([("role", pa.string()), ("content", pa.string()), ("name", pa.string())])
        ),
        "language": pa.string(),
    }
    return pa.schema([(name, types[name]) for name in COLUMNS])


def _values(items: QuerySet[Item]) -> QuerySet[Any]:
    return items.annotate(
        decided_at_text=Cast("decided_at", TextField()),
        decided_by_text=Cast("decided_by", TextField()),
        metadata_text=Cast("metadata", TextField()),
    ).values_list(*_VALUES)


def _id_filter(field: str, ids: list[int], dense: bool) -> dict[str, Any]:
    """``field`` among ``ids``: for an export batch (ids ascending and close together) as a
    range, which is a cheap index range scan and a short query, instead of a list of thousands
    of parameters (rows of items outside the batch are dropped by the caller's lookup)."""
    if dense:
        return {f"{field}__gte": ids[0], f"{field}__lte": ids[-1]}
    return {f"{field}__in": ids}


def _scores(ids: list[int], dense: bool) -> dict[int, dict[str, Any]]:
    """Scores of these items. A query of its own rather than a join: a LEFT JOIN to the score
    table cannot carry the batch's id bound, and the planner then walks it from the start for
    every batch."""
    rows = (
        Score.objects.filter(**_id_filter("item_id", ids, dense))
        .annotate(
            lexical_text=Cast("lexical", TextField()),
            detectors_text=Cast("detectors", TextField()),
        )
        .values_list(*_SCORE_VALUES)
    )
    return {
        item_id: {
            "scorer_version": scorer_version,
            "near_duplicate_of": near_of,
            "near_duplicate_jaccard": near_jaccard,
            "degenerate": bool(degenerate),
            "detector": detector or None,
            "detector_version": detector_version or None,
            "detector_probability": probability,
            "lexical": lexical,
            "detectors": detectors,
        }
        for (
            item_id,
            scorer_version,
            near_of,
            near_jaccard,
            degenerate,
            detector,
            detector_version,
            probability,
            lexical,
            detectors,
        ) in rows
    }


def _parents(ids: list[int], dense: bool) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    links = (
        ItemParent.objects.filter(**_id_filter("child_id", ids, dense))
        .order_by("child_id", "parent_id")
        .values_list("child_id", "parent_id")
    )
    for child, parent in links:
        out[child].append(parent)
    return out


def _iso(raw: str) -> str:
    """ISO 8601 of a timestamp the database rendered as text, as ``datetime.isoformat()``
    would write it. PostgreSQL renders UTC (Django's session time zone) as
    "2026-01-02 03:04:05.123456+00", SQLite stores "2026-01-02 03:04:05.123456"; rewriting
    that text is several times cheaper than parsing a datetime per row to print it again."""
    if raw.endswith("+00"):
        return raw.replace(" ", "T", 1) + ":00"
    if len(raw) in (19, 26) and raw[10] == " ":
        return raw.replace(" ", "T", 1) + "+00:00"
    return datetime.fromisoformat(raw).astimezone(UTC).isoformat()


def rows_from_queryset(items: QuerySet[Item], *, dense: bool = False) -> list[dict[str, Any]]:
    """Rows of an already filtered, sliced queryset of items, ordered by id (``dense``: the
    ids are an export batch, see ``_id_filter``)."""
    values = list(_values(items))
    if not values:
        return []
    ids = [v[0] for v in values]
    parents = _parents(ids, dense)
    scores = _scores(ids, dense)
    return [
        {
            "id": item_id,
            "content_hash": digest,
            "text": text,
            "origin": origin,
            "source": source,
            "generator": generator or None,
            "generator_version": generator_version or None,
            "generation": generation,
            "parents": parents.get(item_id, []),
            "is_reference": bool(is_reference),
            "scores": scores.get(item_id),
            "decision": {
                "decided_at": _iso(decided_at) if decided_at is not None else None,
                "reviewer_ids": orjson.loads(decided_by) if decided_by else [],
            },
            "metadata": metadata if metadata is not None else "{}",
            "kind": kind,
            "messages": _messages(messages),
            "language": language or None,
        }
        for (
            item_id,
            text,
            origin,
            source,
            generator,
            generator_version,
            generation,
            digest,
            is_reference,
            decided_at,
            decided_by,
            metadata,
            kind,
            messages,
            language,
        ) in values
    ]


def _messages(messages: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """A chat item's turns, each with the same three keys (a missing name is null): a struct
    whose fields change from row to row is what pyarrow's JSON reader refuses."""
    if not messages:
        return None
    return [{"role": m["role"], "content": m["content"], "name": m.get("name")} for m in messages]


def rows_for_items(item_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Rows of these items, in id order."""
    if not item_ids:
        return []
    return rows_from_queryset(Item.objects.filter(id__in=item_ids).order_by("id"))


def export_row_batches(*, export_id: int, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """The included rows of an export in id order, ``batch_size`` at a time (keyset paging:
    memory stays at one batch, and no long-running cursor holds a transaction open)."""
    after = 0
    while True:
        # The bound is given on both sides of the join and the order on the ExportItem side, so
        # each batch starts where the last ended on both indexes, whichever join the planner
        # picks: otherwise it may join every row of the export (or every item below the
        # bound) again for every batch, which makes the whole export quadratic.
        batch = rows_from_queryset(
            Item.objects.filter(
                id__gt=after,
                export_rows__export_id=export_id,
                export_rows__included=True,
                export_rows__item_id__gt=after,
            ).order_by("export_rows__item_id")[:batch_size],
            dense=True,
        )
        if not batch:
            return
        yield batch
        after = batch[-1]["id"]


def export_row_batches_prefetched(
    *, export_id: int, batch_size: int
) -> Iterator[list[dict[str, Any]]]:
    """``export_row_batches``, with the next batch read by a helper thread on a connection of
    its own while the caller encodes and writes the current one: the database's work and the
    transfer overlap with ours (psycopg waits for the server without holding the GIL). At most
    three batches are in memory at once.

    Only outside a transaction: another connection sees what is committed, which inside an
    open transaction (a test case) may not be what this one sees.
    """
    if connection.in_atomic_block:
        yield from export_row_batches(export_id=export_id, batch_size=batch_size)
        return
    handoff: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in export_row_batches(export_id=export_id, batch_size=batch_size):
                if not put(batch):
                    return
            put(done)
        except BaseException as exc:  # handed to the caller, raised there
            put(exc)
        finally:
            connection.close()  # this thread's own connection

    reader = threading.Thread(target=read, name=f"export-{export_id}-reader", daemon=True)
    reader.start()
    try:
        while True:
            value = handoff.get()
            if value is done:
                return
            if isinstance(value, BaseException):
                raise value
            yield value
    finally:
        stop.set()
        reader.join()


# --- PostgreSQL: rows rendered as JSON by the database and streamed with COPY ---------------
#
# For a million rows the per-row Python work (converting columns, building dicts, encoding)
# is what limits an export. PostgreSQL renders each row with json_build_object (the same
# fields, in the same order, with the same values as the Python encoder) and COPY streams the
# lines; Python only moves bytes. CSV format with a delimiter and a quote byte that JSON text
# never contains unescaped (\x02, \x01) makes COPY pass the lines through untouched, where
# its text format would double every backslash.


def _postgres_rows_sql(export_id: int, lo: int | None = None, hi: int | None = None) -> str:
    """The rows of the export with an item id in [lo, hi), in id order (all of them without
    bounds)."""
    bounds = (f" AND e.item_id >= {int(lo)}" if lo is not None else "") + (
        f" AND e.item_id < {int(hi)}" if hi is not None else ""
    )
    item, source, score, link, row = (
        Item._meta.db_table,
        Item._meta.get_field("source").related_model._meta.db_table,
        Score._meta.db_table,
        ItemParent._meta.db_table,
        ExportItem._meta.db_table,
    )
    return f"""
        SELECT json_build_object(
            'id', i.id,
            'content_hash', i.content_hash,
            'text', i.text,
            'origin', i.origin,
            'source', src.name,
            'generator', NULLIF(i.generator_model, ''),
            'generator_version', NULLIF(i.generator_version, ''),
            'generation', i.generation,
            'parents', COALESCE(
                (SELECT json_agg(p.parent_id ORDER BY p.parent_id)
                 FROM {link} p WHERE p.child_id = i.id),
                '[]'::json),
            'is_reference', i.is_reference,
            'scores', CASE WHEN s.item_id IS NULL THEN NULL ELSE json_build_object(
                'scorer_version', s.scorer_version,
                'near_duplicate_of', s.near_duplicate_of_id,
                'near_duplicate_jaccard', s.near_duplicate_jaccard,
                'degenerate', s.degenerate,
                'detector', NULLIF(s.detector_name, ''),
                'detector_version', NULLIF(s.detector_version, ''),
                'detector_probability', s.detector_probability,
                'lexical', s.lexical::text,
                'detectors', s.detectors::text) END,
            'decision', json_build_object(
                'decided_at', i.decided_at,
                'reviewer_ids', COALESCE(i.decided_by, '[]'::jsonb)),
            'metadata', COALESCE(i.metadata::text, '{{}}'),
            'kind', i.kind,
            'messages', (
                SELECT json_agg(json_build_object(
                    'role', m.value->>'role',
                    'content', m.value->>'content',
                    'name', m.value->>'name') ORDER BY m.ordinality)
                FROM jsonb_array_elements(i.messages) WITH ORDINALITY m),
            'language', NULLIF(i.language, ''))
        FROM {row} e
        JOIN {item} i ON i.id = e.item_id
        JOIN {source} src ON src.id = i.source_id
        LEFT JOIN {score} s ON s.item_id = i.id
        WHERE e.export_id = {int(export_id)} AND e.included{bounds}
        ORDER BY e.item_id
    """


def postgres_copy_sql(export_id: int, lo: int | None = None, hi: int | None = None) -> str:
    return (
        f"COPY ({_postgres_rows_sql(export_id, lo, hi)}) TO STDOUT "
        "WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"
    )


def postgres_line_blocks(
    *, cursor: Any, export_id: int, block_rows: int, lo: int | None = None, hi: int | None = None
) -> Iterator[list[bytes]]:
    """The export's rows (ids in [lo, hi)) as JSON lines, each with its newline,
    ``block_rows`` at a time, from one COPY on ``cursor`` (a psycopg cursor of a connection in
    the UTC time zone)."""
    sql = postgres_copy_sql(export_id, lo, hi)
    block: list[bytes] = []
    tail = b""
    with cursor.copy(sql) as copy:
        for data in copy:
            chunk = bytes(data)
            if not tail and chunk.find(b"\n") == len(chunk) - 1:
                block.append(chunk)  # one row per message: how PostgreSQL sends COPY data
            else:
                lines = (tail + chunk).split(b"\n")
                tail = lines.pop()
                block.extend(line + b"\n" for line in lines)
            if len(block) >= block_rows:
                yield block
                block = []
    if tail:
        raise RuntimeError("COPY ended inside a row")
    if block:
        yield block


def python_line_blocks(*, export_id: int, batch_size: int) -> Iterator[list[bytes]]:
    """The same lines, encoded here (any database)."""
    for batch in export_row_batches_prefetched(export_id=export_id, batch_size=batch_size):
        yield [orjson.dumps(row) + b"\n" for row in batch]
