"""The demo a newcomer sees after `make run`: dataset `demo`, its reviewers and an admin, and
texts written for this project (see ``reference`` and ``synthetic``)."""

from corpus.demo.seed import DEMO_SLUG, SeedReport, demo_seed

__all__ = ["DEMO_SLUG", "SeedReport", "demo_seed"]
