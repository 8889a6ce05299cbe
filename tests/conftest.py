"""Suite-wide settings. Fixtures that start services live in the conftest of their folder."""

from hypothesis import HealthCheck, settings

# Machines here are shared and noisy: no per-example deadline, no "too slow" health check.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.load_profile("default")
