"""Every name and limit of Encord's import format the ingest relies on, with its source.

Sources: Encord's JSON import docs (index-register-cloud-data), its best-practices page, the
guide (`shared/seed`) and the encord SDK 0.1.211 (`encord/metadata_schema.py`).
"""

from __future__ import annotations

# Top-level manifest keys, one per data type. `pdf`, `nifti` (and `upsert_metadata`) are
# documented only on the SDK's typed `DataUploadItems`, so upload jobs are sent in that form
# (`ingest.encord.upload_items`); the manifest files `ingest plan` writes keep the raw JSON
# names. A sequence is an `image_groups` entry with `createVideo: true`.
SINGLE_FILE_KINDS = ("videos", "images", "audio", "text", "pdf", "nifti")
MULTI_FILE_KINDS = ("image_groups", "dicom_series")
KINDS = SINGLE_FILE_KINDS + MULTI_FILE_KINDS

MAX_TITLE = 300  # characters in a file name / title
MAX_ITEMS_PER_FILE = 500_000  # images, groups, videos, DICOM series in one JSON file
MAX_URLS_PER_FILE = 1_000_000
MAX_URL_BYTES = 16 * 1024
CSV_MAX_ROWS = 10_000  # rows in one CSV file for the web app
# Entries in one upload request (best-practices page): Team plans, Enterprise plans.
MAX_JOB_ENTRIES_TEAM = 2_500
MAX_JOB_ENTRIES_ENTERPRISE = 10_000

# Metadata schema (the SDK's own checks).
SCALARS = ("boolean", "datetime", "number", "uuid", "varchar", "text")
VARCHAR_MAX = 8192
ENUM_MAX_VALUES = 255  # the SDK refuses 256
EMBEDDING_MAX = 4096
