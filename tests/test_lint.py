"""`make lint` enforces the house rules: it fails on a type error and on a corpus module that
imports review. Shown on broken fixtures written to a temporary folder, through the very make
targets `make lint` runs, with the project's own configuration (pyproject.toml)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("make") is None, reason="needs make"),
]


def _make(target: str, *args: str, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), target, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _packages(root: Path, corpus_module: str) -> None:
    for package in ("corpus", "review"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    (root / "review" / "services.py").write_text("from corpus import models\n")
    (root / "corpus" / "models.py").write_text(corpus_module)


def test_the_import_contract_passes_when_review_imports_corpus(tmp_path):
    _packages(tmp_path, "X = 1\n")

    result = _make("lint-imports", f"IMPORTS_ROOT={tmp_path}")

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_import_contract_fails_when_corpus_imports_review(tmp_path):
    _packages(tmp_path, "from review import services\n")

    result = _make("lint-imports", f"IMPORTS_ROOT={tmp_path}")

    assert result.returncode != 0
    assert "corpus.models -> review.services" in result.stdout


def test_the_type_check_fails_on_a_type_error_the_django_plugin_finds(tmp_path):
    # Without the Django plugin, Item.state is not known to be a str: mypy with the project's
    # configuration must see that adding 1 to it is an error.
    broken = tmp_path / "broken_types.py"
    broken.write_text(
        "from corpus.models import Item\n\n\n"
        "def next_state(item: Item) -> str:\n"
        "    return item.state + 1\n"
    )

    result = _make("lint-types", f"MYPY_ARGS={broken}")

    assert result.returncode != 0
    assert "broken_types.py:5: error: Unsupported operand types" in result.stdout


def test_the_type_check_passes_on_well_typed_code(tmp_path):
    fine = tmp_path / "fine_types.py"
    fine.write_text(
        "from corpus.models import Item\n\n\n"
        "def state_of(item: Item) -> str:\n"
        "    return item.state\n"
    )

    result = _make("lint-types", f"MYPY_ARGS={fine}")

    assert result.returncode == 0, result.stdout + result.stderr
