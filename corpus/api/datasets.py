"""Datasets: list and create (admin tokens)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from corpus import selectors
from corpus.api_support import errors_response
from corpus.auth import HasToken, require_scope
from corpus.models import ApiToken
from corpus.services.audit import actor_for_token
from corpus.services.datasets import DatasetError, dataset_create


class DatasetOutputSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class DatasetListApi(APIView):
    """The datasets the token may see (admin tokens)."""

    permission_classes = [HasToken]

    OutputSerializer = DatasetOutputSerializer

    @extend_schema(responses=OutputSerializer(many=True), operation_id="datasets_list")
    def get(self, request: Request) -> Response:
        token = require_scope(request, ApiToken.Scope.ADMIN)
        datasets = selectors.dataset_list(token=token)
        return Response({"results": self.OutputSerializer(datasets, many=True).data})


class DatasetCreateApi(APIView):
    """Create a dataset (admin tokens not bound to one dataset)."""

    permission_classes = [HasToken]

    class InputSerializer(serializers.Serializer):
        slug = serializers.SlugField(max_length=64)
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    OutputSerializer = DatasetOutputSerializer

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer},
        operation_id="datasets_create",
    )
    def post(self, request: Request) -> Response:
        token = require_scope(request, ApiToken.Scope.ADMIN)
        if token.dataset_id is not None:
            return errors_response(
                [{"message": "A token bound to one dataset cannot create datasets."}], 403
            )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            dataset = dataset_create(actor=actor_for_token(token), **serializer.validated_data)
        except DatasetError as exc:
            return errors_response([{"field": "slug", "message": str(exc)}])
        return Response(self.OutputSerializer(dataset).data, status=status.HTTP_201_CREATED)
