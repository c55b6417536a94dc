"""The web process does not load the scoring stack.

A web worker imports every view at start (config/wsgi.py). When a view module imports the
scorer (``corpus.services.scoring``), each web worker carries numpy's, SciPy's and
scikit-learn's modules as well: 2 x 140 MB more at rest in ``bench/ingest.py``'s web server
(591 MB instead of 292). Only workers score; the web process needs numpy alone (text hashing).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "sklearn", "torch", "pandas", "pyarrow", "corpus.services.scoring")


def test_loading_every_view_leaves_the_scoring_stack_out():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    code = f"import sys, config.wsgi\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert loaded == "", f"the web process loads {loaded}"
