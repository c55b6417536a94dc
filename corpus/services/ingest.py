"""Bulk ingest: validate a whole request, then store it all or nothing.

Validation is pure (no writes) and returns field-level errors for every bad item, so a producer
fixes a batch in one round trip. Storing takes the audit chain lock *before* inserting: item ids
are then handed out in commit order, which is what lets keyset cursors over ids promise no gaps.
The lock is taken as late as that allows, after the idempotency and parent lookups and the row
building: every ingest (and every audited change) queues on it, so what runs under it bounds the
throughput of the whole system (bench/RESULTS.md).
"""

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Annotated, Any, Literal, cast

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from corpus.db.bulk import bulk_insert, values_by_key, values_in
from corpus.json_input import json_value_problem
from corpus.models import Dataset, Item, ItemParent, Source
from corpus.scoring import kinds
from corpus.scoring.text import content_hash
from corpus.services.audit import audit_append, audit_lock

logger = logging.getLogger(__name__)

# C0 and C1 control characters except tab, newline and carriage return.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# What in orjson's encoding of a metadata value could hide a problem: a number that may be
# beyond 2^53 (16 digits in a row, or an exponent of two digits or more: orjson writes 1e16 as
# 1e+16), or a null (an infinity, which only the stdlib's parse of an out-of-range number
# makes, is written as null). Encodings longer than _SHALLOW_BYTES are walked anyway: only they
# can nest past the depth limit (33 openers and closers).
_SUSPECT = re.compile(rb"null|\d{16}|e\+?\d\d")
_SHALLOW_BYTES = 64
# The same set within ASCII, as bytes for bytes.translate.
_ASCII_CONTROL = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


class IngestError(Exception):
    """Bad input: a list of ``{"index", "field", "message"}`` dicts, nothing was stored."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid item(s)")
        self.errors = errors


def _check_string(value: str, *, what: str) -> str:
    # Fast path for ASCII text (most of it): deleting the control characters with
    # bytes.translate and comparing lengths is a C loop, about 4 times faster than the regex
    # search over a 1 KB text. An ASCII str cannot hold a lone surrogate.
    if value.isascii():
        raw = value.encode("ascii")
        if len(raw.translate(None, _ASCII_CONTROL)) == len(raw):
            return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid UTF-8 (it contains a lone surrogate)") from None
    match = _CONTROL_RE.search(value)
    if match:
        raise ValueError(
            f"{what} contains the control character U+{ord(match.group()):04X} at position "
            f"{match.start()}; only tab, newline and carriage return are allowed"
        )
    return value


Name = Annotated[str, Field(min_length=1, max_length=200)]

# Largest id a bigint primary key can hold; a larger "id" would overflow the database query.
_MAX_ID = 2**63 - 1


def _parent_ref(value: Any) -> int | str:
    # One plain validator instead of ``int | str``: a union reports one error per member, with
    # pydantic's member tags in the location ("parents.0.int"), which is noise for a producer.
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= _MAX_ID:
            raise ValueError(f"item id {value} is out of range")
        return value
    if isinstance(value, str):
        if not 1 <= len(value) <= 200:
            raise ValueError("an external_id parent must have 1 to 200 characters")
        return _check_string(value, what="external_id")
    raise ValueError("a parent is an item id (integer) or an external_id (string)")


ParentRef = Annotated[Any, PlainValidator(_parent_ref)]


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def _limit(info: ValidationInfo, name: str) -> int:
    # items_parse reads the limits from the settings once per request and passes them in the
    # validation context: each read of django.conf.settings is a Python call
    # (LazyObject.__getattribute__), and there were three per item.
    context = info.context
    return context[name] if context else getattr(settings, name)


def _checked(value: str, info: ValidationInfo, *, what: str) -> str:
    # "plain": the caller has seen that no string of the request can hold a control character
    # or a lone surrogate (corpus.json_input.json_strings_plain on the raw body).
    context = info.context
    return value if context and context["plain"] else _check_string(value, what=what)


def _check_text(value: str, info: ValidationInfo, *, what: str = "text") -> str:
    # isspace() is what strip() strips: the same test without copying the text.
    if not value or value.isspace():
        raise ValueError(f"{what} is empty")
    limit = _limit(info, "SYNTHGATE_MAX_TEXT_CHARS")
    if len(value) > limit:
        raise ValueError(f"{what} has {len(value)} characters; the limit is {limit}")
    return _checked(value, info, what=what)


class MessageIn(BaseModel):
    """One turn of a chat transcript, in the OpenAI-style format fine-tuning pipelines read."""

    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    name: Name | None = None

    @field_validator("content")
    @classmethod
    def _content(cls, value: str, info: ValidationInfo) -> str:
        return _check_text(value, info, what="content")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _checked(value, info, what="name")


class ItemIn(BaseModel):
    """One item as a producer sends it. Unknown fields are refused, types are strict.

    ``kind`` is ``text`` (``text`` required), ``chat`` (``messages`` required, ``text`` is
    derived from them) or ``code`` (``text`` and ``language`` required).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Literal["text", "chat", "code"] = "text"
    text: str | None = None
    messages: list[MessageIn] | None = Field(default=None, min_length=1, max_length=1000)
    language: str | None = Field(default=None, min_length=1, max_length=50)
    external_id: Name | None = None
    source: Name | None = None
    origin: Literal["human", "synthetic", "unknown"] = "unknown"
    generator_model: str = Field(default="", max_length=200)
    generator_version: str = Field(default="", max_length=100)
    prompt: str = Field(default="", max_length=100_000)
    sampling_params: dict[str, Any] = Field(default_factory=dict)
    parents: list[ParentRef] = Field(default_factory=list, max_length=1000)
    generation: int | None = Field(default=None, ge=0, le=10_000)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _check_text(value, info)

    def kind_errors(self) -> list[tuple[str, str]]:
        """(field, message) for a shape that does not fit the kind; normalizes what fits."""
        errors: list[tuple[str, str]] = []
        if self.kind == "chat":
            if self.text is not None:
                errors.append(("text", "a chat item carries its text in messages, not text"))
            if self.language is not None:
                errors.append(("language", "only code items have a language"))
            if self.messages is None:
                errors.append(("messages", "this field is required for a chat item"))
            elif not any(m.role == "assistant" for m in self.messages):
                errors.append(("messages", "a transcript needs at least one assistant turn"))
            else:
                self.text = kinds.transcript_text([m.model_dump() for m in self.messages])
                limit = settings.SYNTHGATE_MAX_TEXT_CHARS
                if len(self.text) > limit:
                    errors.append(
                        (
                            "messages",
                            f"the transcript has {len(self.text)} characters; the limit is {limit}",
                        )
                    )
            return errors
        if self.messages is not None:
            errors.append(("messages", "only chat items have messages"))
        if self.text is None:
            errors.append(("text", "this field is required"))
        if self.kind == "code":
            if self.language is None:
                errors.append(("language", "this field is required for a code item"))
            else:
                try:
                    self.language = kinds.canonical_language(self.language)
                except ValueError as exc:
                    errors.append(("language", str(exc)))
        elif self.language is not None:
            errors.append(("language", "only code items have a language"))
        return errors

    @field_validator("prompt", "generator_model", "generator_version", "external_id", "source")
    @classmethod
    def _plain(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _checked(value, info, what="value")

    @field_validator("metadata", "sampling_params")
    @classmethod
    def _json_object(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        try:
            encoded = orjson.dumps(value)
        except TypeError as exc:
            raise ValueError(f"not JSON-serializable: {exc}") from None
        limit = _limit(info, "SYNTHGATE_MAX_METADATA_BYTES")
        if len(encoded) > limit:
            raise ValueError(f"is {len(encoded)} bytes as JSON; the limit is {limit}")
        # PostgreSQL's jsonb cannot hold NUL; refuse it everywhere so both databases agree.
        # (Checked on the values: a literal backslash-u0000 in the JSON text is not a NUL.)
        # orjson writes a NUL in a key or value as the escape \u0000, so without that text in
        # the encoding there is none to look for, and the walk over the values is skipped.
        if b"\\u0000" in encoded and _contains_nul(value):
            raise ValueError("contains a NUL character")
        # Depth and exact numbers, as for every JSON body (corpus.json_input); walked only when
        # the encoding could hide a problem (_SUSPECT, _SHALLOW_BYTES).
        problem = None
        if len(encoded) > _SHALLOW_BYTES or _SUSPECT.search(encoded) is not None:
            max_depth = _limit(info, "SYNTHGATE_MAX_JSON_DEPTH")
            problem = json_value_problem(value, max_depth=max_depth, strings=False)
        if problem is not None:
            path, message = problem
            where = ".".join(str(part) for part in path)
            raise ValueError(f"{where}: {message}" if where else message)
        return value


class IngestRequest(BaseModel):
    """The request body around the items; each item is validated on its own by items_parse so
    its errors carry the item's index."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source: Name | None = None
    items: list[Any]

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        return None if value is None else _check_string(value, what="source")


_items_adapter = TypeAdapter(list[ItemIn])


def _pydantic_errors(exc: ValidationError, *, offset: int = 0) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        index = loc.pop(0) if loc and isinstance(loc[0], int) else None
        field_name = ".".join(str(part) for part in loc) or None
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "this field is required"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        errors.append(
            {
                "index": None if index is None else int(index) + offset,
                "field": field_name,
                "message": message,
            }
        )
    return errors


def request_parse(body: Any, *, strings_plain: bool = False) -> tuple[str | None, list[ItemIn]]:
    """Validate a whole ingest body: ``(default source or None, items)``; raises IngestError.

    ``strings_plain``: the caller has seen in the raw body that no string in it can hold a
    control character or a lone surrogate (``corpus.json_input.json_strings_plain``), so the
    strings are not checked for them one by one."""
    if not isinstance(body, dict):
        raise IngestError(
            [{"index": None, "field": None, "message": "the body must be a JSON object"}]
        )
    try:
        request = IngestRequest.model_validate(body)
    except ValidationError as exc:
        raise IngestError(_pydantic_errors(exc)) from None
    return request.source, items_parse(request.items, strings_plain=strings_plain)


def items_parse(
    raw_items: Sequence[Any], *, offset: int = 0, strings_plain: bool = False
) -> list[ItemIn]:
    """Validate the shape of each item; raises IngestError with every problem found.
    ``strings_plain`` as for ``request_parse``."""
    limit = settings.SYNTHGATE_MAX_ITEMS_PER_REQUEST
    if len(raw_items) > limit:
        raise IngestError(
            [{"index": None, "field": "items", "message": f"at most {limit} items per request"}]
        )
    if not raw_items:
        raise IngestError([{"index": None, "field": "items", "message": "no items"}])
    try:
        items = _items_adapter.validate_python(
            raw_items,
            context={
                "plain": strings_plain,
                "SYNTHGATE_MAX_TEXT_CHARS": settings.SYNTHGATE_MAX_TEXT_CHARS,
                "SYNTHGATE_MAX_METADATA_BYTES": settings.SYNTHGATE_MAX_METADATA_BYTES,
                "SYNTHGATE_MAX_JSON_DEPTH": settings.SYNTHGATE_MAX_JSON_DEPTH,
            },
        )
    except ValidationError as exc:
        raise IngestError(_pydantic_errors(exc, offset=offset)) from None
    errors = [
        {"index": index + offset, "field": field_name, "message": message}
        for index, item in enumerate(items)
        for field_name, message in item.kind_errors()
    ]
    if errors:
        raise IngestError(errors)
    return items


@dataclass
class ItemResult:
    index: int
    id: int
    status: Literal["created", "duplicate"]


@dataclass
class IngestOutcome:
    results: list[ItemResult]
    created_ids: list[int] = field(default_factory=list)
    audit_seq: int | None = None

    @property
    def created(self) -> int:
        return len(self.created_ids)

    @property
    def duplicates(self) -> int:
        return len(self.results) - len(self.created_ids)


def items_ingest_digest(content_hashes: Iterable[str]) -> str:
    """The ``content_hash_digest`` of an ingest audit event: sha256 over the created items'
    content hashes, concatenated in id order."""
    return hashlib.sha256("".join(content_hashes).encode()).hexdigest()


def _default_generation(origin: str, parent_generations: list[int]) -> int:
    if parent_generations:
        return max(parent_generations) + 1
    return 0 if origin == Item.Origin.HUMAN else 1


def items_ingest(
    *,
    dataset: Dataset,
    items: list[ItemIn],
    actor: str,
    default_source: str,
    reference: bool = False,
    index_offset: int = 0,
) -> IngestOutcome:
    """Store a validated batch all or nothing; idempotent on (source, external_id), else on the
    content hash within the dataset. Raises IngestError for problems only the database can see
    (unknown parents, cycles); then nothing is stored.

    ``reference`` loads human reference items straight into ``approved`` (the corpus novelty is
    measured against), audited as such.

    Every call that stores (or finds) its items appends exactly one audit event, even a full
    replay that creates nothing: the request is part of the history (who resent what, when),
    and its payload says so (``created`` empty, ``duplicates`` counted). A refused request
    appends nothing, like everything else it would have written.
    """
    # The lookups run before the audit lock, so a concurrent request may commit some of the same
    # keys between our lookup and our insert; the unique constraints turn that into an
    # IntegrityError, and the retry then finds them. The last attempt takes the lock before its
    # lookups: no ingest can then commit in between, so it cannot lose the race again.
    attempts = 3
    for attempt in range(attempts):
        try:
            return _items_ingest_once(
                dataset=dataset,
                items=items,
                actor=actor,
                default_source=default_source,
                reference=reference,
                index_offset=index_offset,
                lock_first=attempt == attempts - 1,
            )
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@dataclass
class _Batch:
    """One request's items as the steps of ``_items_ingest_once`` see them."""

    dataset: Dataset
    items: list[ItemIn]
    hashes: list[str]
    source_ids: dict[str, int]
    # (source id, external id or None) per item, the idempotency key when there is an external id.
    ext_keys: list[tuple[int, str | None]]
    index_offset: int


@dataclass
class _Duplicates:
    existing: dict[int, int]  # batch index -> existing item id
    first_in_batch: dict[int, int]  # batch index -> earlier batch index with the same key
    new_indexes: list[int]


@dataclass
class _Lineage:
    with_parents: list[int]
    graph: dict[int, set[int]]  # batch index -> batch indexes of its parents
    resolved: dict[int, list[tuple[int, int]]]  # batch index -> stored (parent id, generation)
    order: list[int]  # new indexes, parents before children


@transaction.atomic
def _items_ingest_once(
    *,
    dataset: Dataset,
    items: list[ItemIn],
    actor: str,
    default_source: str,
    reference: bool,
    index_offset: int,
    lock_first: bool = False,
) -> IngestOutcome:
    # Validation gave every item its text (derived from the messages of a chat).
    hashes = [content_hash(cast(str, item.text)) for item in items]
    source_ids = _sources_get_or_create(dataset, items, default_source)
    if lock_first:
        audit_lock()
    batch = _Batch(
        dataset=dataset,
        items=items,
        hashes=hashes,
        source_ids=source_ids,
        ext_keys=[(source_ids[i.source or default_source], i.external_id) for i in items],
        index_offset=index_offset,
    )
    # 1. Idempotency: what already exists, and duplicates within this request.
    duplicates = _duplicates_find(batch)
    # 2. Parents: ids in this dataset, or external ids within the item's own source.
    lineage = _parents_resolve(batch, duplicates.new_indexes)
    # 3. Insert in topological order so a batch parent's generation is known before its child's.
    rows = _rows_build(batch, lineage, reference=reference, default_source=default_source)
    # Ids in commit order: from the lock to the commit, only the inserts and the audit event.
    if not lock_first:
        audit_lock()
    new_id = _rows_insert(rows, lineage)
    # 4. The answer, the audit event, the feed (reference items) and scoring after commit.
    return _ingest_record(batch, duplicates, new_id, actor=actor, reference=reference)


def _sources_get_or_create(
    dataset: Dataset, items: list[ItemIn], default_source: str
) -> dict[str, int]:
    source_names = {item.source or default_source for item in items}
    sources = {s.name: s for s in Source.objects.filter(dataset=dataset, name__in=source_names)}
    for name in source_names - sources.keys():
        # Before the lock, so a request that waits here on another's uncommitted new source of
        # the same name holds nothing that one waits for; get_or_create then finds it.
        sources[name] = Source.objects.get_or_create(dataset=dataset, name=name)[0]
    return {name: source.pk for name, source in sources.items()}


def _duplicates_find(batch: _Batch) -> _Duplicates:
    """Items stored before (by (source, external id), else by content hash in the dataset) and
    repeats within the batch (the first occurrence is the one created).

    One probe of the unique index per key (values_by_key), planned the same on a table whatever
    its statistics, so ingest does not slow down as the table outgrows its last ANALYZE."""
    ext_keys, hashes = batch.ext_keys, batch.hashes
    by_ext: dict[tuple[int, str | None], int] = {}
    wanted_ext = {key for key in ext_keys if key[1] is not None}
    if wanted_ext:
        rows = values_by_key(Item, ["source_id", "external_id"], wanted_ext, ["id"])
        by_ext = {(s, e): i for s, e, i in rows}
    wanted_hash = {h for h, (_, e) in zip(hashes, ext_keys, strict=True) if e is None}
    by_hash: dict[str, int] = {}
    if wanted_hash:
        rows = values_by_key(
            Item,
            ["dataset_id", "content_hash"],
            [(batch.dataset.pk, h) for h in wanted_hash],
            ["id"],
            external_id__isnull=True,
        )
        by_hash = {h: i for _, h, i in rows}

    existing: dict[int, int] = {}
    first_in_batch: dict[int, int] = {}
    seen: dict[object, int] = {}
    for index, (key, digest) in enumerate(zip(ext_keys, hashes, strict=True)):
        lookup_key: object = key if key[1] is not None else ("hash", digest)
        found = by_ext.get(key) if key[1] is not None else by_hash.get(digest)
        if found is not None:
            existing[index] = found
        elif lookup_key in seen:
            first_in_batch[index] = seen[lookup_key]
        else:
            seen[lookup_key] = index
    new_indexes = [
        i for i in range(len(batch.items)) if i not in existing and i not in first_in_batch
    ]
    return _Duplicates(existing=existing, first_in_batch=first_in_batch, new_indexes=new_indexes)


def _parents_resolve(batch: _Batch, new_indexes: list[int]) -> _Lineage:
    """Parents are ids in this dataset, or external ids within the item's own source (earlier
    items, or items of this same request). Only the items that name parents are looked at (most
    batches have none). Raises IngestError listing every unknown parent and cycle at once."""
    items, ext_keys, dataset = batch.items, batch.ext_keys, batch.dataset
    errors: list[dict[str, Any]] = []
    with_parents = [i for i in new_indexes if items[i].parents]
    batch_by_ext = (
        {ext_keys[i]: i for i in new_indexes if ext_keys[i][1] is not None} if with_parents else {}
    )
    parent_ids = {p for i in with_parents for p in items[i].parents if isinstance(p, int)}
    parent_exts = {
        (ext_keys[i][0], p) for i in with_parents for p in items[i].parents if isinstance(p, str)
    }
    known: dict[int, int] = {}  # id -> generation
    if parent_ids:
        known = dict(
            values_in(Item, ["id", "generation"], dataset_id=dataset.pk, id__in=parent_ids)
        )
    known_ext: dict[tuple[int, str | None], tuple[int, int]] = {}
    db_exts = {key for key in parent_exts if key not in batch_by_ext}
    if db_exts:
        rows = values_by_key(Item, ["source_id", "external_id"], db_exts, ["id", "generation"])
        known_ext = {(s, e): (i, g) for s, e, i, g in rows}

    graph: dict[int, set[int]] = {i: set() for i in with_parents}
    resolved: dict[int, list[tuple[int, int]]] = {i: [] for i in with_parents}
    for i in with_parents:
        for k, parent in enumerate(items[i].parents):
            where = {"index": i + batch.index_offset, "field": f"parents.{k}"}
            if isinstance(parent, int):
                if parent not in known:
                    errors.append(
                        {**where, "message": f"item {parent} does not exist in '{dataset.slug}'"}
                    )
                else:
                    resolved[i].append((parent, known[parent]))
                continue
            key = (ext_keys[i][0], parent)
            if key in batch_by_ext:
                if batch_by_ext[key] == i:
                    errors.append({**where, "message": "an item cannot be its own parent"})
                else:
                    graph[i].add(batch_by_ext[key])
            elif key in known_ext:
                resolved[i].append(known_ext[key])
            else:
                errors.append(
                    {**where, "message": f"no item with external_id '{parent}' in this source"}
                )
    # Checked even when other parents are bad, so a producer sees every problem at once. Without
    # links inside the batch (the common case) the order is the batch's own, which is also what
    # the sorter would return.
    order: list[int] = new_indexes
    try:
        if any(graph.values()):
            order = list(
                TopologicalSorter({i: graph.get(i, ()) for i in new_indexes}).static_order()
            )
    except CycleError as exc:
        cycle = sorted({n + batch.index_offset for n in exc.args[1]})
        for i in cycle:
            errors.append(
                {"index": i, "field": "parents", "message": f"parents form a cycle: {cycle}"}
            )
    if errors:
        raise IngestError(errors)
    return _Lineage(with_parents=with_parents, graph=graph, resolved=resolved, order=order)


def _rows_build(
    batch: _Batch, lineage: _Lineage, *, reference: bool, default_source: str
) -> list[dict[str, Any]]:
    """The new items' rows in insert order, each with its generation (declared, else one more
    than its deepest parent)."""
    items, hashes, source_ids = batch.items, batch.hashes, batch.source_ids
    resolved, graph = lineage.resolved, lineage.graph
    now = timezone.now()
    # Looked up once, not per row: a model's .pk is a property.
    dataset_id = batch.dataset.pk
    state = (Item.State.APPROVED if reference else Item.State.PENDING).value
    generation: dict[int, int] = {}
    # Plain dicts, not Item instances: bulk_insert COPYs them (see corpus/db/bulk.py).
    rows_to_create: list[dict[str, Any]] = []
    for i in lineage.order:
        item = items[i]
        gens = [g for _, g in resolved.get(i, ())] + [generation[p] for p in graph.get(i, ())]
        generation[i] = (
            item.generation
            if item.generation is not None
            else _default_generation(item.origin, gens)
        )
        rows_to_create.append(
            {
                "dataset_id": dataset_id,
                "source_id": source_ids[item.source or default_source],
                "kind": item.kind,
                "text": item.text,
                "messages": (
                    [m.model_dump(exclude_none=True) for m in item.messages]
                    if item.messages
                    else None
                ),
                "language": item.language or "",
                "content_hash": hashes[i],
                "external_id": item.external_id,
                "origin": item.origin,
                "generator_model": item.generator_model,
                "generator_version": item.generator_version,
                "prompt": item.prompt,
                "sampling_params": item.sampling_params,
                "generation": generation[i],
                "metadata": item.metadata,
                "is_reference": reference,
                "state": state,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows_to_create


def _rows_insert(rows: list[dict[str, Any]], lineage: _Lineage) -> dict[int, int]:
    """Insert the items and their parent links (the caller holds the audit lock); returns
    batch index -> new id."""
    order, graph, resolved = lineage.order, lineage.graph, lineage.resolved
    new_id = dict(zip(order, bulk_insert(Item, rows), strict=True))
    links = [
        {"child_id": new_id[i], "parent_id": pid}
        for i in (order if lineage.with_parents else ())
        if i in graph
        for pid in dict.fromkeys([p for p, _ in resolved[i]] + [new_id[p] for p in graph[i]])
    ]
    if links:
        bulk_insert(ItemParent, links)
    return new_id


def _ingest_record(
    batch: _Batch,
    duplicates: _Duplicates,
    new_id: dict[int, int],
    *,
    actor: str,
    reference: bool,
) -> IngestOutcome:
    """Per-item results, the one audit event, the feed for reference items, and scoring queued
    after commit."""
    dataset, hashes, offset = batch.dataset, batch.hashes, batch.index_offset
    existing, first_in_batch = duplicates.existing, duplicates.first_in_batch
    results = []
    for i in range(len(batch.items)):
        if i in new_id:
            results.append(ItemResult(index=i + offset, id=new_id[i], status="created"))
        else:
            item_id = existing[i] if i in existing else new_id[first_in_batch[i]]
            results.append(ItemResult(index=i + offset, id=item_id, status="duplicate"))
    created_ids = sorted(new_id.values())
    outcome = IngestOutcome(results=results, created_ids=created_ids)
    # In id order, the order of "created" in the payload: anyone can recompute the digest from
    # the stored rows (items_ingest_digest) and see that the texts were not altered since.
    digest = items_ingest_digest(hashes[i] for i in sorted(new_id, key=new_id.__getitem__))
    event = audit_append(
        actor=actor,
        action="items.reference_loaded" if reference else "items.ingested",
        object_type="dataset",
        object_id=dataset.slug,
        dataset=dataset,
        payload={
            "created": created_ids,
            "duplicates": outcome.duplicates,
            "content_hash_digest": digest,
        },
    )
    outcome.audit_seq = event.seq
    if reference and created_ids:
        # Reference items are approved on arrival: they enter the consumers' feed like any
        # approval, in the same transaction (ingest already holds the audit lock).
        from corpus.services.feed import feed_append

        feed_append(dataset_id=dataset.pk, item_ids=created_ids, kind="approved")
    if created_ids:
        transaction.on_commit(lambda: _score_enqueue(created_ids))
    return outcome


def _score_enqueue(item_ids: list[int]) -> None:
    """After commit: queue scoring in batches, by task name. This is what
    ``corpus.services.scoring.items_score_enqueue`` does, without importing the scoring stack
    (numpy, scikit-learn, the detectors): that import cost every web worker about 140 MB of
    memory for a message send (bench/RESULTS.md). A broker outage must not fail the committed
    request: the periodic sweep re-enqueues whatever is still pending."""
    from celery import current_app

    size = settings.SYNTHGATE_SCORE_BATCH
    for start in range(0, len(item_ids), size):
        chunk = item_ids[start : start + size]
        try:
            # argsrepr: what logs and monitors show of the arguments. Celery would otherwise
            # walk the whole list to build a truncated repr of it (a third of a send's CPU).
            current_app.send_task(
                "corpus.tasks.items_score_task",
                args=[chunk],
                argsrepr=f"[<{len(chunk)} item ids: {chunk[0]}..{chunk[-1]}>]",
            )
        except Exception:
            logger.warning("could not enqueue scoring of %d items; the sweep will", len(chunk))
