"""The web process does not load the scoring stack; a scoring worker does not load scikit-learn.

A web worker imports every view at start (config/wsgi.py). When a view module imports the
scorer (``corpus.services.scoring``), each web worker carries numpy's, SciPy's and
scikit-learn's modules as well: 2 x 140 MB more at rest in ``bench/ingest.py``'s web server
(591 MB instead of 292). Only workers score; the web process needs numpy alone (text hashing).
A scoring worker scores with a trained model, which needs numpy and SciPy; scikit-learn (about
130 MB per process) is for retraining and evaluation only (bench/memory.py: the worker's PSS at
rest 319 MB with it).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "sklearn", "torch", "pandas", "pyarrow", "corpus.services.scoring")


def _loaded_after(code: str, modules: tuple[str, ...]) -> str:
    """The modules of ``modules`` a fresh interpreter has loaded after running ``code``."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {modules!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def test_loading_every_view_leaves_the_scoring_stack_out():
    loaded = _loaded_after("import config.wsgi", HEAVY)
    assert loaded == "", f"the web process loads {loaded}"


def test_a_warmed_up_scoring_worker_leaves_scikit_learn_out():
    code = (
        "import django\n"
        "django.setup()\n"
        "from corpus.services.scoring import scoring_warm_up\n"
        "scoring_warm_up()\n"
        "from corpus.services.detectors import detector_default\n"
        "from corpus.scoring.text import prepare\n"
        "detector_default().assess_prepared([prepare('a plain sentence of text ' * 8)])\n"
    )
    loaded = _loaded_after(code, ("sklearn", "corpus.scoring.detectors.baseline"))
    assert loaded == "", f"the scoring worker loads {loaded}"
