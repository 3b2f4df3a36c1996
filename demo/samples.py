"""Small but real files of every type Encord imports, made in memory.

Each function returns bytes that a format sniffer (the sandbox's, or any media tool's)
recognises by its magic numbers, so tests and the demo exercise type checks for real.
`sample_corpus()` is the demo's bucket: every data type, nested folders, an image group,
an image sequence, a DICOM series, sidecar metadata and one unsupported file.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass


def png(width: int = 4, height: int = 3, shade: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    row = b"\x00" + bytes([shade % 256, 64, 128]) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def jpeg(width: int = 8, height: int = 8) -> bytes:
    """A baseline JPEG header (SOI, APP0/JFIF, SOF0 with the size); enough to sniff and size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def mp4() -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
    mdat = struct.pack(">I", 16) + b"mdat" + b"\x00" * 8
    return ftyp + mdat


def wav(seconds: float = 0.1, rate: int = 8000) -> bytes:
    frames = int(seconds * rate)
    data = b"\x00\x00" * frames
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
        b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
    )


def dicom(instance: int = 1, series_uid: str = "1.2.826.0.1.3680043.2.1125.1") -> bytes:
    """Part-10 DICOM: 128-byte preamble, 'DICM', a file meta group and a few dataset tags."""

    def element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
        if len(value) % 2:
            value += b"\x00" if vr == b"UI" else b" "
        return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value

    transfer_syntax = element(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1")
    meta = transfer_syntax
    meta_length = struct.pack("<HH", 0x0002, 0x0000) + b"UL" + struct.pack("<HI", 4, len(meta))
    dataset = (
        element(0x0008, 0x0060, b"CS", b"CT")
        + element(0x0020, 0x000E, b"UI", series_uid.encode())
        + element(0x0020, 0x0013, b"IS", str(instance).encode())
    )
    return b"\x00" * 128 + b"DICM" + meta_length + meta + dataset


def nifti() -> bytes:
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)  # sizeof_hdr
    struct.pack_into("<8h", header, 40, 3, 2, 2, 2, 1, 1, 1, 1)  # dim
    struct.pack_into("<h", header, 70, 2)  # datatype: uint8
    struct.pack_into("<f", header, 108, 352.0)  # vox_offset
    header[344:348] = b"n+1\x00"
    return bytes(header) + b"\x00" * 8


def text(body: str = "hello from the sample corpus\n") -> bytes:
    return body.encode()


@dataclass(frozen=True)
class SampleObject:
    key: str
    body: bytes
    content_type: str


def sample_corpus() -> Iterator[SampleObject]:
    """The demo bucket: every type Encord imports, in the layouts ingest groups."""
    for i, (w, h) in enumerate([(64, 48), (32, 32), (16, 9)], start=1):
        yield SampleObject(f"images/cats/cat-{i}.png", png(w, h, shade=i), "image/png")
    yield SampleObject("images/dogs/dog 1.jpg", jpeg(40, 30), "image/jpeg")
    yield SampleObject(
        "images/dogs/dog 1.jpg.metadata.json",
        json.dumps({"camera": "front", "captured_at": "2026-01-02T03:04:05Z"}).encode(),
        "application/json",
    )
    yield SampleObject("images/dogs/chien-été.png", png(8, 8), "image/png")
    for frame in (1, 2, 10):
        yield SampleObject(
            f"groups/ward-a/frame-{frame}.png", png(20, 20, shade=frame), "image/png"
        )
    for frame in (1, 2, 3):
        yield SampleObject(
            f"sequences/drive-1/{frame:04d}.png", png(24, 16, shade=frame), "image/png"
        )
    yield SampleObject("videos/intersection.mp4", mp4(), "video/mp4")
    for instance in (1, 2, 10):
        yield SampleObject(
            f"dicom/study-1/series-1/slice-{instance}.dcm", dicom(instance), "application/dicom"
        )
    yield SampleObject("audio/call-001.wav", wav(), "audio/wav")
    yield SampleObject("docs/notes/readme.txt", text(), "text/plain")
    yield SampleObject("docs/reports/report.pdf", pdf(), "application/pdf")
    yield SampleObject("scans/brain.nii", nifti(), "application/octet-stream")
    yield SampleObject("misc/archive.zip", b"PK\x03\x04" + b"\x00" * 26, "application/zip")
