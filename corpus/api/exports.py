"""Export policy, previews, exports and their downloads, and retractions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from corpus import selectors
from corpus.api.pagination import page_query
from corpus.api_support import cursor_encode, errors_response
from corpus.auth import HasToken, require_scope
from corpus.models import ApiToken, Export
from corpus.services.audit import actor_for_token
from corpus.services.exports.build import (
    ExportRequestError,
    export_download_record,
    export_preview,
    export_request,
    export_storage,
)
from corpus.services.items import ItemStateError
from corpus.services.policy import PolicyError, policy_current, policy_set
from corpus.services.retractions import item_retract

CONTENT_TYPES: dict[str, str] = {
    Export.Format.JSONL: "application/jsonl",
    Export.Format.PARQUET: "application/vnd.apache.parquet",
}
CHUNK = 512 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


# --- Downloads (shared with the admin pages) -------------------------------------------------


def _range(header: str, size: int) -> tuple[int, int] | None | bool:
    """The byte range a ``Range`` header asks for: (first, last) inclusive, None to ignore the
    header and send everything (RFC 9110 lets a server ignore a range it does not support, such
    as several ranges, or a malformed one), or False when no byte of the range exists (416)."""
    match = _RANGE_RE.match(header.strip())
    if not match:
        return None
    first_raw, last_raw = match.groups()
    if not first_raw and not last_raw:
        return None
    if not first_raw:  # a suffix: the last N bytes
        suffix = int(last_raw)
        if suffix == 0:
            return False
        return (max(0, size - suffix), size - 1) if size else False
    first = int(first_raw)
    last = int(last_raw) if last_raw else size - 1
    if last_raw and last < first:
        return None
    if first >= size:
        return False
    return first, min(last, size - 1)


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _stream(fh: Any, first: int, length: int) -> Iterator[bytes]:
    with fh:
        fh.seek(first)
        left = length
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def export_file_response(request: HttpRequest, export: Export, *, actor: str) -> HttpResponseBase:
    """The export's file, streamed: ETag (the sha256), If-None-Match (304), Range and If-Range
    (206, or 416 with the size). Every response that sends bytes is audited with ``actor``."""
    if export.status != Export.Status.READY:
        return JsonResponse(
            {"errors": [{"message": f"export {export.pk} is {export.status}, not ready"}]},
            status=409,
        )
    size = export.size or 0
    etag = f'"{export.sha256}"'
    common = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=31536000, immutable",
        "Content-Disposition": f'attachment; filename="{export.download_name}"',
    }
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and _etag_matches(if_none_match, etag):
        return HttpResponse(status=304, headers={"ETag": etag})
    wanted: tuple[int, int] | None | bool = None
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if range_header and (if_range is None or if_range.strip() == etag):
        wanted = _range(range_header, size)
    if wanted is False:
        return HttpResponse(status=416, headers={**common, "Content-Range": f"bytes */{size}"})
    try:
        fh = export_storage().open(export.file, "rb")
    except FileNotFoundError:
        return JsonResponse(
            {"errors": [{"message": f"the file of export {export.pk} is missing from storage"}]},
            status=410,
        )
    if not isinstance(wanted, tuple):
        export_download_record(export=export, actor=actor, byte_range=None, size=size)
        # FileResponse: the WSGI server may send it with sendfile(), without copying it through
        # Python.
        response = FileResponse(
            fh,
            as_attachment=True,
            filename=export.download_name,
            content_type=CONTENT_TYPES[export.format],
            headers=common,
        )
        response.block_size = CHUNK
        response["Content-Length"] = str(size)
        return response
    first, last = wanted
    length = last - first + 1
    export_download_record(
        export=export, actor=actor, byte_range=f"bytes={first}-{last}", size=length
    )
    return StreamingHttpResponse(
        _stream(fh, first, length),
        status=206,
        content_type=CONTENT_TYPES[export.format],
        headers={
            **common,
            "Content-Length": str(length),
            "Content-Range": f"bytes {first}-{last}/{size}",
        },
    )


# --- Serializers ---------------------------------------------------------------------------


class ScopeInputSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=Export.Mode.values, required=False)
    since = serializers.IntegerField(required=False, min_value=1)


class ExportCreateInputSerializer(ScopeInputSerializer):
    format = serializers.ChoiceField(choices=Export.Format.values, default="jsonl")


class RetractInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class CapDocSerializer(serializers.Serializer):
    share = serializers.FloatField(required=False, min_value=0, max_value=1)
    count = serializers.IntegerField(required=False, min_value=0)


class PolicyDocSerializer(serializers.Serializer):
    """The policy document, for the OpenAPI schema (validation is corpus.services.policy)."""

    mode = serializers.ChoiceField(choices=Export.Mode.values, default="accumulate")
    max_synthetic_share = serializers.FloatField(allow_null=True, required=False)
    max_unknown_share = serializers.FloatField(allow_null=True, required=False)
    min_human_share = serializers.FloatField(allow_null=True, required=False)
    source_caps = serializers.DictField(child=CapDocSerializer(), required=False)
    generator_caps = serializers.DictField(child=CapDocSerializer(), required=False)
    max_generation = serializers.IntegerField(allow_null=True, required=False, min_value=0)
    max_per_cluster = serializers.IntegerField(allow_null=True, required=False, min_value=1)
    on_violation = serializers.ChoiceField(choices=["sample", "block"], default="sample")
    seed = serializers.IntegerField(default=0, min_value=0)


class ExportOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    dataset = serializers.CharField(source="dataset.slug")
    status = serializers.CharField()
    format = serializers.CharField()
    mode = serializers.CharField()
    since = serializers.IntegerField(source="since_id", allow_null=True)
    policy_version = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    rows_total = serializers.IntegerField(allow_null=True)
    rows_written = serializers.IntegerField()
    progress = serializers.FloatField(allow_null=True)
    size = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField()
    merkle_root = serializers.CharField()
    error = serializers.CharField()
    download_url = serializers.SerializerMethodField()

    def get_policy_version(self, export: Export) -> int:
        return export.policy.version if export.policy is not None else 0

    def get_download_url(self, export: Export) -> str | None:
        if export.status != Export.Status.READY:
            return None
        return f"/api/v1/datasets/{export.dataset.slug}/exports/{export.pk}/download"


class ExportDetailOutputSerializer(ExportOutputSerializer):
    manifest = serializers.JSONField()


class PolicyOutputSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(allow_null=True)
    policy = PolicyDocSerializer()


def _policy_data(version: Any) -> dict[str, Any]:
    return {
        "version": version.version,
        "created_at": version.created_at,
        "created_by": version.created_by,
        "policy": version.spec.as_json(),
    }


# --- Views ---------------------------------------------------------------------------------


class ExportPolicyGetApi(APIView):
    """The dataset's current export policy (admin tokens)."""

    permission_classes = [HasToken]

    OutputSerializer = PolicyOutputSerializer

    @extend_schema(responses=OutputSerializer, operation_id="export_policy_get")
    def get(self, request: Request, slug: str) -> Response:
        dataset = selectors.dataset_get(slug=slug)
        require_scope(request, ApiToken.Scope.ADMIN, dataset)
        data = _policy_data(policy_current(dataset=dataset))
        return Response(self.OutputSerializer(data).data)


class ExportPolicySetApi(APIView):
    """Sets a new version of the dataset's export policy (admin tokens)."""

    permission_classes = [HasToken]

    InputSerializer = PolicyDocSerializer
    OutputSerializer = PolicyOutputSerializer

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer},
        operation_id="export_policy_put",
        description="The whole policy document; omitted fields take their defaults. Every PUT "
        "makes a new version.",
    )
    def put(self, request: Request, slug: str) -> Response:
        dataset = selectors.dataset_get(slug=slug)
        token = require_scope(request, ApiToken.Scope.ADMIN, dataset)
        try:
            version = policy_set(dataset=dataset, raw=request.data, actor=actor_for_token(token))
        except PolicyError as exc:
            return errors_response(exc.errors)
        return Response(self.OutputSerializer(_policy_data(version)).data)


class ExportPreviewApi(APIView):
    """What an export would contain now under the policy; writes nothing (consume tokens)."""

    permission_classes = [HasToken]

    @extend_schema(
        request=ScopeInputSerializer,
        responses={200: OpenApiResponse(description="counts and cuts")},
        operation_id="exports_preview",
    )
    def post(self, request: Request, slug: str) -> Response:
        dataset = selectors.dataset_get(slug=slug)
        require_scope(request, ApiToken.Scope.CONSUME, dataset)
        serializer = ScopeInputSerializer(data=request.data if request.data else {})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            preview = export_preview(
                dataset=dataset, mode=data.get("mode"), since_id=data.get("since")
            )
        except ExportRequestError as exc:
            return errors_response(exc.errors)
        return Response(preview)


class ExportListApi(APIView):
    """The dataset's exports, newest first (consume tokens)."""

    permission_classes = [HasToken]

    OutputSerializer = ExportOutputSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("status", enum=Export.Status.values),
            OpenApiParameter("cursor", str, description="opaque; from the previous page's next"),
            OpenApiParameter("limit", int, description="page size, at most 100"),
        ],
        responses=OutputSerializer(many=True),
        operation_id="exports_list",
    )
    def get(self, request: Request, slug: str) -> Response:
        dataset = selectors.dataset_get(slug=slug)
        require_scope(request, ApiToken.Scope.CONSUME, dataset)
        errors = []
        status_filter = request.query_params.get("status")
        if status_filter and status_filter not in Export.Status.values:
            errors.append({"field": "status", "message": f"must be one of {Export.Status.values}"})
        query = page_query(
            request.query_params, key="before", errors=errors, default_limit=20, max_limit=100
        )
        if errors:
            return errors_response(errors)
        page = selectors.export_list(
            dataset=dataset,
            status=status_filter or None,
            before_id=query.position,
            limit=query.limit,
        )
        more = len(page) == query.limit
        return Response(
            {
                "results": self.OutputSerializer(page, many=True).data,
                "next": cursor_encode({"before": page[-1].pk}) if page and more else None,
            }
        )


class ExportCreateApi(APIView):
    """Requests an export; it is built in the background (consume tokens)."""

    permission_classes = [HasToken]

    InputSerializer = ExportCreateInputSerializer
    OutputSerializer = ExportOutputSerializer

    @extend_schema(
        request=InputSerializer,
        responses={202: OutputSerializer},
        operation_id="exports_create",
    )
    def post(self, request: Request, slug: str) -> Response:
        dataset = selectors.dataset_get(slug=slug)
        token = require_scope(request, ApiToken.Scope.CONSUME, dataset)
        serializer = self.InputSerializer(data=request.data if request.data else {})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            export = export_request(
                dataset=dataset,
                actor=actor_for_token(token),
                format=data["format"],
                mode=data.get("mode"),
                since_id=data.get("since"),
            )
        except ExportRequestError as exc:
            return errors_response(exc.errors)
        body = self.OutputSerializer(export).data
        url = f"/api/v1/datasets/{dataset.slug}/exports/{export.pk}/"
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


def _export_get(request: Request, slug: str, export_id: int) -> Export:
    dataset = selectors.dataset_get(slug=slug)
    require_scope(request, ApiToken.Scope.CONSUME, dataset)
    return selectors.export_get(dataset=dataset, export_id=export_id)


class ExportDetailApi(APIView):
    """Status, progress and (once ready) the manifest (consume tokens)."""

    permission_classes = [HasToken]

    @extend_schema(responses=ExportDetailOutputSerializer, operation_id="exports_get")
    def get(self, request: Request, slug: str, export_id: int) -> Response:
        export = _export_get(request, slug, export_id)
        return Response(ExportDetailOutputSerializer(export).data)


class AnyMediaJSONRenderer(JSONRenderer):
    """Lets a download be asked for with any Accept header; only errors are rendered by it."""

    media_type = "*/*"


class ExportDownloadApi(APIView):
    """The export's file, streamed, with ETag and Range support (consume tokens)."""

    permission_classes = [HasToken]
    renderer_classes = [JSONRenderer, AnyMediaJSONRenderer]

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="the file"),
            (206, "application/octet-stream"): OpenApiResponse(description="a byte range"),
            304: OpenApiResponse(description="If-None-Match matched the ETag"),
            409: OpenApiResponse(description="not ready"),
            416: OpenApiResponse(description="range not satisfiable"),
        },
        operation_id="exports_download",
    )
    def get(self, request: Request, slug: str, export_id: int) -> HttpResponseBase:
        export = _export_get(request, slug, export_id)
        assert isinstance(request.auth, ApiToken)
        return export_file_response(request, export, actor=actor_for_token(request.auth))


class ItemRetractApi(APIView):
    """Retract an approved item, with a reason (admin tokens)."""

    permission_classes = [HasToken]

    InputSerializer = RetractInputSerializer

    class OutputSerializer(serializers.Serializer):
        item_id = serializers.IntegerField()
        state = serializers.CharField(source="item.state")
        reason = serializers.CharField()
        actor = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer}, operation_id="items_retract"
    )
    def post(self, request: Request, item_id: int) -> Response:
        item = selectors.item_with_dataset_get(item_id=item_id)
        token = require_scope(request, ApiToken.Scope.ADMIN, item.dataset)
        serializer = self.InputSerializer(data=request.data if request.data else {})
        serializer.is_valid(raise_exception=True)
        try:
            retraction = item_retract(
                item_id=item.pk,
                reason=serializer.validated_data["reason"],
                actor=actor_for_token(token),
            )
        except ItemStateError as exc:
            return errors_response([{"message": str(exc)}], status.HTTP_409_CONFLICT)
        except ValueError as exc:
            return errors_response([{"field": "reason", "message": str(exc)}])
        return Response(self.OutputSerializer(retraction).data)
