"""An item's page: its text (auto-escaped, like every producer text), provenance, lineage tree
and whole history, for admins and the reviewers of its dataset (``corpus.roles``)."""

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from corpus.models import Item
from corpus.roles import dataset_access
from corpus.selectors_audit import item_timeline
from corpus.selectors_lineage import DEFAULT_DEPTH, MAX_DEPTH, item_lineage


@login_required
@require_GET
def item_page(request: HttpRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(Item.objects.select_related("dataset", "source", "score"), pk=item_id)
    may_see = dataset_access(request.user)
    if not may_see(item.dataset_id):
        raise PermissionDenied("Only the reviewers of this dataset and admins see its items.")
    depth_raw = request.GET.get("depth", "")
    depth = int(depth_raw) if depth_raw.isdigit() else DEFAULT_DEPTH
    depth = max(1, min(depth, MAX_DEPTH))
    context = {
        "item": item,
        "score": getattr(item, "score", None),
        "lineage": item_lineage(item=item, depth=depth, may_see=may_see),
        "timeline": item_timeline(item=item),
        "depth": depth,
        "depths": (1, 3, 5, MAX_DEPTH),
        "sampling_text": json.dumps(item.sampling_params, indent=2, sort_keys=True),
        "metadata_text": json.dumps(item.metadata, indent=2, sort_keys=True, ensure_ascii=False),
    }
    return render(request, "corpus/item.html", context)
