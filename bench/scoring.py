"""Benchmark of the pure scoring package (corpus.scoring) on one core.

    python bench/scoring.py [--n 5000] [--pairs 2000] [--lsh-sizes 10000,1000000]
                            [--clock cpu|wall] [--json-only]

Measures, on generated ~1 KB texts, in one run:

1. MinHash: our signatures/s against datasketch.MinHash(num_perm=128) with update_batch on the
   same texts and the same shingles, end to end from raw text and for the signature step alone,
   plus both estimators' accuracy (mean absolute error against the exact Jaccard similarity of
   pairs spread over [0, 1]).
2. All cheap signals of an item together (normalize + content hash, MinHash, LSH query + insert
   into the in-memory index, lexical statistics + degeneration, learned-detector probability on
   batches), in items/s.
3. LSH query latency with 10k and 1M items in the in-memory index. The Redis-backed index the
   application uses is measured by the application's own benchmark, not here: its cost is
   dominated by network round trips, not by anything in this package.
4. Near-duplicates under edits (`corpus.scoring.edits`), on the shipped human paragraphs
   (corpus/demo/reference.py) or, with `--edit-texts FILE.jsonl`, on the "text" of each line
   (e.g. ../shared/data/detector-train.jsonl cut to 1 KB): recall of copies with 1/3/5/10/20%
   of their words edited, at the auto-reject and report thresholds, the false-match rate on
   unrelated pairs of the same texts' sentences, and Jaccard against containment for a
   paragraph pasted into a text four times as long.

Prints a table, then one JSON line (the last line of output) for machines. The process pins
itself to one CPU (all its threads included), so the numbers are per core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus.scoring import SCORER_VERSION, edits, lexical, lsh, minhash  # noqa: E402
from corpus.scoring.detectors import LearnedDetector  # noqa: E402
from corpus.scoring.synthetic import ai_text, human_text, make_vocab, mutate  # noqa: E402
from corpus.scoring.text import hash_normalized, prepare  # noqa: E402

try:
    import datasketch
except ImportError:  # the comparison is skipped, everything else still runs
    datasketch = None


def pin_to_one_cpu() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    return cpu


# CPU time of this process by default: the process is pinned to one CPU and single-threaded, so
# CPU seconds are core seconds, and unlike wall time they do not count the time other processes
# on a shared machine hold that core. `--clock wall` measures wall time instead.
clock: Callable[[], float] = time.process_time


def timed(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median time of `repeats` runs (seconds, on `clock`)."""
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def make_texts(rng: np.random.Generator, vocab: list[str], n: int) -> list[str]:
    """~1 KB texts, half in each synthetic style."""
    out = []
    for i in range(n):
        make = ai_text if i % 2 else human_text
        text = make(rng, vocab, 170)
        out.append(text[: text.rfind(" ", 0, 1024)] if len(text) > 1024 else text)
    return out


def make_pairs(rng: np.random.Generator, vocab: list[str], n: int) -> list[tuple[str, str]]:
    """Pairs whose shingle Jaccard is spread evenly over [0, 1] (see tests/scoring)."""
    pairs = []
    for target in rng.uniform(0, 1, n):
        base = make_texts(rng, vocab, 1)[0]
        q = 1.0 - (2 * target / (1 + target)) ** (1 / minhash.SHINGLE_SIZE)
        pairs.append((base, mutate(rng, base, vocab, q)))
    return pairs


def datasketch_shingles(text: str) -> list[bytes]:
    """The same word n-grams we hash, as bytes for datasketch (same normalization)."""
    tokens = prepare(text).tokens
    n = minhash.SHINGLE_SIZE
    return [b" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def bench_minhash(texts: list[str], pairs: list[tuple[str, str]]) -> dict[str, object]:
    n = len(texts)
    res: dict[str, object] = {}
    ours_end_to_end_per_s = n / timed(lambda: minhash.signatures(texts))
    raw = [minhash.doc_shingles(prepare(t)) for t in texts]
    ours_signature_only_per_s = n / timed(lambda: [minhash.signature(x) for x in raw])
    res["ours_end_to_end_per_s"] = ours_end_to_end_per_s
    res["ours_signature_only_per_s"] = ours_signature_only_per_s

    pair_texts = [t for p in pairs for t in p]
    sigs = minhash.signatures(pair_texts)
    exact = np.array(
        [minhash.exact_jaccard(minhash.shingles(a), minhash.shingles(b)) for a, b in pairs]
    )
    ours = np.array(
        [minhash.estimate_jaccard(sigs[2 * i], sigs[2 * i + 1]) for i in range(len(pairs))]
    )
    res["ours_mae"] = float(np.mean(np.abs(ours - exact)))
    res["ours_within_0.08"] = float(np.mean(np.abs(ours - exact) <= 0.08))
    res["pairs"] = len(pairs)
    res["pairs_exact_jaccard_quintiles"] = np.histogram(exact, bins=5, range=(0, 1))[0].tolist()

    if datasketch is None:
        return res

    def ds_end_to_end() -> None:
        for t in texts:
            m = datasketch.MinHash(num_perm=128)
            m.update_batch(datasketch_shingles(t))

    grams = [datasketch_shingles(t) for t in texts]

    def ds_signature_only() -> None:
        for g in grams:
            m = datasketch.MinHash(num_perm=128)
            m.update_batch(g)

    shared = datasketch.MinHash(num_perm=128)

    def ds_signature_only_shared_permutations() -> None:
        for g in grams:
            m = datasketch.MinHash(
                num_perm=128, permutations=shared.permutations, scheme=shared.scheme
            )
            m.update_batch(g)

    ds_end_to_end_per_s = n / timed(ds_end_to_end)
    ds_signature_only_per_s = n / timed(ds_signature_only)
    res["datasketch_end_to_end_per_s"] = ds_end_to_end_per_s
    res["datasketch_signature_only_per_s"] = ds_signature_only_per_s
    res["datasketch_signature_only_shared_perms_per_s"] = n / timed(
        ds_signature_only_shared_permutations
    )
    theirs = []
    for a, b in pairs:
        ma, mb = datasketch.MinHash(num_perm=128), datasketch.MinHash(num_perm=128)
        ma.update_batch(datasketch_shingles(a))
        mb.update_batch(datasketch_shingles(b))
        theirs.append(ma.jaccard(mb))
    err = np.abs(np.array(theirs) - exact)
    res["datasketch_mae"] = float(np.mean(err))
    res["datasketch_within_0.08"] = float(np.mean(err <= 0.08))
    res["datasketch_scheme"] = shared.scheme
    res["speedup_end_to_end"] = ours_end_to_end_per_s / ds_end_to_end_per_s
    res["speedup_signature_only"] = ours_signature_only_per_s / ds_signature_only_per_s
    return res


def train_detector(rng: np.random.Generator, vocab: list[str]) -> LearnedDetector:
    texts = make_texts(rng, vocab, 1000)
    labels = [i % 2 for i in range(len(texts))]
    detector = LearnedDetector()
    detector.fit(texts, labels, seed=0)
    return detector


def bench_pipeline(
    texts: list[str], detector: LearnedDetector, batch: int = 256
) -> dict[str, float]:
    """Every cheap signal per item, batched as a scoring task would do it."""
    stage_time = dict.fromkeys(("prepare_hash", "minhash", "lsh", "lexical", "detector"), 0.0)

    def run() -> None:
        index = lsh.LSHIndex()
        for start in range(0, len(texts), batch):
            chunk = texts[start : start + batch]
            t0 = clock()
            docs = [prepare(t) for t in chunk]
            _hashes = [hash_normalized(d.normalized) for d in docs]
            t1 = clock()
            sigs = minhash.signatures(docs)
            t2 = clock()
            for offset, sig in enumerate(sigs):
                index.query_and_insert(start + offset, sig)
            t3 = clock()
            stats = lexical.docs_stats(docs)
            _flags = [lexical.degeneration(s) for s in stats]
            t4 = clock()
            detector.predict_proba_prepared(docs, stats)
            t5 = clock()
            for key, dt in zip(
                stage_time, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
            ):
                stage_time[key] += dt

    repeats = 3
    total = timed(run, repeats=repeats)
    n = len(texts)
    out = {"items_per_s": n / total, "us_per_item": total / n * 1e6}
    for key, value in stage_time.items():
        out[f"us_{key}"] = value / repeats / n * 1e6
    return out


def bench_lsh(sizes: list[int], rng: np.random.Generator, n_queries: int = 2000) -> dict:
    """Query latency (band keys + bucket lookups) as the in-memory index grows.

    Random uint32 signatures stand in for unrelated texts (which is what MinHash signatures of
    unrelated texts are); half of the queries are near-copies of indexed items (most bands
    equal), half are new.
    """
    out: dict[str, dict[str, float]] = {}
    index = lsh.LSHIndex()
    indexed = 0
    stored: list[np.ndarray] = []
    for size in sorted(sizes):
        before = indexed
        start = clock()
        while indexed < size:
            step = min(100_000, size - indexed)
            sigs = rng.integers(0, 2**32, size=(step, minhash.NUM_PERM), dtype=np.uint32)
            for offset, sig in enumerate(sigs):
                index.insert(indexed + offset, sig)
            stored.append(sigs[: max(1, n_queries // 2 // len(sizes))])
            indexed += step
        fill = clock() - start
        pool = np.concatenate(stored)
        near = pool[rng.integers(0, len(pool), n_queries // 2)].copy()
        near[:, :10] = rng.integers(0, 2**32, size=(len(near), 10), dtype=np.uint32)
        fresh = rng.integers(0, 2**32, size=(n_queries // 2, minhash.NUM_PERM), dtype=np.uint32)
        queries = np.concatenate([near, fresh])

        def query_all(queries: np.ndarray = queries) -> int:
            return sum(len(index.query(q)) for q in queries)

        elapsed = timed(query_all)
        hits = query_all()
        out[str(size)] = {
            "query_us": elapsed / len(queries) * 1e6,
            "insert_us": fill / max(1, indexed - before) * 1e6,
            "candidates_per_query": hits / len(queries),
        }
    return out


# The defaults of corpus.models.ScoringRules (read here without Django).
REJECT_THRESHOLD = 0.5
REPORT_THRESHOLD = 0.3
EDIT_SHARES = (0.01, 0.03, 0.05, 0.10, 0.20)


def edit_paragraphs(path: str | None) -> tuple[str, list[str]]:
    if path is None:
        import ast

        # corpus/demo/reference.py without importing the Django app it sits in.
        source = (Path(__file__).resolve().parent.parent / "corpus/demo/reference.py").read_text()
        tree = ast.parse(source)
        value = next(
            node.value
            for node in tree.body
            if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "REFERENCE"
        )
        return "corpus/demo/reference.py", [t for _, _, t in ast.literal_eval(value)]
    texts = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["text"]
            cut = text[:1100]
            if len(cut) >= 600:
                texts.append(cut[: cut.rfind(" ")] if len(text) > 1100 else cut)
    return path, texts


def bench_edits(path: str | None, copies_per_base: int, pairs: int) -> dict[str, object]:
    source, paragraphs = edit_paragraphs(path)
    bases = edits.kilobyte_texts(paragraphs)
    recall = edits.edit_recall(
        bases,
        EDIT_SHARES,
        copies_per_base=copies_per_base,
        reject_threshold=REJECT_THRESHOLD,
        report_threshold=REPORT_THRESHOLD,
        seed=12,
    )
    false = edits.false_matches(
        paragraphs, n_pairs=pairs, report_threshold=REPORT_THRESHOLD, seed=12
    )
    pasted = edits.pasted_containment(paragraphs[:200], seed=12)
    return {
        "source": source,
        "bases": len(bases),
        "reject_threshold": REJECT_THRESHOLD,
        "report_threshold": REPORT_THRESHOLD,
        "recall": [vars(r) for r in recall],
        "false_matches": {**vars(false), "rate": false.rate},
        "pasted_mean_jaccard": float(np.mean([j for j, _ in pasted])),
        "pasted_mean_containment": float(np.mean([c for _, c in pasted])),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="texts per throughput measurement")
    parser.add_argument("--pairs", type=int, default=2000, help="pairs for estimate accuracy")
    parser.add_argument("--lsh-sizes", default="10000,1000000", help="index sizes, comma list")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--json-only", action="store_true")
    parser.add_argument(
        "--edit-texts", help="JSONL with a 'text' per line (default: the shipped paragraphs)"
    )
    parser.add_argument("--edit-copies", type=int, default=20, help="edited copies per text")
    parser.add_argument("--edit-pairs", type=int, default=5000, help="unrelated pairs")
    parser.add_argument(
        "--only-edits", action="store_true", help="only the near-duplicates-under-edits part"
    )
    parser.add_argument(
        "--detector-file",
        type=Path,
        default=None,
        help="instead of the speed benchmarks: the detector AUROC table (baseline, learned, "
        "learned + LM) on this labelled JSONL file (e.g. ../shared/data/detector-train.jsonl)",
    )
    parser.add_argument(
        "--with-lm", action="store_true", help="with --detector-file: add learned + LM features"
    )
    args = parser.parse_args(argv)
    if args.detector_file is not None:
        from detector_table import main as detector_main  # the detector section, kept apart

        detector_main(args.detector_file, with_lm=args.with_lm, json_only=args.json_only)
        return
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    cpu = pin_to_one_cpu()
    edit_res = bench_edits(args.edit_texts, args.edit_copies, args.edit_pairs)
    if args.only_edits:
        result = {"bench": "scoring", "scorer_version": SCORER_VERSION, "edits": edit_res}
        if not args.json_only:
            print_edits(edit_res)
        print(json.dumps(result, sort_keys=True))
        return
    rng = np.random.default_rng(0)
    vocab = make_vocab(rng, 5000)
    texts = make_texts(rng, vocab, args.n)
    pairs = make_pairs(rng, vocab, args.pairs)
    mean_bytes = float(np.mean([len(t.encode()) for t in texts]))

    mh = bench_minhash(texts, pairs)
    detector = train_detector(rng, vocab)
    pipe = bench_pipeline(texts, detector)
    lsh_res = bench_lsh([int(s) for s in args.lsh_sizes.split(",")], rng)

    result = {
        "bench": "scoring",
        "scorer_version": SCORER_VERSION,
        "n_texts": len(texts),
        "mean_text_bytes": mean_bytes,
        "pinned_cpu": cpu,
        "clock": args.clock,
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "datasketch": getattr(datasketch, "__version__", None),
        "machine": platform.processor() or platform.machine(),
        "minhash": mh,
        "cheap_signals": pipe,
        "lsh_in_memory": lsh_res,
        "edits": edit_res,
    }
    if not args.json_only:
        print_table(result)
        print_edits(edit_res)
    print(json.dumps(result, sort_keys=True))


def print_table(r: dict) -> None:
    mh, pipe = r["minhash"], r["cheap_signals"]
    rows = [
        (
            "texts",
            f"{r['n_texts']} x {r['mean_text_bytes']:.0f} B, cpu {r['pinned_cpu']}, "
            f"{r['clock']} clock, load {r['load_average_1m']:.2f}",
        ),
        ("MinHash ours, text -> signature", f"{mh['ours_end_to_end_per_s']:,.0f} /s"),
        ("MinHash ours, signature step", f"{mh['ours_signature_only_per_s']:,.0f} /s"),
    ]
    if "datasketch_end_to_end_per_s" in mh:
        rows += [
            ("datasketch, text -> signature", f"{mh['datasketch_end_to_end_per_s']:,.0f} /s"),
            ("datasketch, signature step", f"{mh['datasketch_signature_only_per_s']:,.0f} /s"),
            (
                "datasketch, step, shared perms",
                f"{mh['datasketch_signature_only_shared_perms_per_s']:,.0f} /s",
            ),
            (
                "speed-up end to end / step",
                f"{mh['speedup_end_to_end']:.1f}x / {mh['speedup_signature_only']:.1f}x",
            ),
            (
                "estimate MAE ours / datasketch",
                f"{mh['ours_mae']:.4f} / {mh['datasketch_mae']:.4f} ({mh['pairs']} pairs)",
            ),
            (
                "|err| <= 0.08 ours / datasketch",
                f"{mh['ours_within_0.08']:.3f} / {mh['datasketch_within_0.08']:.3f}",
            ),
        ]
    else:
        rows.append(("estimate MAE ours", f"{mh['ours_mae']:.4f}"))
    rows += [
        (
            "all cheap signals",
            f"{pipe['items_per_s']:,.0f} items/s ({pipe['us_per_item']:.0f} us/item)",
        ),
        (
            "  prepare + hash / minhash / lsh",
            f"{pipe['us_prepare_hash']:.0f} / {pipe['us_minhash']:.0f} / {pipe['us_lsh']:.0f} us",
        ),
        (
            "  lexical + degeneration / detector",
            f"{pipe['us_lexical']:.0f} / {pipe['us_detector']:.0f} us",
        ),
    ]
    for size, v in r["lsh_in_memory"].items():
        rows.append(
            (
                f"LSH in-memory, {int(size):,} items",
                f"query {v['query_us']:.1f} us, insert {v['insert_us']:.1f} us, "
                f"{v['candidates_per_query']:.2f} candidates/query",
            )
        )
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def print_edits(e: dict) -> None:
    print(
        f"near-duplicates under edits: {e['bases']} texts of ~1 KB from {e['source']}, "
        f"reject >= {e['reject_threshold']}, report >= {e['report_threshold']}"
    )
    print("  words edited  copies  recall (reject)  recall (report)  Jaccard p1 / mean")
    for r in e["recall"]:
        print(
            f"  {r['share']:>11.0%}  {r['copies']:>6}  {r['recall_reject']:>15.4f}  "
            f"{r['recall_report']:>15.4f}  {r['jaccard_p01']:.3f} / {r['jaccard_mean']:.3f}"
        )
    f = e["false_matches"]
    print(
        f"  unrelated pairs: {f['pairs']}, LSH candidates {f['candidates']}, reported "
        f"{f['reported']} (rate {f['rate']:.4%}), max Jaccard {f['max_jaccard']:.3f}"
    )
    print(
        f"  paragraph pasted into a 4x longer text: Jaccard {e['pasted_mean_jaccard']:.3f}, "
        f"containment {e['pasted_mean_containment']:.3f} (means)"
    )


if __name__ == "__main__":
    main()
