"""What a plan found: exact counts, and capped samples of what needs the user's attention."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SAMPLE_LIMIT = 1000  # listed problems kept; counts stay exact however many there are


@dataclass
class PlanReport:
    bucket: str = ""
    prefixes: list[str] = field(default_factory=list)
    objects: int = 0  # every key listed
    excluded: int = 0  # matched an `exclude` glob
    sidecars: int = 0  # `<key>.metadata.json` files
    orphan_sidecars: int = 0  # sidecars whose object is missing or not importable
    entries: Counter = field(default_factory=Counter)  # manifest kind → entries
    files: Counter = field(default_factory=Counter)  # manifest kind → objects (URLs)
    unsupported_count: int = 0
    unsupported: list[dict[str, str]] = field(default_factory=list)
    metadata_error_count: int = 0
    metadata_errors: list[dict[str, str]] = field(default_factory=list)
    unmatched_metadata_count: int = 0  # metadata table rows whose key names no entry
    unmatched_metadata: list[str] = field(default_factory=list)  # their first keys
    manifests: list[str] = field(default_factory=list)
    csv_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # from the listing source (a stale inventory)
    # What a run would add, update, re-point, unlink and delete (`ingest.mirror.apply.preview`).
    mirror: Any = None

    def add_unsupported(self, key: str, reason: str) -> None:
        self.unsupported_count += 1
        if len(self.unsupported) < SAMPLE_LIMIT:
            self.unsupported.append({"key": key, "reason": reason})

    def add_metadata_error(self, key: str, message: str) -> None:
        self.metadata_error_count += 1
        if len(self.metadata_errors) < SAMPLE_LIMIT:
            self.metadata_errors.append({"key": key, "error": message})

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "prefixes": self.prefixes,
            "objects": self.objects,
            "excluded": self.excluded,
            "sidecars": self.sidecars,
            "orphanSidecars": self.orphan_sidecars,
            "entries": dict(sorted(self.entries.items())),
            "files": dict(sorted(self.files.items())),
            "unsupported": {"count": self.unsupported_count, "sample": self.unsupported},
            "metadataErrors": {"count": self.metadata_error_count, "sample": self.metadata_errors},
            "unmatchedMetadataRows": {
                "count": self.unmatched_metadata_count,
                "sample": self.unmatched_metadata,
            },
            "manifests": self.manifests,
            "csv": self.csv_files,
            "warnings": self.warnings,
            **({"mirror": self.mirror.to_json()} if self.mirror else {}),
        }

    def summary(self) -> str:
        """The human version: a few lines, then at most ten of each problem."""
        where = ", ".join(f"s3://{self.bucket}/{prefix}" for prefix in self.prefixes)
        lines = [f"warning: {warning}" for warning in self.warnings]
        lines.append(f"scanned {self.objects} objects under {where}")
        for kind in sorted(self.entries):
            lines.append(
                f"  {kind:<13} {self.entries[kind]:>9} entries {self.files[kind]:>9} files"
            )
        lines.append(
            f"  sidecars {self.sidecars} (orphaned {self.orphan_sidecars}), "
            f"excluded {self.excluded}, unsupported {self.unsupported_count}, "
            f"metadata errors {self.metadata_error_count}"
        )
        for label, items, count, field_name in (
            ("unsupported", self.unsupported, self.unsupported_count, "reason"),
            ("metadata error", self.metadata_errors, self.metadata_error_count, "error"),
        ):
            for item in items[:10]:
                lines.append(f"  {label}: {item['key']}: {item[field_name]}")
            if count > 10:
                lines.append(f"  … and {count - 10} more {label}s (see report.json)")
        if self.unmatched_metadata_count:
            shown = ", ".join(self.unmatched_metadata[:10])
            more = self.unmatched_metadata_count - min(10, len(self.unmatched_metadata))
            lines.append(
                f"  metadata rows matching no object: {self.unmatched_metadata_count} "
                f"({shown}{f', … and {more} more in report.json' if more > 0 else ''}); "
                "fix their keys (the object's S3 key, or the folder path ending in '/' for a group)"
            )
        lines.append(
            f"wrote {len(self.manifests)} manifest(s) and {len(self.csv_files)} CSV file(s)"
        )
        lines.extend(f"  {path}" for path in self.manifests)
        if self.mirror:
            lines.append(self.mirror.summary())
        return "\n".join(lines)
