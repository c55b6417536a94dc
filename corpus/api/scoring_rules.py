"""The scoring rules of a dataset as JSON: read them, replace them (admin tokens)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from corpus import selectors
from corpus.api_support import errors_response
from corpus.auth import HasToken, require_scope
from corpus.models import ApiToken, Dataset, ScoringRules
from corpus.services.audit import actor_for_token
from corpus.services.scoring_rules import (
    ScoringRulesError,
    detector_in_use,
    scoring_rules_get,
    scoring_rules_set,
    scoring_rules_values,
)


class ScoringRulesDocSerializer(serializers.Serializer):
    """The document a PUT sends (schema only: the service validates, naming each bad field)."""

    reject_exact_duplicates = serializers.BooleanField(
        required=False, help_text="Auto-reject an item whose normalized text already exists."
    )
    reject_near_duplicates = serializers.BooleanField(
        required=False,
        help_text="Auto-reject a near-duplicate of an approved or reference item at or above "
        "near_duplicate_threshold.",
    )
    near_duplicate_threshold = serializers.FloatField(
        required=False, min_value=0, max_value=1, help_text="Jaccard on word 5-grams, 0 to 1."
    )
    report_threshold = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        help_text="Matches at or above it are shown to reviewers; at most "
        "near_duplicate_threshold.",
    )
    reject_degenerate = serializers.BooleanField(
        required=False, help_text="Auto-reject degenerate (repetitive, looping) text."
    )


class DetectorOutputSerializer(serializers.Serializer):
    learned = serializers.DictField()
    lm = serializers.BooleanField(help_text="Whether the Fast-DetectGPT LM detector runs too.")


class ScoringRulesOutputSerializer(serializers.Serializer):
    dataset = serializers.CharField()
    rules = ScoringRulesDocSerializer()
    updated_at = serializers.DateTimeField(allow_null=True)
    detector = DetectorOutputSerializer()


def _output(dataset: Dataset, rules: ScoringRules) -> dict[str, Any]:
    return {
        "dataset": dataset.slug,
        "rules": scoring_rules_values(rules),
        "updated_at": rules.updated_at if rules.pk else None,
        "detector": detector_in_use(dataset=dataset),
    }


class ScoringRulesGetApi(APIView):
    """The dataset's scoring rules (admin tokens)."""

    permission_classes = [HasToken]

    OutputSerializer = ScoringRulesOutputSerializer

    @extend_schema(responses=OutputSerializer, operation_id="scoring_rules_get")
    def get(self, request: Request, slug: str) -> Response:
        dataset = selectors.dataset_get(slug=slug)
        require_scope(request, ApiToken.Scope.ADMIN, dataset)
        rules = scoring_rules_get(dataset=dataset)
        return Response(self.OutputSerializer(_output(dataset, rules)).data)


class ScoringRulesSetApi(APIView):
    """Replaces the dataset's scoring rules (admin tokens). Audited; the next scoring batch
    uses them."""

    permission_classes = [HasToken]

    InputSerializer = ScoringRulesDocSerializer
    OutputSerializer = ScoringRulesOutputSerializer

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(description='{"errors": [{"field": ..., "message": ...}]}'),
        },
        operation_id="scoring_rules_put",
        description="The whole rule set; omitted fields take their defaults. Items already "
        "queued keep their state until rescored (manage.py rescore).",
    )
    def put(self, request: Request, slug: str) -> Response:
        dataset = selectors.dataset_get(slug=slug)
        token = require_scope(request, ApiToken.Scope.ADMIN, dataset)
        if not isinstance(request.data, dict):
            return errors_response([{"message": "the rules must be a JSON object"}])
        try:
            rules = scoring_rules_set(
                dataset=dataset, values=dict(request.data), actor=actor_for_token(token)
            )
        except ScoringRulesError as exc:
            return errors_response(exc.errors)
        return Response(self.OutputSerializer(_output(dataset, rules)).data)
