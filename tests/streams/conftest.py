"""Fixtures for the streams tests."""

import signal
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_sigterm() -> Iterator[None]:
    """main() installs its own SIGTERM handler; put pytest's back afterwards."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)
