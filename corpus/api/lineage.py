"""GET /api/v1/items/{id}/lineage/: an item's parents and children as bounded-depth trees."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from corpus import selectors
from corpus.api_support import errors_response
from corpus.auth import HasToken, require_dataset_access
from corpus.selectors_lineage import DEFAULT_DEPTH, MAX_DEPTH, item_lineage


class ItemLineageApi(APIView):
    """Any token of the item's dataset. Each node carries its generation depth; ``more`` marks a
    node whose own links lie beyond ``depth``, ``repeat`` one already shown elsewhere in the
    tree (a shared ancestor)."""

    permission_classes = [HasToken]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "depth", int, description=f"levels each way, 1 to {MAX_DEPTH} (default 3)"
            )
        ],
        responses=OpenApiTypes.OBJECT,
        operation_id="items_lineage",
    )
    def get(self, request: Request, item_id: int) -> Response:
        item = selectors.item_with_dataset_get(item_id=item_id)
        token = require_dataset_access(request, item.dataset)
        depth_raw = request.query_params.get("depth", str(DEFAULT_DEPTH))
        if not depth_raw.isdigit() or not 1 <= int(depth_raw) <= MAX_DEPTH:
            return errors_response(
                [{"field": "depth", "message": f"must be an integer from 1 to {MAX_DEPTH}"}]
            )
        lineage = item_lineage(
            item=item,
            depth=int(depth_raw),
            may_see=lambda dataset_id: token.dataset_id in (None, dataset_id),
        )
        return Response(lineage)
