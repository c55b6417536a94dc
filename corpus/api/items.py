"""REST API, version 1. Views parse, call one service or selector, and render."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from pydantic import BaseModel, Field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from corpus import selectors
from corpus.api.pagination import page_query
from corpus.api_support import cursor_encode, errors_response
from corpus.auth import HasToken, require_dataset_access, require_scope
from corpus.models import ApiToken, Item
from corpus.services.audit import actor_for_token
from corpus.services.ingest import IngestError, ItemIn, items_ingest, request_parse


class ScoreOutputSerializer(serializers.Serializer):
    scorer_version = serializers.CharField()
    exact_duplicate_of = serializers.IntegerField(source="exact_duplicate_of_id", allow_null=True)
    near_duplicate_of = serializers.IntegerField(source="near_duplicate_of_id", allow_null=True)
    near_duplicate_jaccard = serializers.FloatField(allow_null=True)
    near_duplicate_containment = serializers.FloatField(allow_null=True)
    lexical = serializers.JSONField()
    degenerate = serializers.BooleanField()
    degenerate_reason = serializers.CharField()
    detector_name = serializers.CharField()
    detector_version = serializers.CharField()
    detector_probability = serializers.FloatField(allow_null=True)
    # Per detector: its probability and measured quality on this dataset, or why it abstained
    # ("too_short", "out_of_distribution") or that the item's kind is outside its scope.
    detectors = serializers.JSONField()
    # A rule that came to apply while a reviewer held the item (flagged, not pulled away).
    rule_flag = serializers.CharField()
    priority = serializers.FloatField()
    computed_at = serializers.DateTimeField()


class ItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    dataset = serializers.CharField(source="dataset.slug")
    # A field named "source": DRF's stubs read the name as the Field.source attribute.
    source = serializers.CharField(source="source.name")  # type: ignore[assignment]
    kind = serializers.CharField()
    text = serializers.CharField()
    messages = serializers.JSONField(allow_null=True)
    language = serializers.CharField()
    content_hash = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    origin = serializers.CharField()
    generator_model = serializers.CharField()
    generator_version = serializers.CharField()
    prompt = serializers.CharField()
    sampling_params = serializers.JSONField()
    parents = serializers.SerializerMethodField()
    generation = serializers.IntegerField()
    metadata = serializers.JSONField()
    is_reference = serializers.BooleanField()
    state = serializers.CharField()
    state_reason = serializers.CharField()
    priority = serializers.FloatField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.JSONField()
    score = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_parents(self, item: Item) -> list[int]:
        return [link.parent_id for link in item.parent_links.all()]

    @extend_schema(exclude=True)
    def get_score(self, item: Item) -> dict[str, Any] | None:
        score = getattr(item, "score", None)
        return None if score is None else ScoreOutputSerializer(score).data


_datetime = serializers.DateTimeField().to_representation


def _dt(value: Any) -> str | None:
    return None if value is None else _datetime(value)


def item_row_out(row: dict[str, Any], *, dataset_slug: str) -> dict[str, Any]:
    """What ``ItemOutputSerializer`` gives for an item, from a ``selectors.item_rows`` row: the
    same keys in the same order and the same values (tests/test_items_list.py compares the two
    on varied items), without a serializer field per value. A page of 100 items is 4,000 field
    representations through DRF, several times the cost of its query."""
    # scorer_version is never NULL in a score row: NULL means no score row (a LEFT JOIN).
    scored = row["score__scorer_version"] is not None
    return {
        "id": row["id"],
        "dataset": dataset_slug,
        "source": row["source__name"],
        "kind": row["kind"],
        "text": row["text"],
        "messages": row["messages"],
        "language": row["language"],
        "content_hash": row["content_hash"],
        "external_id": row["external_id"],
        "origin": row["origin"],
        "generator_model": row["generator_model"],
        "generator_version": row["generator_version"],
        "prompt": row["prompt"],
        "sampling_params": row["sampling_params"],
        "parents": row["parents"],
        "generation": row["generation"],
        "metadata": row["metadata"],
        "is_reference": row["is_reference"],
        "state": row["state"],
        "state_reason": row["state_reason"],
        "priority": row["priority"],
        "decided_at": _dt(row["decided_at"]),
        "decided_by": row["decided_by"],
        "score": None
        if not scored
        else {
            "scorer_version": row["score__scorer_version"],
            "exact_duplicate_of": row["score__exact_duplicate_of_id"],
            "near_duplicate_of": row["score__near_duplicate_of_id"],
            "near_duplicate_jaccard": row["score__near_duplicate_jaccard"],
            "near_duplicate_containment": row["score__near_duplicate_containment"],
            "lexical": row["score__lexical"],
            "degenerate": row["score__degenerate"],
            "degenerate_reason": row["score__degenerate_reason"],
            "detector_name": row["score__detector_name"],
            "detector_version": row["score__detector_version"],
            "detector_probability": row["score__detector_probability"],
            "detectors": row["score__detectors"],
            "rule_flag": row["score__rule_flag"],
            "priority": row["score__priority"],
            "computed_at": _dt(row["score__computed_at"]),
        },
        "created_at": _dt(row["created_at"]),
        "updated_at": _dt(row["updated_at"]),
    }


class MatchOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="the matched item")
    jaccard = serializers.FloatField()
    containment = serializers.FloatField(
        help_text="share of this item's shingles found in the matched one"
    )
    state = serializers.CharField(help_text="the matched item's state now")
    is_reference = serializers.BooleanField()


class NearDuplicatesOutputSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="stored matches of this item")
    matches = MatchOutputSerializer(many=True, help_text="the strongest first, at most 8")


class ItemDetailOutputSerializer(ItemOutputSerializer):
    """One item, with every near-duplicate match stored for it: found whichever of the two
    items was scored first, so an item scored before its near-copy arrived lists it too."""

    near_duplicates = serializers.SerializerMethodField()

    @extend_schema_field(NearDuplicatesOutputSerializer)
    def get_near_duplicates(self, item: Item) -> dict[str, Any]:
        matches, total = selectors.item_matches(item_id=item.pk)
        return {"total": total, "matches": matches}


class IngestRequestDoc(BaseModel):
    """The ingest body, for the OpenAPI schema."""

    source: str | None = Field(default=None, description="default source for items without one")
    items: list[ItemIn]


class IngestResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "duplicate"])


class IngestOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    results = IngestResultSerializer(many=True)


ITEM_FILTERS = {"state": Item.State, "origin": Item.Origin}


class ItemListApi(APIView):
    """Pages through a dataset's items, oldest first (any token of the dataset)."""

    permission_classes = [HasToken]

    OutputSerializer = ItemOutputSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("state", enum=Item.State.values),
            OpenApiParameter("origin", enum=Item.Origin.values),
            OpenApiParameter("source", str),
            OpenApiParameter("cursor", str, description="opaque; from the previous page's next"),
            OpenApiParameter("limit", int, description="page size, at most 1000"),
        ],
        responses=OutputSerializer(many=True),
        operation_id="items_list",
    )
    def get(self, request: Request, slug: str) -> Response:
        dataset = selectors.dataset_get(slug=slug)
        require_dataset_access(request, dataset)
        filters: dict[str, Any] = {}
        errors = []
        for name, choices in ITEM_FILTERS.items():
            value = request.query_params.get(name)
            if value:
                if value not in choices.values:
                    errors.append({"field": name, "message": f"must be one of {choices.values}"})
                filters[name] = value
        if source := request.query_params.get("source"):
            filters["source__name"] = source
        page = page_query(request.query_params, key="after", errors=errors)
        if errors:
            return errors_response(errors)
        after_id = page.position
        rows = selectors.item_rows(
            dataset=dataset, after_id=after_id, limit=page.limit, filters=filters
        )
        # The next cursor is given even on a short page: a pipeline polls it for new items.
        last = rows[-1]["id"] if rows else after_id
        return Response(
            {
                "results": [item_row_out(row, dataset_slug=dataset.slug) for row in rows],
                "next": cursor_encode({"after": last}) if last is not None else None,
            }
        )


class ItemIngestApi(APIView):
    """Ingests a batch of items into a dataset (produce scope)."""

    permission_classes = [HasToken]
    json_values_checked = True  # ingest checks each item, naming the item and field

    OutputSerializer = IngestOutputSerializer

    @extend_schema(
        request=IngestRequestDoc,
        responses={201: OutputSerializer},
        operation_id="items_ingest",
    )
    def post(self, request: Request, slug: str) -> Response:
        dataset = selectors.dataset_get(slug=slug)
        token = require_scope(request, ApiToken.Scope.PRODUCE, dataset)
        try:
            source, items = request_parse(
                request.data, strings_plain=getattr(request, "json_strings_plain", False)
            )
            outcome = items_ingest(
                dataset=dataset,
                items=items,
                actor=actor_for_token(token),
                default_source=source or token.name,
            )
        except IngestError as exc:
            return errors_response(exc.errors)
        return Response(
            {
                "created": outcome.created,
                "duplicates": outcome.duplicates,
                "results": [
                    {"index": r.index, "id": r.id, "status": r.status} for r in outcome.results
                ],
            },
            status=status.HTTP_201_CREATED,
        )


class ItemDetailApi(APIView):
    permission_classes = [HasToken]

    @extend_schema(responses=ItemDetailOutputSerializer, operation_id="items_get")
    def get(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get(item_id=item_id)
        require_dataset_access(request, item.dataset)
        return Response(ItemDetailOutputSerializer(item).data)
