"""The review personas (alice and bob review `demo`, charlie reviews nothing, lead is an admin
through the `admin` group) serve the settings tests too."""

from tests.review.conftest import alice, bob, charlie, lead, review_dataset  # noqa: F401
