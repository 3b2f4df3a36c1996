"""`python -m ingest`: from the stack's bucket to a verified Encord Dataset.

A pipeline of stages, one module each: scan → classify → group → metadata → manifest →
validate → upload → link → verify. Stages are functions over iterators; boto3 and the encord
SDK sit behind thin adapters.
"""
