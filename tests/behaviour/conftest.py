"""The behaviour suite runs every test once per provider."""

from __future__ import annotations

import pytest

from .harness import HARNESSES, Harness


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Harness:
    return HARNESSES[request.param]
