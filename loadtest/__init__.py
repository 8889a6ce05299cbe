"""Load tests and benchmarks: Locust users, the bench runner, protocol micro-benchmarks."""
