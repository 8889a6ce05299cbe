"""Fixtures of the cluster and fault tests: the session's local Redis Cluster, the e2e server
fixtures of tests/server pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.localcluster import LocalCluster, shared_cluster

# The e2e fixtures, reused as they are; ``store_url`` below replaces the backends.
from tests.server.conftest import (  # noqa: F401 - fixtures
    clock,
    make_settings,
    running,
    settings,
)


@pytest.fixture(scope="session")
def redis_cluster(pytestconfig: pytest.Config) -> LocalCluster:
    """The 6-node loopback cluster, started once per session by deploy/local-cluster."""
    return shared_cluster(pytestconfig)


@pytest.fixture
def store_url(redis_cluster: LocalCluster) -> Iterator[str]:
    """The cluster, flushed before and after."""
    redis_cluster.flush()
    yield redis_cluster.url
    redis_cluster.flush()
