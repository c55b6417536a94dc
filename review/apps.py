from collections.abc import Collection

from django.apps import AppConfig


def _items_claimed(item_ids: Collection[int]) -> set[int]:
    from django.utils import timezone

    from review.models import Claim

    return set(
        Claim.objects.filter(item_id__in=item_ids, expires_at__gt=timezone.now()).values_list(
            "item_id", flat=True
        )
    )


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review"

    def ready(self) -> None:
        # Scoring asks which items are held before re-applying a rule to them (corpus may not
        # import review, so review tells it how to ask).
        from corpus.services.holds import holds_register

        holds_register(_items_claimed)
