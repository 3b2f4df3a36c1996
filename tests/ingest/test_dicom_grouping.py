"""DICOM series by SeriesInstanceUID (`dicomGrouping: uid`): headers read from real DICOM
files written with pydicom, truncated as a ranged GET would return them."""

from __future__ import annotations

import io

from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ingest.plan.dicom import DicomHeader, parse_header
from ingest.plan.group import FolderRules, Item, group


def dicom_file(series_uid: str, instance: int, padding: int = 0) -> bytes:
    """A Part-10 file with SeriesInstanceUID, InstanceNumber and `padding` bytes of pixels."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.Modality = "CT"
    dataset.SeriesInstanceUID = series_uid
    dataset.InstanceNumber = instance
    if padding:
        dataset.Rows, dataset.Columns, dataset.BitsAllocated = padding // 1000, 1000, 8
        dataset.PixelData = b"\0" * padding
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_the_header_is_read_from_a_truncated_file() -> None:
    whole = dicom_file("1.2.3.4", 7, padding=200_000)

    assert parse_header(whole[:65536]) == DicomHeader("1.2.3.4", 7)
    assert parse_header(whole[:200]) == DicomHeader(None, None)  # cut before the tags
    assert parse_header(b"not dicom at all") == DicomHeader(None, None)


def _grouped(files: dict[str, bytes]) -> list[tuple[str, tuple[str, ...]]]:
    reads: list[str] = []

    def read_header(key: str, etag: str) -> DicomHeader:
        reads.append(key)
        return parse_header(files[key][:65536])

    items = [Item(key, f"etag-{key}", "dicom") for key in sorted(files)]
    entries = group(
        items, FolderRules([], dicom_grouping="uid"), lambda key: f"s3://b/{key}", read_header
    )
    result = [(g.entry.title, g.entry.keys) for g in entries]
    assert sorted(reads) == sorted(files)  # each header read once
    return result


def test_a_folder_holding_two_series_becomes_two_entries_in_instance_order() -> None:
    files = {
        "pacs/a.dcm": dicom_file("1.1", 2),
        "pacs/b.dcm": dicom_file("2.2", 1),
        "pacs/c.dcm": dicom_file("1.1", 1),
        "pacs/d.dcm": dicom_file("2.2", 10),
        "pacs/e.dcm": dicom_file("2.2", 9),
    }

    assert _grouped(files) == [
        ("pacs/ (series 1.1)", ("pacs/c.dcm", "pacs/a.dcm")),
        ("pacs/ (series 2.2)", ("pacs/b.dcm", "pacs/e.dcm", "pacs/d.dcm")),
    ]


def test_a_series_spread_over_two_folders_is_one_entry() -> None:
    files = {
        "study/part-1/x.dcm": dicom_file("9.9", 3),
        "study/part-2/y.dcm": dicom_file("9.9", 1),
        "study/part-2/z.dcm": dicom_file("9.9", 2),
        "other/one/s.dcm": dicom_file("5.5", 1),
    }

    assert _grouped(files) == [
        ("other/one/", ("other/one/s.dcm",)),  # alone in its folder: the folder's path
        ("study/ (series 9.9)", ("study/part-2/y.dcm", "study/part-2/z.dcm", "study/part-1/x.dcm")),
    ]


def test_a_listing_without_dicom_files_reads_no_header() -> None:
    def read_header(key: str, etag: str) -> DicomHeader:
        raise AssertionError("no header read on a DICOM-free listing")

    items = [Item("a.png", "e", "images"), Item("b/c.mp4", "e", "videos")]
    entries = list(group(items, FolderRules([], dicom_grouping="uid"), str, read_header))

    assert [g.entry.title for g in entries] == ["a.png", "b/c.mp4"]


def test_folder_grouping_stays_available() -> None:
    files = {"pacs/a.dcm": b"", "pacs/b.dcm": b""}
    items = [Item(key, "e", "dicom") for key in files]

    entries = list(group(items, FolderRules([], dicom_grouping="folder"), str))

    assert [(g.entry.title, g.entry.keys) for g in entries] == [
        ("pacs/", ("pacs/a.dcm", "pacs/b.dcm"))
    ]
