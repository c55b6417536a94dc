"""GET /api/v1/audit/: the audit log for admin tokens, in chain order, with filters and an
opaque keyset cursor."""

from dataclasses import replace

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from corpus.api.pagination import page_query
from corpus.api_support import cursor_encode, errors_response
from corpus.auth import HasToken, require_scope
from corpus.models import ApiToken
from corpus.selectors_audit import audit_event_list, audit_filters_parse


class AuditEventOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    time = serializers.DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    dataset = serializers.CharField(source="dataset.slug", allow_null=True, default=None)
    payload = serializers.JSONField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class AuditEventsApi(APIView):
    """Events after the cursor, oldest first. The next cursor is given even on a short page, so
    a pipeline can poll it; a token bound to a dataset sees that dataset's events only."""

    permission_classes = [HasToken]

    @extend_schema(
        parameters=[
            OpenApiParameter("actor", str, description='"user:3", "token:5:loader", "system"'),
            OpenApiParameter("action", str, description='exact, or a prefix ending in "."'),
            OpenApiParameter("object", str, description='"item:42", "dataset:demo", "export"'),
            OpenApiParameter("dataset", str, description="dataset slug"),
            OpenApiParameter("since", str, description="ISO 8601 time, inclusive"),
            OpenApiParameter("until", str, description="ISO 8601 time, exclusive"),
            OpenApiParameter("cursor", str, description="opaque; from the previous page's next"),
            OpenApiParameter("limit", int, description="page size, at most 1000"),
        ],
        responses=AuditEventOutputSerializer(many=True),
        operation_id="audit_list",
    )
    def get(self, request: Request) -> Response:
        token = require_scope(request, ApiToken.Scope.ADMIN)
        filters, errors = audit_filters_parse(request.query_params)
        page = page_query(request.query_params, key="after", errors=errors)
        after = page.position
        if errors:
            return errors_response(errors)
        if token.dataset_id is not None:
            if filters.dataset is not None and filters.dataset.pk != token.dataset_id:
                raise exceptions.PermissionDenied(
                    f"This token is not valid for dataset '{filters.dataset.slug}'."
                )
            filters = replace(filters, dataset=token.dataset)
        events = audit_event_list(filters=filters, after_seq=after, limit=page.limit)
        last = events[-1].seq if events else after
        return Response(
            {
                "results": AuditEventOutputSerializer(events, many=True).data,
                "next": cursor_encode({"after": last or 0}),
            }
        )
