"""Recognise a file's type from its first bytes, as Encord does before accepting a unit.

Only magic numbers count (never the key's extension or the object's Content-Type), so a
mislabelled object is caught. Images also yield their width and height, WAV audio its format.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import Enum

# Enough for any header we read, including a JPEG whose SOF follows a 64 KiB EXIF block.
SNIFF_BYTES = 256 * 1024


class MediaKind(Enum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DICOM = "DICOM file"
    NIFTI = "NIfTI file"
    PDF = "PDF"
    TEXT = "text file"


@dataclass(frozen=True)
class MediaInfo:
    kind: MediaKind
    mime_type: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    sample_rate: int | None = None
    bit_depth: int | None = None
    num_channels: int | None = None
    codec: str | None = None


def video_placeholder() -> bytes:
    """The video the sandbox writes for an image sequence: an MP4 `ftyp` box (no frames)."""
    return b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08free"


def sniff(head: bytes) -> MediaInfo | None:
    """The type of a file from (at least) its first `SNIFF_BYTES`; None if unsupported."""
    for recogniser in (_image, _video, _audio, _document, _medical, _text):
        info = recogniser(head)
        if info is not None:
            return info
    return None


def describe(head: bytes) -> str:
    """A short name for an unsupported file's type, for error messages."""
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head.startswith(b"GIF8"):
        return "image/gif"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    return "application/octet-stream"


def _image(head: bytes) -> MediaInfo | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return MediaInfo(MediaKind.IMAGE, "image/png", width, height)
    if head.startswith(b"\xff\xd8\xff"):
        size = _jpeg_size(head)
        return MediaInfo(MediaKind.IMAGE, "image/jpeg", *(size or (None, None)))
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaInfo(MediaKind.IMAGE, "image/webp", *(_webp_size(head) or (None, None)))
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return MediaInfo(MediaKind.IMAGE, "image/bmp", width, abs(height))
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return MediaInfo(MediaKind.IMAGE, "image/tiff")
    if _ftyp_brand(head) in (b"avif", b"avis"):
        return MediaInfo(MediaKind.IMAGE, "image/avif")
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    # Walk the marker segments to the first start-of-frame (SOF0..SOF15 but DHT, JPG, DAC).
    at = 2
    while at + 9 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        (length,) = struct.unpack(">H", head[at + 2 : at + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _ftyp_brand(head: bytes) -> bytes | None:
    return head[8:12] if head[4:8] == b"ftyp" else None


def _video(head: bytes) -> MediaInfo | None:
    brand = _ftyp_brand(head)
    if brand is not None and brand not in (b"avif", b"avis", b"M4A ", b"heic", b"mif1"):
        mime = "video/quicktime" if brand == b"qt  " else "video/mp4"
        return MediaInfo(MediaKind.VIDEO, mime)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        mime = "video/webm" if b"webm" in head[:64] else "video/x-matroska"
        return MediaInfo(MediaKind.VIDEO, mime)
    return None


def _audio(head: bytes) -> MediaInfo | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _wav(head)
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return MediaInfo(MediaKind.AUDIO, "audio/mpeg", codec="mp3")
    if head.startswith(b"fLaC"):
        return MediaInfo(MediaKind.AUDIO, "audio/flac", codec="flac")
    return None


def _wav(head: bytes) -> MediaInfo:
    at, channels, rate, bits, byte_rate, data_size = 12, None, None, None, None, None
    while at + 8 <= len(head):
        chunk, size = head[at : at + 4], struct.unpack("<I", head[at + 4 : at + 8])[0]
        if chunk == b"fmt " and at + 24 <= len(head):
            _, channels, rate, byte_rate, _, bits = struct.unpack("<HHIIHH", head[at + 8 : at + 24])
        elif chunk == b"data":
            data_size = size
            break
        at += 8 + size + (size & 1)
    duration = data_size / byte_rate if data_size is not None and byte_rate else None
    return MediaInfo(
        MediaKind.AUDIO,
        "audio/x-wav",
        duration=duration,
        sample_rate=rate,
        bit_depth=bits,
        num_channels=channels,
        codec="pcm",
    )


def _document(head: bytes) -> MediaInfo | None:
    if head.startswith(b"%PDF-"):
        return MediaInfo(MediaKind.PDF, "application/pdf")
    return None


def _medical(head: bytes) -> MediaInfo | None:
    if head[128:132] == b"DICM":
        return MediaInfo(MediaKind.DICOM, "application/dicom")
    header = head
    if head.startswith(b"\x1f\x8b"):  # .nii.gz
        try:
            header = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(head, 540)
        except zlib.error:
            return None
    nifti1 = header[344:348] in (b"n+1\x00", b"ni1\x00") and _int32_either_order(header[:4]) == 348
    nifti2 = header[4:8] == b"n+2\x00" and _int32_either_order(header[:4]) == 540
    if nifti1 or nifti2:
        return MediaInfo(MediaKind.NIFTI, "application/x-nifti")
    return None


def _int32_either_order(raw: bytes) -> int | None:
    if len(raw) < 4:
        return None
    little, big = struct.unpack("<i", raw)[0], struct.unpack(">i", raw)[0]
    return little if little in (348, 540) else big


def _text(head: bytes) -> MediaInfo | None:
    if not head or b"\x00" in head:
        return None
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the read window is still text.
        if error.start < len(head) - 3:
            return None
        decoded = head[: error.start].decode("utf-8")
    start = decoded.lstrip()[:64].lower()
    if start.startswith(("<!doctype html", "<html")):
        mime = "text/html"
    elif start.startswith("<?xml"):
        mime = "application/xml"
    elif start.startswith(("{", "[")):
        mime = "application/json"
    else:
        mime = "text/plain"
    return MediaInfo(MediaKind.TEXT, mime)
