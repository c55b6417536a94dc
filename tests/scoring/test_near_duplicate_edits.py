"""Near-duplicate search survives light edits: generated edits of the project's own human
paragraphs (corpus/demo/reference.py), on a fixed seed, against the targets of issue 12."""

from corpus.demo.reference import REFERENCE
from corpus.models import ScoringRules
from corpus.scoring import edits

PARAGRAPHS = [text for _, _, text in REFERENCE]
REJECT = ScoringRules._meta.get_field("near_duplicate_threshold").default
REPORT = ScoringRules._meta.get_field("report_threshold").default


def test_edited_copies_are_found_and_rejected_at_the_default_threshold():
    # given ~1 KB texts and 10 edited copies of each per share of edited words
    bases = edits.kilobyte_texts(PARAGRAPHS)
    assert len(bases) >= 25 and all(900 <= len(b) <= 1400 for b in bases)
    # when each copy is looked up in an index of the originals
    results = {
        r.share: r
        for r in edits.edit_recall(
            bases,
            [0.01, 0.03, 0.05, 0.10],
            copies_per_base=10,
            reject_threshold=REJECT,
            report_threshold=REPORT,
            seed=12,
        )
    }
    # then (found by LSH and verified at the auto-reject threshold):
    assert results[0.01].recall_reject >= 0.99
    assert results[0.03].recall_reject >= 0.99
    assert results[0.05].recall_reject >= 0.95
    assert results[0.10].recall_reject >= 0.95
    assert all(r.copies >= 250 for r in results.values())


def test_unrelated_texts_of_one_domain_are_almost_never_reported():
    # given 2,000 pairs of ~1 KB mixes of the same paragraphs' sentences, no sentence shared
    found = edits.false_matches(PARAGRAPHS, n_pairs=2000, report_threshold=REPORT, seed=12)
    # then at most 0.1% are reported as near-duplicates, and none comes near the reject rule
    assert found.rate <= 0.001
    assert found.max_jaccard < REJECT / 2


def test_a_paragraph_pasted_into_a_long_text_shows_by_containment():
    pairs = edits.pasted_containment(PARAGRAPHS, seed=12)
    assert all(containment >= 0.99 for _, containment in pairs)
    assert all(jaccard < 0.4 for jaccard, _ in pairs)  # why Jaccard alone would hide it
