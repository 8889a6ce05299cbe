"""End to end through real HTTP on the 6-node Redis Cluster: the e2e scenarios of tests/server
(register, HELLOs, report, worker, at-risk status), with ``store_url`` pointing at the cluster."""

from __future__ import annotations

import pytest

from tests.server.test_e2e import (  # noqa: F401 - collected here with the cluster store
    session,
    test_contact_reported_then_warned,
    test_forged_and_stale_hellos_are_not_counted,
    test_replayed_status_is_refused,
)

pytestmark = pytest.mark.cluster
