"""How well near-duplicate search survives light edits, measured on real prose.

Pure and seeded: the test suite asserts these figures on the project's shipped human paragraphs
(corpus/demo/reference.py) and bench/scoring.py prints them. Definitions:

copies
    About 1 KB texts (a paragraph, topped up with the next paragraph's sentences) with a given
    share of their words edited, each edit a replace, insert or delete of one word (a random
    word of the same texts), and in half the copies two sentences swapped as well.
recall
    Share of copies whose original is found by the LSH index *and* verified at or above a
    Jaccard threshold: at the auto-reject threshold, what the gate rejects; at the report
    threshold, what a reviewer is shown.
false-match rate
    Share of pairs of unrelated texts of the same domain (about 1 KB mixes of the same
    paragraphs' sentences, no sentence shared between the two) that are reported: a candidate
    verified at or above the report threshold.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import lsh, minhash

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def kilobyte_texts(paragraphs: Sequence[str], size: int = 950) -> list[str]:
    """One text per paragraph, topped up with the next paragraph's sentences to ``size``
    characters (so texts are about 1 KB whatever the paragraphs' lengths)."""
    out = []
    for i, paragraph in enumerate(paragraphs):
        text = paragraph
        following = sentences(paragraphs[(i + 1) % len(paragraphs)])
        while len(text) < size and following:
            text += " " + following.pop(0)
        out.append(text)
    return out


def edit_words(text: str, share: float, rng: random.Random, vocab: Sequence[str]) -> str:
    """``text`` with round(share * words) word edits (replace, insert or delete), and in half
    the cases two of its sentences swapped."""
    parts = [s.split(" ") for s in sentences(text)]
    n_words = sum(len(p) for p in parts)
    for _ in range(round(share * n_words)):
        words = parts[rng.randrange(len(parts))]
        at = rng.randrange(len(words))
        op = rng.randrange(3)
        if op == 0:
            words[at] = rng.choice(vocab)
        elif op == 1:
            words.insert(at, rng.choice(vocab))
        elif len(words) > 1:
            del words[at]
    if len(parts) > 1 and rng.random() < 0.5:
        i, j = rng.sample(range(len(parts)), 2)
        parts[i], parts[j] = parts[j], parts[i]
    return " ".join(" ".join(p) for p in parts)


def unrelated_pairs(
    paragraphs: Sequence[str], n_pairs: int, rng: random.Random, size: int = 950
) -> list[tuple[str, str]]:
    """Pairs of ~``size``-character mixes of the paragraphs' sentences sharing no sentence."""
    pool = [s for p in paragraphs for s in sentences(p)]

    def mix(exclude: set[int]) -> tuple[str, set[int]]:
        text, used = "", set()
        while len(text) < size:
            k = rng.randrange(len(pool))
            if k in used or k in exclude:
                continue
            used.add(k)
            text = f"{text} {pool[k]}" if text else pool[k]
        return text, used

    pairs = []
    for _ in range(n_pairs):
        a, used = mix(set())
        b, _ = mix(used)
        pairs.append((a, b))
    return pairs


@dataclass(frozen=True)
class EditRecall:
    share: float
    copies: int
    recall_reject: float  # found and verified at >= reject threshold
    recall_report: float  # found and verified at >= report threshold
    jaccard_p01: float  # 1st percentile of the copies' Jaccard with their original
    jaccard_mean: float


def edit_recall(
    bases: Sequence[str],
    shares: Sequence[float],
    *,
    copies_per_base: int,
    reject_threshold: float,
    report_threshold: float,
    seed: int,
) -> list[EditRecall]:
    """Recall of edited copies of ``bases`` at each share of edited words (see module doc)."""
    rng = random.Random(seed)
    vocab = sorted({w for b in bases for w in b.split()})
    index = lsh.LSHIndex()
    base_shingles = [minhash.shingles(b) for b in bases]
    for i, sh in enumerate(base_shingles):
        index.insert(i, minhash.signature(sh))
    out = []
    for share in shares:
        found_reject = found_report = 0
        jaccards = []
        n = 0
        for i, base in enumerate(bases):
            for _ in range(copies_per_base):
                copy = minhash.shingles(edit_words(base, share, rng, vocab))
                j = minhash.exact_jaccard(copy, base_shingles[i])
                jaccards.append(j)
                candidates = index.query(minhash.signature(copy))
                n += 1
                if i in candidates:
                    found_reject += j >= reject_threshold
                    found_report += j >= report_threshold
        jaccards.sort()
        out.append(
            EditRecall(
                share=share,
                copies=n,
                recall_reject=found_reject / n,
                recall_report=found_report / n,
                jaccard_p01=jaccards[int(0.01 * (len(jaccards) - 1))],
                jaccard_mean=sum(jaccards) / len(jaccards),
            )
        )
    return out


@dataclass(frozen=True)
class FalseMatches:
    pairs: int
    candidates: int  # pairs LSH proposed for verification
    reported: int  # verified at >= report threshold
    max_jaccard: float

    @property
    def rate(self) -> float:
        return self.reported / self.pairs


def false_matches(
    paragraphs: Sequence[str], *, n_pairs: int, report_threshold: float, seed: int
) -> FalseMatches:
    """How often unrelated texts of one domain would be reported as near-duplicates."""
    rng = random.Random(seed)
    candidates = reported = 0
    worst = 0.0
    for a, b in unrelated_pairs(paragraphs, n_pairs, rng):
        sa, sb = minhash.shingles(a), minhash.shingles(b)
        j = minhash.exact_jaccard(sa, sb)
        worst = max(worst, j)
        keys_a = set(lsh.band_keys(minhash.signature(sa)))
        if keys_a & set(lsh.band_keys(minhash.signature(sb))):
            candidates += 1
            reported += j >= report_threshold
    return FalseMatches(n_pairs, candidates, reported, worst)


def pasted_containment(paragraphs: Sequence[str], *, seed: int) -> list[tuple[float, float]]:
    """(Jaccard, containment) of each paragraph against a text four times as long that contains
    it whole among three other paragraphs: Jaccard is low, containment says it is all there."""
    rng = random.Random(seed)
    out = []
    for i, paragraph in enumerate(paragraphs):
        others = rng.sample([p for k, p in enumerate(paragraphs) if k != i], 3)
        long = " ".join([others[0], paragraph, others[1], others[2]])
        a, b = minhash.shingles(paragraph), minhash.shingles(long)
        out.append((minhash.exact_jaccard(a, b), minhash.containment(a, b)))
    return out
