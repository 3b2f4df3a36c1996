"""Stage 2, classify: which Encord data type an object is, by extension, else content type.

Extensions are matched case-insensitively. Sidecar files (`<key>.metadata.json`, Encord's
convention) carry metadata and are not items. Anything else gets a reason, so the report can
list it: nothing is dropped silently.
"""

from __future__ import annotations

# Not an Encord manifest key: `.dcm` files become `dicom_series` entries when grouped.
DICOM = "dicom"
SIDECAR = "sidecar"
SIDECAR_SUFFIX = ".metadata.json"

# Formats from Encord's supported-data page; text "and many more" is kept to common ones.
EXTENSION_KINDS = {
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".webp", ".avif", ".bmp", ".tif", ".tiff"), "images"),
    **dict.fromkeys((".mp4", ".mov", ".webm", ".mkv"), "videos"),
    **dict.fromkeys((".mp3", ".wav", ".flac"), "audio"),
    **dict.fromkeys((".txt", ".html", ".htm", ".json", ".xml", ".md"), "text"),
    ".pdf": "pdf",
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".dcm": DICOM,
}

# The hot path of classification (see `fast_kind`): extensions whose kind depends on nothing
# else. '.json' is left out (a sidecar ends in '.metadata.json'), so is '.gz' ('.nii.gz').
FAST_KINDS = {ext: kind for ext, kind in EXTENSION_KINDS.items() if ext not in (".json", ".nii.gz")}

CONTENT_TYPE_KINDS = {
    **dict.fromkeys(
        ("image/jpeg", "image/png", "image/webp", "image/avif", "image/bmp", "image/tiff"), "images"
    ),
    **dict.fromkeys(("video/mp4", "video/quicktime", "video/webm", "video/x-matroska"), "videos"),
    **dict.fromkeys(
        ("audio/mpeg", "audio/wav", "audio/x-wav", "audio/wave", "audio/flac", "audio/x-flac"),
        "audio",
    ),
    **dict.fromkeys(("text/plain", "text/html", "application/json", "application/xml"), "text"),
    "text/xml": "text",
    "application/pdf": "pdf",
    "application/dicom": DICOM,
    "application/x-nifti": "nifti",
}


def extension(key: str) -> str:
    """The lower-cased extension of the key's file name ('.nii.gz' counts as one), or ''."""
    name = key[key.rfind("/") + 1 :]
    dot = name.rfind(".")
    if dot <= 0:  # no dot, or a dotfile such as '.keep'
        return ""
    ext = name[dot:].lower()
    if ext == ".gz" and name.lower().endswith(".nii.gz"):
        return ".nii.gz"
    return ext


def fast_kind(key: str) -> str | None:
    """`classify(key)[0]` for the common case (a listed extension, already lower case), else
    None, meaning "ask `classify`". One dictionary lookup: no lower-casing, no sidecar check."""
    dot = key.rfind(".")
    if dot > key.rfind("/") + 1:  # a dot in the file name, not at its start
        return FAST_KINDS.get(key[dot:])
    return None


def classify(key: str, content_type: str | None = None) -> tuple[str | None, str]:
    """(kind, reason): kind is a manifest kind, DICOM or SIDECAR, or None with the reason.

    `content_type` is consulted only for keys without an extension (listings don't carry it).
    """
    if key.endswith(SIDECAR_SUFFIX):
        return SIDECAR, ""
    if key.endswith("/"):
        return None, "folder marker (a key ending in '/'), not a file"
    ext = extension(key)
    kind = EXTENSION_KINDS.get(ext)
    if kind is not None:
        return kind, ""
    if ext:
        return None, f"extension {ext} is not a type Encord imports"
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    kind = CONTENT_TYPE_KINDS.get(media_type)
    if kind is not None:
        return kind, ""
    return (
        None,
        f"no extension, and content type {media_type or 'unknown'!r} is not a type Encord imports",
    )
