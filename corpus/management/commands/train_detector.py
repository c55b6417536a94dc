import json
from pathlib import Path
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.models import Dataset
from corpus.scoring.detectors.learned import LearnedDetector
from corpus.services import detectors
from corpus.services.audit import SYSTEM
from corpus.tasks import detector_train_task

DEFAULT_FILE = Path(__file__).resolve().parents[4] / "shared" / "data" / "detector-train.jsonl"


class Command(BaseCommand):
    help = (
        "Train the learned AI-text detector: the committed default model from a labelled JSONL "
        "file (text, label human|ai), or a dataset's own model from its labels (--dataset)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", help="retrain this dataset's model on its own labels")
        parser.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="with --dataset: enqueue the Celery task instead of training here",
        )
        parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
        parser.add_argument("--output", type=Path, default=detectors.DEFAULT_MODEL_PATH)
        parser.add_argument(
            "--group-field",
            default=None,
            help="rows sharing this field never straddle the held-out split nor the "
            "calibration folds (e.g. source or generator: the probabilities are then calibrated "
            "for sources the model has not seen; default: stratified by label)",
        )
        parser.add_argument(
            "--test-size",
            type=float,
            default=0.2,
            help="share held out for the report (0: train on every row)",
        )
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dataset"]:
            dataset = Dataset.objects.filter(slug=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"no dataset '{options['dataset']}'")
            if options["run_async"]:
                detector_train_task.delay(dataset.pk)
                self.stdout.write(f"retraining of '{dataset.slug}' enqueued")
                return
            try:
                model = detectors.detector_train(
                    dataset=dataset, actor=SYSTEM, test_size=options["test_size"]
                )
            except detectors.DetectorTrainError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(json.dumps({"version": model.version, **model.report}, indent=2))
            return
        if not 0.0 <= options["test_size"] < 1.0:
            raise CommandError("--test-size must be in [0, 1)")
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        texts, labels, groups = [], [], []
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    label = {"human": 0, "ai": 1}[row["label"]]
                    text = row["text"]
                except (ValueError, KeyError, TypeError):
                    raise CommandError(
                        f"{path}:{number}: expected a JSON object with text and label human|ai"
                    ) from None
                texts.append(text)
                labels.append(label)
                if options["group_field"]:
                    groups.append(str(row.get(options["group_field"], number)))
        detector = LearnedDetector()
        try:
            report = detector.fit(
                texts,
                np.array(labels),
                groups=groups or None,
                test_size=options["test_size"],
                seed=options["seed"],
                mixed_calibration=bool(groups),
            )
        except ValueError as exc:
            raise CommandError(f"training failed: {exc}") from None
        options["output"].parent.mkdir(parents=True, exist_ok=True)
        detector.save(options["output"])
        self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
        self.stdout.write(f"saved {options['output']}")
