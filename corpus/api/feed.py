"""The feed: approvals, undos and retractions in commit order, behind an opaque cursor."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from corpus import selectors
from corpus.api.pagination import page_query
from corpus.api_support import cursor_encode, errors_response
from corpus.auth import HasToken, require_scope
from corpus.models import ApiToken
from corpus.services.feed import feed_list


class FeedApi(APIView):
    """Entries after the cursor, oldest first (consume tokens).

    ``approved`` entries carry the item as an export row; ``reopened`` (an undone approval) and
    ``retracted`` (with its ``reason``) name the item to drop. ``next`` is always given: keep it
    and poll with it; a pipeline that crashes resumes from the last ``next`` it stored, with no
    entry missed and none repeated.
    """

    permission_classes = [HasToken]

    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", str, description="opaque; from the previous page's next"),
            OpenApiParameter("limit", int, description="page size, at most 1000"),
        ],
        responses={200: OpenApiResponse(description="results and next")},
        operation_id="feed_list",
    )
    def get(self, request: Request, slug: str) -> Response:
        dataset = selectors.dataset_get(slug=slug)
        require_scope(request, ApiToken.Scope.CONSUME, dataset)
        errors: list[dict[str, Any]] = []
        query = page_query(request.query_params, key="feed", errors=errors)
        if errors:
            return errors_response(errors)
        page = feed_list(dataset=dataset, after_seq=query.position or 0, limit=query.limit)
        results = [
            {key: value for key, value in entry.items() if key != "seq"} for entry in page.entries
        ]
        return Response({"results": results, "next": cursor_encode({"feed": page.last_seq})})
