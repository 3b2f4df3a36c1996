"""Entries as the SDK's typed upload request, `encord.orm.storage.DataUploadItems`.

The SDK documents `pdf`, `nifti` and `upsert_metadata` on this type only (the raw JSON format
documents neither), so upload jobs are started with it; the manifest files stay raw JSON, the
format users read and hand to Encord's web app.
"""

from __future__ import annotations

from collections.abc import Iterable

from encord.orm.storage import (
    DataUploadAudio,
    DataUploadDicomSeries,
    DataUploadDicomSeriesDicomFile,
    DataUploadImage,
    DataUploadImageGroup,
    DataUploadImageGroupImage,
    DataUploadItems,
    DataUploadNifti,
    DataUploadPDF,
    DataUploadText,
    DataUploadVideo,
)

from ingest.model import Entry

_SINGLE = {
    "images": DataUploadImage,
    "videos": DataUploadVideo,
    "audio": DataUploadAudio,
    "text": DataUploadText,
    "pdf": DataUploadPDF,
    "nifti": DataUploadNifti,
}


def upload_items(entries: Iterable[Entry]) -> DataUploadItems:
    """One job's request. URLs already in the folder are skipped, and their metadata replaced
    by the bucket's (the source of truth), as the manifests' flags say."""
    items = DataUploadItems(skip_duplicate_urls=True, upsert_metadata=True)
    for entry in entries:
        metadata = entry.client_metadata or {}
        if entry.kind == "image_groups":
            items.image_groups.append(
                DataUploadImageGroup(
                    images=[DataUploadImageGroupImage(url=url) for url in entry.urls],
                    title=entry.title,
                    client_metadata=metadata,
                    create_video=entry.create_video,
                )
            )
        elif entry.kind == "dicom_series":
            items.dicom_series.append(
                DataUploadDicomSeries(
                    dicom_files=[
                        DataUploadDicomSeriesDicomFile(url=url, title=None) for url in entry.urls
                    ],
                    title=entry.title,
                    client_metadata=metadata,
                )
            )
        else:
            single = _SINGLE[entry.kind](
                object_url=entry.urls[0], title=entry.title, client_metadata=metadata
            )
            getattr(items, entry.kind).append(single)
    return items
