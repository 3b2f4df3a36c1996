"""Stage: verify. The Dataset's data rows against the entries of the latest scan, by title
(and by backing storage item where both sides know it): what is missing, what is extra."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from encord.dataset import Dataset

from ingest.encord.client import EncordClient
from ingest.files import write_jsonl
from ingest.state import RunState

DIFFERENCES_FILE = "verify-differences.jsonl"
SHOWN_DIFFERENCES = 10


@dataclass(frozen=True)
class Verification:
    dataset: str
    dataset_hash: str
    rows: int
    missing: int
    extra: int
    sample: list[dict[str, str]]  # the first differences, for the summary
    report: Path
    file_links: list[str]

    @property
    def exact(self) -> bool:
        return not (self.missing or self.extra)

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "datasetHash": self.dataset_hash,
            "rows": self.rows,
            "missing": self.missing,
            "extra": self.extra,
            "report": str(self.report),
        }

    def summary(self) -> str:
        verdict = "matches the bucket" if self.exact else "DIFFERS from the bucket"
        lines = [
            f"Dataset {self.dataset!r} ({self.dataset_hash}): {self.rows} data rows, "
            f"{verdict}: {self.missing} missing, {self.extra} extra"
        ]
        lines += [f"  {item['difference']}: {item['title']}" for item in self.sample]
        if self.missing + self.extra > len(self.sample):
            lines.append(f"  … all differences in {self.report}")
        return "\n".join(lines)


def verify(
    client: EncordClient,
    state: RunState,
    dataset: Dataset,
    folder: str,
    scan: int,
    directory: Path,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> Verification:
    """`progress`, if given, wraps the rows as they are compared (to count them)."""
    rows = client.data_rows(dataset)
    counts: Counter = Counter()

    def counted(differences: Iterator[tuple[str, str]]) -> Iterator[dict[str, str]]:
        for difference, title in differences:
            counts[difference] += 1
            yield {"difference": difference, "title": title}

    rows_by_title = ((row.title, _backing_item(row)) for row in (progress or iter)(rows))
    report = directory / DIFFERENCES_FILE
    sample = write_jsonl(
        report,
        counted(state.compare_with_dataset(folder, scan, rows_by_title)),
        SHOWN_DIFFERENCES,
    )
    return Verification(
        dataset=dataset.title,
        dataset_hash=dataset.dataset_hash,
        rows=len(rows),
        missing=counts["missing"],
        extra=counts["extra"],
        sample=sample,
        report=report,
        file_links=[row.file_link or f"(no single file: {row.title})" for row in rows],
    )


def _backing_item(row) -> str | None:
    item = row.get("backing_item_uuid")
    return str(item) if item else None
