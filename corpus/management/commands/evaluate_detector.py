import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.scoring.detectors.evaluation import evaluate, stratified_sample
from corpus.scoring.detectors.holdout import assessment_summary, holdout_compare
from corpus.scoring.detectors.learned import OK, TOO_SHORT, Assessment
from corpus.services import detectors

LABELS = {"human": 0, "ai": 1}
# Fields that, when the file has them, keep related rows (a prompt's human and AI answers, one
# document's paragraphs) on one side of the split unless --group-field says otherwise.
GROUP_FIELDS = ("group", "pair_id", "prompt_id", "document_id")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class Command(BaseCommand):
    help = (
        "Evaluate an AI-text detector on a labelled JSONL file (text, label human|ai) and print "
        "one JSON object: AUROC, accuracy, TPR at 1% and 5% FPR, Brier, texts/s, abstentions, "
        "per generator and domain; with --train-split, the TF-IDF baseline beside it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--detector", choices=["learned", "lm"], default="learned")
        parser.add_argument(
            "--train-split",
            type=float,
            default=None,
            help="retrain the learned detector (and the baseline) on this share of the file, "
            "evaluate both on the rest",
        )
        parser.add_argument(
            "--group-field",
            default=None,
            help="rows sharing this field stay on one side of the split (default: the first of "
            f"{', '.join(GROUP_FIELDS)} the file has)",
        )
        parser.add_argument(
            "--no-groups", action="store_true", help="split stratified by label, ignoring groups"
        )
        parser.add_argument(
            "--with-lm",
            action="store_true",
            help="with --train-split: also fuse the LM tier's features into a retrained model",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="evaluate N rows sampled evenly across label x generator (seeded)",
        )
        parser.add_argument("--seed", type=int, default=0)

    def _read(self, path: Path) -> list[dict[str, Any]]:
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
                row["_line"] = number
                rows.append(row)
        if not rows:
            raise CommandError(f"{path}: no rows")
        return rows

    def handle(self, *args: Any, **options: Any) -> None:
        rows = self._read(options["file"])
        limit = options["limit"]
        if limit is not None:
            if limit < 1:
                raise CommandError("--limit must be at least 1")
            strata = [f"{r['label']}|{r.get('generator', '')}" for r in rows]
            rows = [rows[i] for i in stratified_sample(strata, limit, seed=options["seed"])]
        split = options["train_split"]
        if split is not None and not 0.0 < split < 1.0:
            raise CommandError("--train-split must be between 0 and 1")
        if split is not None and options["detector"] != "learned":
            raise CommandError("--train-split trains the learned detector; use --detector learned")
        if options["with_lm"] and split is None:
            raise CommandError(
                "--with-lm fuses LM features into a retrained model: add --train-split"
            )
        field = None
        if not options["no_groups"]:
            field = options["group_field"] or next(
                (name for name in GROUP_FIELDS if all(name in r for r in rows)), None
            )
            if field and not all(field in r for r in rows):
                raise CommandError(f"--group-field {field}: not every row has it")
        result: dict[str, Any] = {
            "file": str(options["file"]),
            "detector": options["detector"],
            "n_rows": len(rows),
        }
        texts = [r["text"] for r in rows]
        y_all = np.array([r["_y"] for r in rows])
        if split is not None:
            groups = [str(r[field]) for r in rows] if field else None
            result["group_field"] = field
            lm_features = self._lm_features(texts) if options["with_lm"] else None
            try:
                holdout = holdout_compare(
                    texts, y_all, groups, test_size=1.0 - split, seed=options["seed"]
                )
                if lm_features is not None:
                    fused = holdout_compare(
                        texts,
                        y_all,
                        groups,
                        test_size=1.0 - split,
                        seed=options["seed"],
                        lm_features=lm_features,
                    )
                    result["learned_lm"] = fused.result["learned"]
            except ValueError as exc:
                raise CommandError(f"training failed: {exc}") from None
            detector = holdout.detector
            result["trained_on"] = holdout.result["trained_on"]
            result["baseline"] = holdout.result["baseline"]
            rows = [rows[i] for i in holdout.test]
            assessment = holdout.assessment
            elapsed = None
        else:
            use_lm = options["detector"] == "lm"
            detector = self._lm() if use_lm else detectors.detector_default()
            start = time.perf_counter()
            if options["detector"] == "lm":
                p = np.asarray(detector.predict_proba(texts), dtype=np.float64)
                status = np.where(np.isfinite(p), OK, TOO_SHORT).astype(object)
                assessment = Assessment(probability=p, status=status)
            else:
                assessment = detector.assess(texts)
            elapsed = time.perf_counter() - start
        result["version"] = detector.version
        y = np.array([r["_y"] for r in rows])
        summary = assessment_summary(y, assessment)
        result.update({k: v for k, v in summary.items() if k not in ("scored_only", "abstained")})
        result["scored_only"] = summary["scored_only"]
        result["abstained"] = summary["abstained"]
        short = [r["_line"] for r, s in zip(rows, assessment.status, strict=True) if s == TOO_SHORT]
        if short:
            result["too_short_lines"] = short[:50]
        if elapsed:
            result["texts_per_second"] = round(len(rows) / elapsed, 1)
        scores = assessment.metric_scores()
        for name in ("generator", "domain"):
            values = sorted({str(r[name]) for r in rows if name in r})
            if not values:
                continue
            per: dict[str, Any] = {}
            for value in values:
                mask = np.array([str(r.get(name)) == value for r in rows])
                # Per-generator AUROC is against all human rows: a generator alone is one class.
                if name == "generator":
                    mask = mask | (y == 0)
                per[value] = evaluate(y[mask], scores[mask])
            result[f"by_{name}"] = per
        self.stdout.write(json.dumps(_clean(result), indent=2, default=str))

    def _lm(self) -> Any:
        try:
            from corpus.scoring.detectors import lm
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise CommandError(
                f"the LM detector needs requirements-lm.txt installed ({exc})"
            ) from None
        try:
            return lm.load_default()
        except (ImportError, FileNotFoundError) as exc:
            raise CommandError(
                f"the LM detector needs requirements-lm.txt installed ({exc})"
            ) from None

    def _lm_features(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._lm().features(texts), dtype=np.float64)
