"""Local stand-ins for the real services, used by the tests, the demo and the benchmark.

- `local_aws`: moto in server mode on loopback, one process per server (local AWS).
- `pulumi_offline`: the real Pulumi program under Pulumi's mock runtime, with a stack's config.
- `moto_bridge`: that program's resources created in moto with boto3 (a stand-in for `pulumi up`).
- `s3_listing`: a ListObjectsV2 server over a computed bucket, for benchmarks at scale.

The local Encord is its own package, `sandbox`.
"""
