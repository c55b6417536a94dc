import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.scoring.detectors.base import Detector
from corpus.scoring.detectors.evaluation import evaluate
from corpus.scoring.detectors.learned import LearnedDetector, split_indices
from corpus.services import detectors

LABELS = {"human": 0, "ai": 1}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


class Command(BaseCommand):
    help = (
        "Evaluate an AI-text detector on a labelled JSONL file (text, label human|ai) and print "
        "one JSON object: AUROC, accuracy, TPR at 1% and 5% FPR, texts/s, per generator and domain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--detector", choices=["learned", "lm"], default="learned")
        parser.add_argument(
            "--train-split",
            type=float,
            default=None,
            help="first train the learned detector on this share of the file, evaluate on the rest",
        )
        parser.add_argument(
            "--group-field",
            default=None,
            help="with --train-split: rows sharing it stay on one side",
        )
        parser.add_argument("--limit", type=int, default=None, help="read at most N rows")
        parser.add_argument("--seed", type=int, default=0)

    def _read(self, path: Path, limit: int | None) -> list[dict[str, Any]]:
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        rows = []
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    row["_y"] = LABELS[row["label"]]
                    if not isinstance(row["text"], str):
                        raise TypeError
                except (ValueError, KeyError, TypeError):
                    raise CommandError(
                        f"{path}:{number}: expected a JSON object with text and label human|ai"
                    ) from None
                rows.append(row)
                if limit and len(rows) >= limit:
                    break
        if not rows:
            raise CommandError(f"{path}: no rows")
        return rows

    def handle(self, *args: Any, **options: Any) -> None:
        rows = self._read(options["file"], options["limit"])
        split = options["train_split"]
        if split is not None and not 0.0 < split < 1.0:
            raise CommandError("--train-split must be between 0 and 1")
        if split is not None and options["detector"] != "learned":
            raise CommandError("--train-split trains the learned detector; use --detector learned")
        result: dict[str, Any] = {"file": str(options["file"]), "detector": options["detector"]}
        if split is not None:
            y_all = np.array([r["_y"] for r in rows])
            field = options["group_field"]
            groups = [str(r.get(field, i)) for i, r in enumerate(rows)] if field else None
            train, test = split_indices(y_all, groups, test_size=1.0 - split, seed=options["seed"])
            learned = LearnedDetector()
            try:
                learned.fit(
                    [rows[i]["text"] for i in train],
                    y_all[train],
                    groups=None if groups is None else [groups[i] for i in train],
                    seed=options["seed"],
                )
            except ValueError as exc:
                raise CommandError(f"training failed: {exc}") from None
            result["trained_on"] = int(train.size)
            rows = [rows[i] for i in test]
            detector: Detector = learned
        elif options["detector"] == "lm":
            try:
                from corpus.scoring.detectors import lm
            except ImportError as exc:
                raise CommandError(
                    f"the LM detector needs requirements-lm.txt installed ({exc})"
                ) from None
            detector = lm.load_default()
        else:
            detector = detectors.detector_default()
        result["version"] = detector.version
        texts = [r["text"] for r in rows]
        start = time.perf_counter()
        scores = np.asarray(detector.predict_proba(texts), dtype=np.float64)
        elapsed = time.perf_counter() - start
        y = np.array([r["_y"] for r in rows])
        result.update(evaluate(y, scores))
        result["texts_per_second"] = round(len(texts) / elapsed, 1) if elapsed else None
        for field in ("generator", "domain"):
            values = sorted({str(r[field]) for r in rows if field in r})
            if not values:
                continue
            per: dict[str, Any] = {}
            for value in values:
                mask = np.array([str(r.get(field)) == value for r in rows])
                # Per-generator AUROC is against all human rows: a generator alone is one class.
                if field == "generator":
                    mask = mask | (y == 0)
                per[value] = evaluate(y[mask], scores[mask])
            result[f"by_{field}"] = per
        self.stdout.write(json.dumps(_clean(result), indent=2, default=str))
