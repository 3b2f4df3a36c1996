"""`python -m bench`: plan throughput and peak memory from an in-memory listing (no network)."""
