"""Benchmarks run by `make bench`; each prints its figures as ratios against a baseline measured in the same run."""

# Every bench mesh: a high rate limit (the benchmark measures the path, not the limiter) and quiet logs.
MESH_ENV = {"MCPMESH_RATE_LIMIT": "1000000", "MCPMESH_RATE_BURST": "1000000", "MCPMESH_LOG_LEVEL": "WARNING"}
