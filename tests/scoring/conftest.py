"""Fixtures for the pure scoring tests: seeded generators, no Django, no database, no files."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from corpus.scoring import synthetic


@pytest.fixture(autouse=True)
def _clean_redis_db() -> Iterator[None]:
    """Override the suite-wide autouse Redis flush: these tests touch neither Redis nor Django."""
    yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


@pytest.fixture(scope="session")
def vocab() -> list[str]:
    return synthetic.make_vocab(np.random.default_rng(7), 5000)
