"""`python -m ingest`: keep an Encord Files folder and Dataset an exact mirror of a bucket.

The pipeline's parts are its subpackages: `listing` (where the object list comes from) →
`plan` (classify → group → metadata → manifest → validate) → `encord` (schema, upload, link,
verify, through the encord SDK) — driven by `cli`. Stages are functions over iterators;
boto3 and the encord SDK sit behind thin adapters.
"""
