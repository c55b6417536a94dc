"""Fast-DetectGPT LM detector: throughput on CPU, accuracy, and fitting the stored calibration.

    .venv/bin/python bench/lm_detector.py                      # shipped tests/data/lm texts
    .venv/bin/python bench/lm_detector.py --file X.jsonl       # any {"text", "label"} file
    .venv/bin/python bench/lm_detector.py --calibrate --file ../shared/data/detector-train.jsonl
    .venv/bin/python bench/lm_detector.py --file F --limit 400 --token-caps 64,96,128,192,256
    .venv/bin/python bench/lm_detector.py --llama-cpp     # needs pip install llama-cpp-python

Prints one JSON object: model load time, texts/s and tokens/s of `criteria` (the whole
detector cost: tokenization, forward passes and the criterion), and AUROC, accuracy, TPR at
1%/5% FPR and Brier score of the calibrated probabilities, overall and per `generator` (that
generator's AI texts against all human texts) when the file has the field.

--calibrate fits the logistic calibration (`lm.fit_calibration`, classes weighted 1:1) on the
criteria of --file and stores it in corpus/scoring/detectors/lm_calibration.json under the
model's sha256, with the file's name and sha256. The stored default is fitted on
../shared/data/detector-train.jsonl (GPT-3, Falcon-7B and 2023 chat-model text against human
web and PubMed text), so the engineer-written tests/data/lm stays a held-out check of it.
--token-caps scores every text once at the largest cap and derives the criterion at each smaller
cap from the first positions of that pass (causal attention: the first k positions of a long
text are the text cut to k + 1 tokens; tests/scoring/test_lm_detector.py checks it in float32;
in bf16 the other shapes of a capped pass round differently, by about 0.01). Per cap it
reports the AUROC overall and per generator, the paired bootstrap interval of its difference
to the largest cap (1,000 resamples of the same texts), and texts per CPU-second timed on
--cap-timing-n texts scored at that cap. AUROC only: the stored calibration was fitted at one
cap, and the criterion, a z-score, grows with the number of tokens.

--llama-cpp times llama.cpp (llama-cpp-python, not in requirements-lm.txt: it compiles from
source for about 8 minutes on 2 cores) on the shipped GGUF file and on Q8_0 and Q4_0
requantizations of it, against torch float32 on the same tokens, in tokens per CPU-second.

--limit N takes N lines evenly spaced over the file (every generator and domain in proportion
when the file is grouped), not the first N.

Needs requirements-lm.txt; runs with one torch thread unless --threads says otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corpus.scoring.detectors import evaluate, lm  # noqa: E402

SHIPPED = ROOT / "tests" / "data" / "lm"
CALIBRATION_VERSION = "cal1"


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def shipped_rows() -> list[dict]:
    return read_jsonl(SHIPPED / "human.jsonl") + read_jsonl(SHIPPED / "machine.jsonl")


def labels_of(rows: list[dict]) -> np.ndarray:
    bad = sorted({r.get("label") for r in rows} - {"human", "ai"}, key=str)
    if bad:
        raise SystemExit(f"labels must be 'human' or 'ai', found {bad}")
    return np.array([r["label"] == "ai" for r in rows], dtype=np.int64)


def write_calibration(
    detector: lm.LMDetector, fitted: lm.Calibration, source: Path, y: np.ndarray, auroc: float
) -> dict:
    path = lm.CALIBRATION_FILE
    data = (
        json.loads(path.read_text())
        if path.is_file()
        else {"format": lm.CALIBRATION_FORMAT, "entries": []}
    )
    entry = {
        "model_sha256": detector.model_sha256,
        "model": detector.model_path.name,
        "version": fitted.version,
        "slope": round(fitted.slope, 6),
        "intercept": round(fitted.intercept, 6),
        "max_tokens": detector.max_tokens,
        "fitted_on": source.name,
        "fitted_on_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "n_human": int((y == 0).sum()),
        "n_ai": int((y == 1).sum()),
        "criterion_auroc": round(auroc, 4),
        "command": f"bench/lm_detector.py --calibrate --file {source} "
        f"--max-tokens {detector.max_tokens}",
        "fitted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    # One entry per model and cap: refitting at one cap keeps the others.
    data["entries"] = [
        e
        for e in data["entries"]
        if (e["model_sha256"], e.get("max_tokens")) != (detector.model_sha256, detector.max_tokens)
    ] + [entry]
    path.write_text(json.dumps(data, indent=2) + "\n")
    return entry


def evenly(rows: list[dict], limit: int) -> list[dict]:
    """`limit` rows evenly spaced over `rows` (all of them when limit is 0 or too large)."""
    if not limit or limit >= len(rows):
        return rows
    return [rows[i] for i in np.linspace(0, len(rows) - 1, limit).round().astype(int)]


def token_caps(args: argparse.Namespace, rows: list[dict], y: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    caps = sorted({int(c) for c in args.token_caps.split(",")})
    if caps[0] < 2:
        raise SystemExit("--token-caps: every cap must be at least 2")
    detector = lm.LMDetector(
        args.model, max_tokens=caps[-1], batch_size=args.batch_size, num_threads=args.threads
    )
    texts = [r["text"] for r in rows]
    started = time.process_time()
    terms = detector.position_terms(texts)
    full_cpu_s = time.process_time() - started

    def criteria_at(cap: int) -> np.ndarray:
        out = np.full(len(rows), np.nan)
        for i, t in enumerate(terms):
            if t is not None and min(len(t), cap - 1) >= detector.min_tokens:
                out[i] = lm.criterion_of_terms(t[: cap - 1])[0]
        return out

    at = {c: criteria_at(c) for c in caps}
    keep = np.all([np.isfinite(v) for v in at.values()], axis=0)
    ys = y[keep]
    rng = np.random.default_rng(0)
    boots = [rng.integers(0, keep.sum(), keep.sum()) for _ in range(1000)]
    boots = [b for b in boots if 0 < ys[b].sum() < len(b)]
    scored = {c: v[keep] for c, v in at.items()}

    def aurocs(c: int) -> np.ndarray:
        return np.array([roc_auc_score(ys[b], scored[c][b]) for b in boots])

    top = aurocs(caps[-1])
    generators = sorted({r.get("generator") for r in rows if r["label"] == "ai"} - {None})
    gen_of = np.array([r.get("generator") for r in rows])[keep]
    timing = evenly(rows, args.cap_timing_n)
    result: dict[str, object] = {
        "n_scored_at_every_cap": int(keep.sum()),
        "full_pass_texts_per_cpu_s": round(len(rows) / full_cpu_s, 3),
        "mean_tokens_uncapped_within_largest": round(
            float(np.mean([len(t) + 1 for t in terms if t is not None])), 1
        ),
        "caps": {},
    }
    for cap in caps:
        detector.max_tokens = cap
        detector.criteria([timing[0]["text"]])
        started = time.process_time()
        _, n_tokens = detector.criteria([r["text"] for r in timing])
        cpu_s = time.process_time() - started
        diff = aurocs(cap) - top
        entry: dict[str, object] = {
            "auroc": round(float(roc_auc_score(ys, scored[cap])), 4),
            "auroc_minus_largest_cap_95pct": [
                round(float(v), 4) for v in np.percentile(diff, [2.5, 97.5])
            ],
            "texts_per_cpu_s": round(len(timing) / cpu_s, 3),
            "mean_tokens": round(float(np.mean(n_tokens + 1)), 1),
        }
        if generators:
            human = gen_of == "human"
            entry["auroc_per_generator"] = {
                g: round(float(roc_auc_score(ys[m], scored[cap][m])), 4)
                for g in generators
                for m in [human | (gen_of == g)]
            }
        result["caps"][cap] = entry  # type: ignore[index]
    base = result["caps"][caps[-1]]["texts_per_cpu_s"]  # type: ignore[index]
    for cap in caps:
        entry = result["caps"][cap]  # type: ignore[index]
        entry["speedup_vs_largest_cap"] = round(entry["texts_per_cpu_s"] / base, 2)
    return result


def llama_cpp(args: argparse.Namespace, rows: list[dict]) -> dict:
    import ctypes
    import tempfile

    try:
        import llama_cpp as lc
    except ImportError:
        raise SystemExit(
            "--llama-cpp needs llama-cpp-python: pip install llama-cpp-python"
        ) from None
    texts = [r["text"].strip() for r in evenly(rows, args.cap_timing_n)]
    detector = lm.LMDetector(
        args.model, max_tokens=args.max_tokens, num_threads=args.threads, precision="fp32"
    )
    detector.criteria(texts[:1])
    started = time.process_time()
    _, n = detector.criteria(texts)
    ref = float((n + 1).sum()) / (time.process_time() - started)
    out: dict[str, object] = {"texts": len(texts), "torch_fp32_tokens_per_cpu_s": round(ref, 1)}
    source = detector.model_path
    with tempfile.TemporaryDirectory() as tmp:
        files = {"shipped": source}
        for name, ftype in (
            ("Q8_0", lc.LLAMA_FTYPE_MOSTLY_Q8_0),
            ("Q4_0", lc.LLAMA_FTYPE_MOSTLY_Q4_0),
        ):
            params = lc.llama_model_quantize_default_params()
            params.ftype, params.allow_requantize = ftype, True
            files[name] = Path(tmp) / f"{name}.gguf"
            if lc.llama_model_quantize(
                str(source).encode(), str(files[name]).encode(), ctypes.byref(params)
            ):
                raise SystemExit(f"llama.cpp could not requantize {source} to {name}")
        for name, path in files.items():
            llm = lc.Llama(
                model_path=str(path),
                n_ctx=args.max_tokens,
                n_batch=args.max_tokens,
                n_ubatch=args.max_tokens,
                n_threads=args.threads,
                n_threads_batch=args.threads,
                logits_all=True,
                verbose=False,
            )
            ids = [llm.tokenize(t.encode(), add_bos=False)[: args.max_tokens] for t in texts]
            llm.reset()
            llm.eval(ids[0])
            started = time.process_time()
            for one in ids:
                llm.reset()
                llm.eval(one)
            tps = sum(map(len, ids)) / (time.process_time() - started)
            out[f"llama_cpp_{name}"] = {
                "tokens_per_cpu_s": round(tps, 1),
                "vs_torch_fp32": round(tps / ref, 2),
            }
            del llm
    return out


def run(args: argparse.Namespace, rows: list[dict], y: np.ndarray, precision: str) -> dict:
    """Score every row with one detector; `precision` "default" leaves the choice to it."""
    started = time.perf_counter()
    detector = lm.LMDetector(
        args.model,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        num_threads=args.threads,
        precision=None if precision == "default" else precision,
    )
    load_s = time.perf_counter() - started
    detector.criteria([r["text"] for r in rows[:2]])  # first-call allocations, not timed
    started, cpu_started = time.perf_counter(), time.process_time()
    crit, n_tokens = detector.criteria([r["text"] for r in rows])
    score_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started

    result: dict[str, object] = {
        "detector": detector.name,
        "model": str(detector.model_path),
        "device": detector.device,
        "precision": detector.precision,
        "threads": args.threads,
        "max_tokens": detector.max_tokens,
        "batch_size": detector.batch_size,
        "n": len(rows),
        "load_s": round(load_s, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "texts_per_s": round(len(rows) / score_s, 3),
        # CPU seconds of this process: with one thread, texts per core-second, which the
        # neighbours of a shared machine do not distort as they do wall time.
        "texts_per_cpu_s": round(len(rows) / cpu_s, 3),
        "tokens_per_s": round(float((n_tokens + 1).sum()) / score_s, 1),
        "mean_tokens": round(float(np.mean(n_tokens + 1)), 1),
        "unscored_short_texts": int(np.isnan(crit).sum()),
    }
    if args.calibrate:
        fitted = lm.fit_calibration(crit, y, CALIBRATION_VERSION)
        auroc = evaluate(y, crit)["auroc"]
        result["calibration"] = write_calibration(detector, fitted, args.file, y, float(auroc))
        detector.calibration = fitted

    keep = np.isfinite(crit)
    proba = detector.calibration.apply(crit)
    result["version"] = detector.version
    result["metrics"] = evaluate(y[keep], proba[keep])
    generators = {r.get("generator") for r in rows if r["label"] == "ai"} - {None}
    if len(generators) > 1:
        human = np.array([r["label"] == "human" for r in rows])
        result["per_generator"] = {
            g: evaluate(y[m], proba[m])
            for g in sorted(generators)
            for m in [keep & (human | np.array([r.get("generator") == g for r in rows]))]
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, help="JSONL with text and label (default: shipped)")
    parser.add_argument(
        "--limit", type=int, default=0, help="N lines evenly spaced over the file (0 = all)"
    )
    parser.add_argument("--model", help="a .gguf file or model directory (default: SmolLM2)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=lm.DEFAULT_MAX_TOKENS)
    parser.add_argument(
        "--batch-size",
        type=int,
        help="texts per forward pass (default: the detector's, 8; 1 in bf16)",
    )
    parser.add_argument(
        "--precision",
        default="default",
        help="comma-separated: default (the detector's own choice: bf16 on a GPU or a CPU with "
        "native bf16, else fp32), fp32 (torch float32), bf16 (weights in bfloat16), int8 "
        "(dynamic quantization of the Linear layers); each is timed on the same texts, e.g. "
        "--precision fp32,bf16",
    )
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument(
        "--token-caps", help="comma-separated caps, e.g. 64,128,256: AUROC and speed per cap"
    )
    parser.add_argument(
        "--cap-timing-n", type=int, default=24, help="texts timed per cap / engine (default 24)"
    )
    parser.add_argument("--llama-cpp", action="store_true", help="time llama.cpp against torch")
    args = parser.parse_args()
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    if args.calibrate and len(precisions) != 1:
        parser.error("--calibrate takes one --precision")
    if args.calibrate and not args.file:
        parser.error("--calibrate needs --file: the shipped data are the held-out check")
    if args.calibrate and args.limit:
        parser.error("--calibrate fits on the whole file")

    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"needs requirements-lm.txt ({exc.name} is not installed)") from None

    rows = evenly(read_jsonl(args.file) if args.file else shipped_rows(), args.limit)
    if not rows:
        raise SystemExit("no texts to score")
    y = labels_of(rows)
    if args.token_caps or args.llama_cpp:
        out = token_caps(args, rows, y) if args.token_caps else llama_cpp(args, rows)
        out.update(file=str(args.file or SHIPPED), file_rows=len(rows), threads=args.threads)
        out["load_average_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(out, indent=2))
        return

    runs = [run(args, rows, y, precision) for precision in precisions]
    result: dict[str, object] = runs[0] if len(runs) == 1 else {"runs": runs}
    if len(runs) > 1:
        result["speedup_cpu_vs_first"] = [
            round(r["texts_per_cpu_s"] / runs[0]["texts_per_cpu_s"], 2) for r in runs
        ]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
