"""The behaviour suite runs every test once per provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import HARNESSES, Harness, Running


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Harness:
    return HARNESSES[request.param]


@pytest.fixture
def emulators() -> Iterator[list[Running]]:
    running: list[Running] = []
    yield running
    for item in running:
        item.stop()
