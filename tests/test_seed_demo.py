"""seed_demo: the demo dataset, its people and texts; idempotent; through the ingest service."""

import io
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import TestCase

from corpus.demo import demo_seed
from corpus.demo.reference import REFERENCE
from corpus.demo.synthetic import BATCHES
from corpus.models import ApiToken, AuditEvent, Dataset, Export, Item
from corpus.scoring import lexical, minhash
from corpus.scoring.text import content_hash
from corpus.services.audit_verify import audit_verify
from dashboard.models import DashboardState
from dashboard.selectors import dashboard_get
from dashboard.services.demo import LEFT_QUEUED
from review.models import Decision

pytestmark = pytest.mark.django_db

User = get_user_model()


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def seed_corpus() -> None:
    """Only the corpus part of `seed_demo`: users, dataset, items, their scoring enqueued."""
    demo_seed(password="demo")


def jaccard(a: str, b: str) -> float:
    x, y = set(minhash.shingles(a).tolist()), set(minhash.shingles(b).tolist())
    return len(x & y) / len(x | y)


def demo_items() -> dict[str, dict]:
    """The prose items of the demo (chat and code items are checked on their own below)."""
    return {
        item["external_id"]: item
        for _, _, items in BATCHES
        for item in items
        if item.get("kind", "text") == "text"
    }


def test_seed_demo_creates_people_groups_and_dataset(settings):
    settings.SYNTHGATE_DEMO_PASSWORD = "correct horse"
    # when
    seed()
    # then the reviewers review `demo`, the admin is a superuser, all in their groups
    demo = Dataset.objects.get(slug="demo")
    assert sorted(demo.reviewers.values_list("username", flat=True)) == ["reviewer1", "reviewer2"]
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert sorted(
        Group.objects.get(name="reviewer").user_set.values_list("username", flat=True)
    ) == [
        "reviewer1",
        "reviewer2",
    ]
    assert list(Group.objects.get(name="admin").user_set.values_list("username", flat=True)) == [
        "admin"
    ]
    for name in ("reviewer1", "reviewer2", "admin"):
        user = User.objects.get(username=name)
        assert user.check_password("correct horse"), name
        assert not user.check_password("demo")
    # and no token is made: keys are secrets, printed once by create_token
    assert ApiToken.objects.count() == 0


def test_seed_demo_loads_reference_and_generated_items_through_ingest(
    django_capture_on_commit_callbacks,
):
    # when the corpus part of the demo is seeded (the command then scores and reviews it)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = demo_seed(password="demo")
    # then the human paragraphs are approved reference items, generation 0
    reference = Item.objects.filter(source__name="reference-essays")
    assert reference.count() == len(REFERENCE) >= 25
    assert set(reference.values_list("origin", "state", "is_reference", "generation")) == {
        ("human", "approved", True, 0)
    }
    # and the generated items wait for scoring, from three named, versioned generators
    generated = Item.objects.filter(origin="synthetic")
    assert set(generated.values_list("state", flat=True)) == {"pending"}
    assert set(generated.values_list("generator_model", "generator_version")) == {
        ("acme-chat", "1.2"),
        ("orbit-7b", "0.3"),
        ("lumen-instruct", "2.0"),
        ("helpdesk-assistant", "4.1"),
        ("orbit-coder", "0.9"),
    }
    # and all three kinds are there
    assert set(Item.objects.values_list("kind", flat=True)) == {"text", "chat", "code"}
    assert all(item.prompt and item.sampling_params for item in generated)
    assert Item.objects.filter(origin="unknown").count() == 2
    # and rewrites of rewrites reach generation depth 3, with their lineage stored
    faq = Item.objects.get(external_id="lumen-index-faq")
    assert faq.generation == 3
    assert faq.parents.get().external_id == "lumen-index-exec"
    assert Item.objects.get(external_id="lumen-water-verse").generation == 3
    assert max(Item.objects.values_list("generation", flat=True)) == 3
    assert Item.objects.get(external_id="lumen-choir-blurb").generation == 1
    assert Item.objects.get(external_id="lumen-coast-guide").parents.count() == 2
    # and each source's batch went through the ingest service: audited, scoring enqueued
    assert AuditEvent.objects.filter(action="items.reference_loaded").count() == 1
    assert AuditEvent.objects.filter(action="items.ingested").count() == len(BATCHES) - 1
    assert len(callbacks) == len(BATCHES)
    assert audit_verify() == (AuditEvent.objects.count(), None)
    assert report.items_created == Item.objects.count()


def test_seed_demo_twice_creates_nothing_new(django_capture_on_commit_callbacks):
    # given a seeded demo
    seed()
    before = (
        Item.objects.count(),
        User.objects.count(),
        Group.objects.count(),
        AuditEvent.objects.count(),
    )
    # when seeded again
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        output = seed()
    # then nothing is created, audited or enqueued
    after = (
        Item.objects.count(),
        User.objects.count(),
        Group.objects.count(),
        AuditEvent.objects.count(),
    )
    assert after == before
    # (the rollup's alert check refreshes the /healthz cache on commit; it enqueues nothing)
    assert [c for c in callbacks if "alerts_evaluate" not in c.__qualname__] == []
    assert "demo already seeded" in output


def test_seed_demo_gives_the_demo_a_review_history_once():
    # when the demo is seeded
    output = seed()
    # then its texts are scored: nothing waits for the worker; a few are left in the queue
    demo = Dataset.objects.get(slug="demo")
    states = Counter(Item.objects.filter(dataset=demo).values_list("state", flat=True))
    assert states["pending"] == 0, states
    assert 0 < states["queued"] <= LEFT_QUEUED, states
    # and both reviewers decided, through the review service (audited), with reasons on rejects
    decisions = Decision.objects.filter(dataset=demo)
    by_reviewer = Counter(decisions.values_list("reviewer__username", flat=True))
    assert set(by_reviewer) == {"reviewer1", "reviewer2"}
    assert decisions.filter(verdict="approve").count() > decisions.filter(verdict="reject").count()
    rejects = decisions.filter(verdict="reject")
    assert rejects.exists() and not rejects.filter(reason="").exists()
    assert AuditEvent.objects.filter(action="review.decided").count() == decisions.count()
    # and human texts were approved, synthetic ones partly approved and partly rejected
    assert states["approved"] > Item.objects.filter(is_reference=True).count()
    assert states["rejected"] > 0
    assert Item.objects.filter(
        dataset=demo, origin="synthetic", state="approved", is_reference=False
    ).exists()
    # and one accumulate export was built, synchronously, with the approved items
    export = Export.objects.get(dataset=demo)
    assert (export.mode, export.status) == ("accumulate", "ready")
    assert 0 < export.rows_written <= states["approved"]
    # and the dashboard was rolled up once
    assert DashboardState.objects.filter(dataset=demo).exists()
    assert "dashboard rolled up" in output
    counts = (decisions.count(), Export.objects.count(), AuditEvent.objects.count())
    # when seeded again
    seed()
    # then no decision, export or audit event is added
    assert (decisions.count(), Export.objects.count(), AuditEvent.objects.count()) == counts


def test_demo_dashboard_charts_have_data_after_seed():
    # given a seeded demo
    seed()
    demo = Dataset.objects.get(slug="demo")
    admin = User.objects.get(username="admin")
    # when the admin's dashboard is read
    board = dashboard_get(dataset=demo, user=admin, is_admin=True)
    # then the approved set's origin chart has a day with human and synthetic shares
    (day,) = board.chart("approved_share").rows
    _, approved, human, synthetic, _unknown = day
    assert approved > 0 and human > 0 and synthetic > 0
    # and the export's origin chart has the export, and tail coverage is above zero
    assert len(board.chart("export_share").rows) == 1
    assert board.chart("tail_coverage").rows[-1][1] > 0
    # and the reviewers' agreement is measured on items with two votes
    assert "on " in board.chart("agreement").headline, board.chart("agreement").headline


def test_seed_demo_resets_a_changed_demo_password(settings):
    # given a demo whose reviewer changed password
    seed()
    user = User.objects.get(username="reviewer1")
    user.set_password("something else")
    user.save()
    # when seeded again
    output = seed()
    # then the printed demo login works again, and the reset is audited
    user.refresh_from_db()
    assert user.check_password(settings.SYNTHGATE_DEMO_PASSWORD)
    assert "password of: reviewer1" in output
    event = AuditEvent.objects.filter(action="demo.users_seeded").latest("seq")
    assert event.payload["password_reset"] == ["reviewer1"]


def test_seed_demo_completes_an_existing_demo_dataset():
    # given a `demo` dataset created by hand, without reviewers, holding one item
    call_command("create_dataset", "demo", stdout=io.StringIO())
    # when seeded
    seed()
    # then the reviewers are added (audited) and the items loaded
    demo = Dataset.objects.get(slug="demo")
    assert demo.reviewers.count() == 2
    assert AuditEvent.objects.filter(action="dataset.reviewers_added").count() == 1
    assert Item.objects.filter(dataset=demo).count() == sum(len(items) for _, _, items in BATCHES)


def test_seed_demo_completes_a_partly_seeded_demo():
    # given a demo (not yet reviewed) from which one generated item is missing (e.g. an older
    # demo version)
    seed_corpus()
    item = Item.objects.get(external_id="orbit-owls")
    item.delete()
    # when seeded again
    seed()
    # then only that item is added back
    assert Item.objects.filter(external_id="orbit-owls").count() == 1
    assert Item.objects.count() == sum(len(items) for _, _, items in BATCHES)


def test_demo_texts_are_distinct_except_the_designed_duplicate():
    items = demo_items()
    hashes = Counter(content_hash(item["text"]) for item in items.values())
    repeated = [h for h, n in hashes.items() if n > 1]
    assert repeated == [content_hash(items["acme-sundial"]["text"])]
    assert items["acme-sundial"]["text"] != items["orbit-sundial"]["text"]


def test_demo_texts_show_each_case_to_the_scoring_rules():
    """The demo is meant to show the gate at work: looping outputs trip the degeneration rules,
    near-copies overlap their reference paragraph above or between the thresholds, and the clean
    outputs trip nothing."""
    items = demo_items()
    reference = {ext: text for ext, _, text in REFERENCE}
    for ext, item in items.items():
        case = item["metadata"]["demo_case"]
        degenerate, reason = lexical.degeneration(item["text"])
        assert degenerate == (case == "degenerate"), (ext, reason)
        nearest = max(jaccard(item["text"], text) for text in reference.values())
        if case in ("clean", "rewrite", "unknown_origin", "human_contribution"):
            assert nearest < 0.3, ext
    near = {
        ext: item
        for ext, item in items.items()
        if item["metadata"]["demo_case"] == "near_duplicate"
    }
    overlaps = sorted(
        max(jaccard(item["text"], text) for text in reference.values()) for item in near.values()
    )
    assert len([j for j in overlaps if j >= 0.8]) >= 3  # auto-rejected by the default rule
    assert len([j for j in overlaps if 0.5 <= j < 0.8]) >= 2  # lighter copies, rejected too


def test_demo_scored_by_the_workers_service_ends_in_the_expected_states(
    django_capture_on_commit_callbacks,
):
    # given the seeded demo
    seed_corpus()
    # when the scoring service runs over it, reference items first (as their batch is first;
    # committing indexes them for the near-duplicate search)
    from corpus.services.scoring import items_score

    for is_reference in (True, False):
        with django_capture_on_commit_callbacks(execute=True):
            items_score(
                item_ids=list(
                    Item.objects.filter(is_reference=is_reference).values_list("pk", flat=True)
                )
            )
    # then each demo case lands where it was written to land
    states = {
        item.external_id: (item.metadata["demo_case"], item.state, item.state_reason)
        for item in Item.objects.all()
    }
    for ext, (case, state, reason) in states.items():
        if case == "reference":
            assert state == "approved", ext
        elif case in ("clean", "rewrite", "unknown_origin", "human_contribution"):
            assert state == "queued", (ext, reason)
        elif case == "degenerate":
            assert (state, reason.split(":")[0]) == ("auto_rejected", "degenerate"), ext
        elif case == "exact_duplicate":
            assert (state, reason.split(":")[0]) == ("auto_rejected", "exact_duplicate"), ext
    # every near-copy of a reference paragraph, light edits included (word-bigram Jaccard 0.70
    # to 0.97, threshold 0.5), is rejected naming its reference paragraph
    near = [v for v in states.values() if v[0] == "near_duplicate"]
    assert len(near) == 5
    for _, state, reason in near:
        assert state == "auto_rejected" and "with reference item" in reason, reason


@pytest.mark.parametrize("order", ["as_seeded", "reversed"])
def test_demo_one_word_edit_of_reference_paragraph_3_ends_auto_rejected(order):
    """The demo seeds one batch per source, each its own scoring task, so a worker may score the
    generated items before the reference paragraphs; the outcome must not depend on it."""
    from corpus.services.scoring import items_score

    # given the demo seeded, its scoring tasks captured as `seed_demo` enqueues them
    with TestCase.captureOnCommitCallbacks(execute=False):
        seed_corpus()
    batches = [
        list(Item.objects.filter(source__name=source).order_by("pk").values_list("pk", flat=True))
        for source, _, _ in BATCHES
    ]
    # when the batches are scored in the seeded order, or generated items first
    for ids in batches if order == "as_seeded" else reversed(batches):
        with TestCase.captureOnCommitCallbacks(execute=True):
            items_score(item_ids=ids)
    # then the one-word edit ("exactly" inserted) of the third reference paragraph is rejected,
    # naming the paragraph, and the paragraph shows the match too
    assert REFERENCE[2][0] == "ref-bike-chain"
    copy = Item.objects.get(external_id="acme-bike-chain")
    paragraph = Item.objects.get(external_id="ref-bike-chain")
    assert copy.state == "auto_rejected"
    assert f"with reference item {paragraph.pk} " in copy.state_reason
    assert copy.score.near_duplicate_of_id == paragraph.pk
    assert paragraph.score.near_duplicate_of_id == copy.pk
    assert paragraph.state == "approved"


def test_demo_chat_and_code_items_show_their_cases_once_scored():
    """Scored one batch after another (as one worker would), the demo's chat and code items land
    where their case says: near-copies point at their original, loops are auto-rejected."""
    from corpus.services.scoring import items_score

    with TestCase.captureOnCommitCallbacks(execute=False):
        seed_corpus()
    for source in ["reference-essays", "helpdesk-assistant", "orbit-coder"]:
        ids = list(Item.objects.filter(source__name=source).values_list("id", flat=True))
        with TestCase.captureOnCommitCallbacks(execute=True):
            items_score(item_ids=ids)
    by_ext = {i.external_id: i for i in Item.objects.filter(kind__in=["chat", "code"])}
    assert by_ext["chat-loop"].state == "auto_rejected"
    assert by_ext["code-loop"].state == "auto_rejected"
    assert by_ext["chat-refund-copy"].score.near_duplicate_of_id == by_ext["chat-refund"].pk
    copy = by_ext["code-parse-duration-copy"].score
    assert copy.near_duplicate_of_id == by_ext["code-parse-duration"].pk
    for ext in ["chat-refund", "chat-puncture", "code-median", "code-parse-duration", "code-sql"]:
        assert by_ext[ext].state == "queued", (ext, by_ext[ext].state_reason)


@pytest.mark.django_db(transaction=True)
def test_seed_demo_as_make_run_runs_it_rejects_every_near_copy_before_reviewers_decide():
    """`make run` runs `seed_demo` before it starts the worker, committing as it goes: the
    scoring tasks the ingest enqueues wait in the broker, and the demo's reviewers decide the
    queue in the same process. The near-copies must be rejected by their rule first, naming the
    reference paragraph, whatever order the items were ingested in, and never decided by hand."""
    # when
    seed()
    # then
    near = list(Item.objects.filter(metadata__demo_case="near_duplicate").select_related("score"))
    assert len(near) == 5
    for item in near:
        assert item.state == "auto_rejected", (item.external_id, item.state)
        assert "with reference item" in item.state_reason, item.state_reason
        original = Item.objects.get(pk=item.score.near_duplicate_of_id)
        assert original.is_reference
        # both directions are stored: the paragraph shows its copy too
        assert original.score.near_duplicate_of_id is not None
        assert not Decision.objects.filter(item=item).exists()
    # and the item the issue named: the one-word edit of the third reference paragraph
    copy = Item.objects.get(external_id="acme-bike-chain")
    paragraph = Item.objects.get(external_id="ref-bike-chain")
    assert copy.score.near_duplicate_of_id == paragraph.pk
    assert paragraph.score.near_duplicate_of_id == copy.pk
    # every demo item has been scored, the reference paragraphs included
    assert not Item.objects.filter(score__isnull=True).exists()
