"""Suite-wide settings. Fixtures that start services live in the conftest of their folder."""

import gc
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# Machines here are shared and noisy: no per-example deadline, no "too slow" health check.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """With ``KIT_TEST_GC=1``, a full garbage collection after each test: a resource left
    open (a driver connection, a socket) then warns in the test that leaked it rather than in
    whichever later test the collector happens to run in (the suite turns warnings into
    errors)."""
    yield
    if os.environ.get("KIT_TEST_GC"):
        gc.collect()
