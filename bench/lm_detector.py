"""Fast-DetectGPT LM detector: throughput on CPU, accuracy, and fitting the stored calibration.

    .venv/bin/python bench/lm_detector.py                      # shipped tests/data/lm texts
    .venv/bin/python bench/lm_detector.py --file X.jsonl       # any {"text", "label"} file
    .venv/bin/python bench/lm_detector.py --calibrate --file ../shared/data/detector-train.jsonl

Prints one JSON object: model load time, texts/s and tokens/s of `criteria` (the whole
detector cost: tokenization, forward passes and the criterion), and AUROC, accuracy, TPR at
1%/5% FPR and Brier score of the calibrated probabilities, overall and per `generator` (that
generator's AI texts against all human texts) when the file has the field.

--calibrate fits the logistic calibration (`lm.fit_calibration`, classes weighted 1:1) on the
criteria of --file and stores it in corpus/scoring/detectors/lm_calibration.json under the
model's sha256, with the file's name and sha256. The stored default is fitted on
../shared/data/detector-train.jsonl (GPT-3, Falcon-7B and 2023 chat-model text against human
web and PubMed text), so the engineer-written tests/data/lm stays a held-out check of it.
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
    data["entries"] = [e for e in data["entries"] if e["model_sha256"] != detector.model_sha256] + [
        entry
    ]
    path.write_text(json.dumps(data, indent=2) + "\n")
    return entry


def run(args: argparse.Namespace, rows: list[dict], y: np.ndarray, precision: str) -> dict:
    started = time.perf_counter()
    detector = lm.LMDetector(
        args.model,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        num_threads=args.threads,
        precision=precision,
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
    parser.add_argument("--limit", type=int, default=0, help="first N lines only (0 = all)")
    parser.add_argument("--model", help="a .gguf file or model directory (default: SmolLM2)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=lm.DEFAULT_MAX_TOKENS)
    parser.add_argument("--batch-size", type=int, default=lm.DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--precision",
        default="fp32",
        help="comma-separated: fp32 (torch float32, the CPU default), int8 (dynamic "
        "quantization of the Linear layers), bf16 (the GPU default); each is timed on the same "
        "texts, e.g. --precision fp32,int8",
    )
    parser.add_argument("--calibrate", action="store_true")
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

    rows = read_jsonl(args.file) if args.file else shipped_rows()
    if args.limit:
        rows = rows[: args.limit]
    if not rows:
        raise SystemExit("no texts to score")
    y = labels_of(rows)

    runs = [run(args, rows, y, precision) for precision in precisions]
    result: dict[str, object] = runs[0] if len(runs) == 1 else {"runs": runs}
    if len(runs) > 1:
        result["speedup_cpu_vs_first"] = [
            round(r["texts_per_cpu_s"] / runs[0]["texts_per_cpu_s"], 2) for r in runs
        ]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
