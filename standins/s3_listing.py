"""A local S3 stand-in for listing benchmarks: ListObjectsV2 over a bucket computed, not stored.

Why: moto lists slowly and holds every object in memory, so it cannot serve the 100k–10M-key
buckets a lister is measured against (figures in `bench/README.md`; `../shared/notes/aws.md`
§3.x, §4). This server answers the requests boto3 (or any S3 client) sends, from arithmetic:

- The synthetic bucket (`SyntheticBucket`, default name `bench-bucket`): `count` keys, three
  of them at the root (`README.txt`, `p08_index.csv` after the `p08/` group, `zz-notes.txt`) and
  the rest spread evenly over `prefixes` top-level prefixes `p00/`, `p01/`, …; key `i` of a
  prefix is `<prefix>/<i // 100, 7 digits>/<folder>/<name i % 100>`, the folder chosen by the
  folder number as in `bench.listing` (DICOM series, an image group with spaces in its names,
  videos, camera folders, one in twenty of them `caméra N/` for a space and a non-ASCII
  character). Zero-padded numbers make generation order the key order, so key `i` costs O(1)
  and the index of any string's position costs a binary search over the index (O(log n) key
  constructions); nothing but the O(prefixes) segment table is kept, whatever the count.
- The image bucket (`ImageBucket`, default name `bench-images`, with `images=`): `count` tiny
  PNGs (`p<i % prefixes>/img-<i>.png`, one shared body and MD5 ETag) served by GET and HEAD
  with ranges — what the run-path bench imports through the Encord sandbox, which reads each
  object as Encord would.
- The directory-backed bucket (`DirectoryBucket`, default name `bench-files`): the files
  under a local directory, listed (walked on each LIST) and served by GET and HEAD with
  Content-Length, an MD5 ETag and ranges — so a benchmark can read e.g. an S3 Inventory report
  through boto3.

Listing (`list_objects_v2`) is one algorithm over either bucket: binary searches find the
prefix's range and the resume point (`start-after`, or the opaque continuation token: base64
of the last entry, a key or a CommonPrefixes group to step over); with a delimiter, each
rolled-up group is skipped by one more search. The XML has real S3's elements, in the order
published measurements of it show: `Contents` then `CommonPrefixes`, `MaxKeys` echoed as sent,
`StartAfter`/`ContinuationToken` echoed, and under `encoding-type=url` Prefix/Delimiter/StartAfter/Key/CommonPrefixes encoded as
S3 encodes them (`url_encode`; botocore's `decode_list_object_v2` undoes it with
`unquote_plus`). Rendering is kept small next to the client's parse (its cost per page is in
`bench/README.md`, `--measure` prints it): per folder of 100 keys the folder's (encoded) path
is built once, and each key is one f-string over precomputed per-name tables (name, Size).

Serving: `ThreadingHTTPServer` (a thread per connection, HTTP/1.1 keep-alive, TCP_NODELAY),
so a per-request LIST delay (`delay_ms`, a sleep) stands for S3's latency without holding up
other connections. Authorization headers and presigned query parameters are accepted and
ignored. Path-style (`/<bucket>?list-type=2`) and virtual-host (`<bucket>.<host>`) addressing.
`start_standin()` runs it in a child interpreter on 127.0.0.1 (port chosen by the OS);
`python -m standins.s3_listing` in the foreground (`--measure`: the render cost per page).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import email.utils
import hashlib
import http.client
import itertools
import mimetypes
import os
import re
import select
import subprocess
import sys
import threading
import time
import traceback
from bisect import bisect_right
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit
from xml.sax.saxutils import escape

BUCKET = "bench-bucket"
FILES_BUCKET = "bench-files"
IMAGES_BUCKET = "bench-images"
MAX_KEYS = 1000
FOLDER_SIZE = 100
NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
_XML_HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{NAMESPACE}">'
_FOLDER_DIGITS = 7
# ETag of key number g: g times an odd constant mod 2**128, a bijection, so every key's differs.
_MIX = 0x9E3779B97F4A7C15F39CC0605CEDC835
_MASK = (1 << 128) - 1
_ROOT_MODIFIED = "2026-11-01T12:00:00.000Z"
_ESCAPE_QUOTES = {'"': "&quot;"}
# The image bucket's LastModified, as listed (ISO) and as served (seconds since the epoch).
_IMAGES_MODIFIED = 1793534400.0  # 2026-11-01T12:00:00Z


def url_encode(value: str) -> str:
    """`value` as S3 writes it under `encoding-type=url`.

    As measured against real S3 and published in brekkylab/backlot#178: letters, digits,
    `-_.*/` unchanged, a space as `+`, every other UTF-8 byte as upper-case `%XX` — Java's
    URLEncoder with `/` kept (`quote_plus` keeps `~`, which that encodes). ceph/s3-tests expects
    `%20` for a space instead; botocore's `unquote_plus` reads both alike.
    """
    return quote_plus(value, safe="/*").replace("~", "%7E")


def _same(value: str) -> str:
    return value


# Per folder kind (folder number % 20, capped at 3: every camera folder names its files alike),
# the 100 file names in key order; a folder's files are its `FOLDER_SIZE` keys.
def _names(kind: int) -> list[str]:
    if kind == 0:
        return [f"slice-{j:03d}.dcm" for j in range(FOLDER_SIZE)]
    if kind == 1:
        return [f"view {j:03d}.png" for j in range(FOLDER_SIZE)]
    if kind == 2:
        return [f"clip-{j:03d}.{'mp4' if j % 25 else 'zip'}" for j in range(FOLDER_SIZE)]
    return [f"shot-{j:04d}.{'jpg' if j % 50 else 'pdf'}" for j in range(FOLDER_SIZE)]


_BASE_SIZE = {
    "dcm": 526_000,
    "png": 180_000,
    "mp4": 24_000_000,
    "zip": 3_000_000,
    "jpg": 350_000,
    "pdf": 90_000,
}
_NAMES = [_names(kind) for kind in range(4)]
_URL_NAMES = [[url_encode(name) for name in names] for names in _NAMES]
# What follows the ETag's hex in a key's <Contents>, its Size included.
_TAILS = [
    [
        f"&quot;</ETag><Size>{_BASE_SIZE[name[-3:]] + j * 7919 % 50_000}</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for j, name in enumerate(names)
    ]
    for names in _NAMES
]


def _folder(label: str, number: int) -> str:
    kind = number % 20
    if kind == 0:
        sub = "dicom"
    elif kind == 1:
        sub = "group"
    elif kind == 2:
        sub = "videos"
    elif kind == 3:
        sub = f"caméra {number % 7}"
    else:
        sub = f"cam-{number % 7}"
    return f"{label}/{number:0{_FOLDER_DIGITS}d}/{sub}/"


def _modified(number: int) -> str:
    return f"2026-10-{1 + number % 28:02d}T{number % 24:02d}:00:00.000Z"


class SyntheticBucket:
    """`count` keys in ascending order, each computed from its index (see the module docstring).

    Keys, folder names and root keys hold no XML-special character, so they are rendered
    without escaping.
    """

    def __init__(self, count: int, prefixes: int = 16) -> None:
        if prefixes < 1:
            raise ValueError("prefixes must be at least 1")
        width = max(2, len(str(prefixes - 1)))
        labels = [f"p{p:0{width}d}" for p in range(prefixes)]
        roots = ("README.txt", f"{labels[prefixes // 2]}_index.csv", "zz-notes.txt")
        if count < len(roots):
            raise ValueError(f"count must be at least {len(roots)} (the root keys)")
        per_prefix, extra = divmod(count - len(roots), prefixes)
        if per_prefix + 1 > FOLDER_SIZE * 10**_FOLDER_DIGITS:
            raise ValueError("too many keys per prefix for the folder numbering")
        # Segments in key order: a root key (size 1, `root` true) or a prefix's block of keys;
        # sorting on the block's "pNN/" places each root key where it belongs between them.
        blocks = [
            (f"{label}/", label, per_prefix + (p < extra), False) for p, label in enumerate(labels)
        ]
        blocks += [(key, key, 1, True) for key in roots]
        blocks.sort()
        self.count = count
        self._segments: list[tuple[int, str, int, bool]] = []
        self._starts: list[int] = []
        start = 0
        for _, label, size, root in blocks:
            if size:
                self._segments.append((start, label, size, root))
                self._starts.append(start)
                start += size

    def __len__(self) -> int:
        return self.count

    def key(self, index: int) -> str:
        start, label, _, root = self._segments[bisect_right(self._starts, index) - 1]
        if root:
            return label
        number, j = divmod(index - start, FOLDER_SIZE)
        return _folder(label, number) + _NAMES[min(number % 20, 3)][j]

    def keys(self) -> list[str]:
        """Every key, for tests and references: this one list is what the server never builds."""
        return [self.key(i) for i in range(self.count)]

    def contents(self, start: int, stop: int, url: bool) -> list[str]:
        """The <Contents> elements of keys start..stop-1."""
        out: list[str] = []
        names_by_kind = _URL_NAMES if url else _NAMES
        encode = url_encode if url else _same
        s = bisect_right(self._starts, start) - 1
        i = start
        while i < stop:
            seg_start, label, size, root = self._segments[s]
            seg_stop = min(stop, seg_start + size)
            if root:
                out.append(
                    f"<Contents><Key>{encode(label)}</Key><LastModified>{_ROOT_MODIFIED}"
                    f"</LastModified><ETag>&quot;{seg_start * _MIX & _MASK:032x}&quot;</ETag>"
                    "<Size>4096</Size><StorageClass>STANDARD</StorageClass></Contents>"
                )
            else:
                while i < seg_stop:
                    number, j0 = divmod(i - seg_start, FOLDER_SIZE)
                    first = seg_start + number * FOLDER_SIZE
                    j1 = min(FOLDER_SIZE, seg_stop - first)
                    kind = min(number % 20, 3)
                    head = "<Contents><Key>" + encode(_folder(label, number))
                    mid = f"</Key><LastModified>{_modified(number)}</LastModified><ETag>&quot;"
                    names, tails = names_by_kind[kind], _TAILS[kind]
                    out += [
                        f"{head}{names[j]}{mid}{(first + j) * _MIX & _MASK:032x}{tails[j]}"
                        for j in range(j0, j1)
                    ]
                    i = first + j1
            i = seg_stop
            s += 1
        return out


class DirectoryBucket:
    """The files under `root`, keyed by their relative path with `/` separators."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        # MD5 per (path, size, mtime): a file is hashed once however often it is listed or read.
        self._md5: dict[tuple[str, int, int], str] = {}

    def listing(self) -> _FileListing:
        keys = []
        for directory, _, files in os.walk(self.root):
            relative = Path(directory).relative_to(self.root).as_posix()
            base = "" if relative == "." else relative + "/"
            keys += [base + name for name in files]
        keys.sort()  # code point order, which is UTF-8 byte order: S3's
        return _FileListing(self, keys)

    def object(self, key: str) -> tuple[Path, os.stat_result, str] | None:
        """The file behind `key`, its stat and ETag; None if there is none (or it is outside)."""
        try:
            path = (self.root / key).resolve()
            if key.endswith("/") or not path.is_relative_to(self.root) or not path.is_file():
                return None
            stat = path.stat()
        except (OSError, ValueError):  # e.g. a NUL in the key
            return None
        cache_key = (str(path), stat.st_size, stat.st_mtime_ns)
        etag = self._md5.get(cache_key)
        if etag is None:
            with path.open("rb") as file:
                etag = hashlib.file_digest(file, "md5").hexdigest()
            self._md5[cache_key] = etag
        return path, stat, etag


class _FileListing:
    """A snapshot of a `DirectoryBucket`'s keys, listable like a `SyntheticBucket`."""

    def __init__(self, bucket: DirectoryBucket, keys: list[str]) -> None:
        self.bucket = bucket
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def key(self, index: int) -> str:
        return self._keys[index]

    def contents(self, start: int, stop: int, url: bool) -> list[str]:
        encode = url_encode if url else _same
        out = []
        for key in self._keys[start:stop]:
            found = self.bucket.object(key)
            if found is None:  # removed since the walk
                continue
            _, stat, etag = found
            out.append(
                f"<Contents><Key>{escape(encode(key), _ESCAPE_QUOTES)}</Key>"
                f"<LastModified>{_iso(stat.st_mtime)}</LastModified>"
                f"<ETag>&quot;{etag}&quot;</ETag><Size>{stat.st_size}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        return out


class ImageBucket:
    """`count` PNG images, key `i` being `p<i % prefixes>/img-<i, 7 digits>.png`, each one tiny
    valid image (`demo.samples.png(4, 4)`) with the same MD5 ETag: what an import reads."""

    def __init__(self, count: int, prefixes: int = 16) -> None:
        from demo.samples import png

        if prefixes < 1 or count < 0 or count > 10**_FOLDER_DIGITS:
            raise ValueError("images: 0..10,000,000 keys over at least one prefix")
        self.count, self.prefixes = count, prefixes
        self.width = max(2, len(str(prefixes - 1)))
        self.body = png(4, 4)
        self.etag = hashlib.md5(self.body).hexdigest()
        # Prefix p holds the keys i ≡ p (mod prefixes), so its block starts after the smaller ones.
        per_prefix, extra = divmod(count, prefixes)
        self._starts = [p * per_prefix + min(p, extra) for p in range(prefixes + 1)]

    def __len__(self) -> int:
        return self.count

    def key(self, index: int) -> str:
        p = bisect_right(self._starts, index) - 1
        number = p + (index - self._starts[p]) * self.prefixes
        return f"p{p:0{self.width}d}/img-{number:0{_FOLDER_DIGITS}d}.png"

    def number(self, key: str) -> int | None:
        """The image number behind `key`; None if the bucket has no such key."""
        match = re.fullmatch(rf"p(\d{{{self.width}}})/img-(\d{{{_FOLDER_DIGITS}}})\.png", key)
        if match is None:
            return None
        p, number = int(match[1]), int(match[2])
        return number if number < self.count and number % self.prefixes == p else None

    def contents(self, start: int, stop: int, url: bool) -> list[str]:
        tail = (
            f"</Key><LastModified>{_ROOT_MODIFIED}</LastModified><ETag>&quot;{self.etag}&quot;"
            f"</ETag><Size>{len(self.body)}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        )
        return [f"<Contents><Key>{self.key(i)}{tail}" for i in range(start, stop)]


def _iso(seconds: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        + f".{int(seconds * 1000) % 1000:03d}Z"
    )


def _first_not(listing, lo: int, hi: int, before: Callable[[str], bool]) -> int:
    """The first index in lo..hi-1 whose key is not `before` (which holds for a leading run)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if before(listing.key(mid)):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _starting_with(prefix: str) -> Callable[[str], bool]:
    return lambda key: key.startswith(prefix)


def _page(
    listing, prefix: str, delimiter: str, after: str | None, group: str | None, max_keys: int
):
    """One page: runs of key indexes, CommonPrefixes, whether more follow, the last entry."""
    n = len(listing)
    lo = _first_not(listing, 0, n, lambda k: k < prefix)
    hi = _first_not(listing, lo, n, _starting_with(prefix)) if prefix else n
    start = lo
    if after is not None:
        start = _first_not(listing, start, hi, lambda k: k <= after)
    if group is not None:
        start = _first_not(listing, start, hi, lambda k: k < group or k.startswith(group))
    if not delimiter:
        stop = min(start + max_keys, hi)
        last = ("K", listing.key(stop - 1)) if stop > start else None
        return [(start, stop)] if stop > start else [], [], stop < hi and max_keys > 0, last
    runs: list[tuple[int, int]] = []
    groups: list[str] = []
    last = None
    i, entries = start, 0
    while i < hi and entries < max_keys:
        entries += 1
        key = listing.key(i)
        cut = key.find(delimiter, len(prefix))
        if cut < 0:
            if runs and runs[-1][1] == i:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
            last = ("K", key)
            i += 1
        else:
            rolled = key[: cut + len(delimiter)]
            groups.append(rolled)
            last = ("C", rolled)
            i = _first_not(listing, i, hi, _starting_with(rolled))
    return runs, groups, i < hi and max_keys > 0, last


def _token(last: tuple[str, str]) -> str:
    kind, value = last
    return base64.b64encode((kind + value).encode()).decode("ascii")


def _untoken(token: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (decoded[0], decoded[1:]) if decoded[:1] in ("K", "C") else None


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str, **fields: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def xml(self, request_id: str) -> bytes:
        extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in self.fields.items())
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{self.code}</Code>'
            f"<Message>{escape(self.message)}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()


def _invalid(message: str, name: str, value: str) -> S3Error:
    return S3Error(400, "InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


def list_objects_v2(listing, name: str, params: Mapping[str, str]) -> bytes:
    """The ListObjectsV2 response body for query `params` (first value of each); or S3Error."""
    encoding = params.get("encoding-type")
    if encoding is not None and encoding != "url":
        raise _invalid("Invalid Encoding Method specified in Request", "encoding-type", encoding)
    raw_max = params.get("max-keys", "")
    if raw_max and not re.fullmatch(r"[0-9]{1,10}", raw_max):
        raise _invalid(
            "Provided max-keys not an integer or within integer range", "max-keys", raw_max
        )
    max_keys = int(raw_max) if raw_max else MAX_KEYS
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    start_after = params.get("start-after")
    token = params.get("continuation-token")
    after, group = start_after, None
    if token is not None:
        resume = _untoken(token)
        if resume is None:
            raise _invalid(
                "The continuation token provided is incorrect", "continuation-token", token
            )
        kind, value = resume
        after, group = (value, None) if kind == "K" else (None, value)
    runs, groups, truncated, last = _page(
        listing, prefix, delimiter, after, group, min(max_keys, MAX_KEYS)
    )
    encode = url_encode if encoding else _same
    parts = [_XML_HEAD, f"<Name>{name}</Name><Prefix>{escape(encode(prefix))}</Prefix>"]
    if start_after is not None:
        parts.append(f"<StartAfter>{escape(encode(start_after))}</StartAfter>")
    if token is not None:
        parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
    if truncated:
        parts.append(f"<NextContinuationToken>{_token(last)}</NextContinuationToken>")
    count = len(groups) + sum(stop - start for start, stop in runs)
    parts.append(f"<KeyCount>{count}</KeyCount><MaxKeys>{max_keys}</MaxKeys>")
    if delimiter:
        parts.append(f"<Delimiter>{escape(encode(delimiter))}</Delimiter>")
    if encoding:
        parts.append("<EncodingType>url</EncodingType>")
    parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
    for start, stop in runs:
        parts += listing.contents(start, stop, bool(encoding))
    parts += [
        f"<CommonPrefixes><Prefix>{escape(encode(g))}</Prefix></CommonPrefixes>" for g in groups
    ]
    parts.append("</ListBucketResult>")
    return "".join(parts).encode()


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a paging client reuses its connection
    disable_nagle_algorithm = True  # headers and body go out as two writes
    server_version = "AmazonS3"
    server: StandinServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:
        """Silent: a benchmark sends thousands of requests."""

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _refuse(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        error = S3Error(501, "NotImplemented", "Only GET and HEAD are served")
        self._error(error, False, f"{next(self.server.request_ids):016X}")

    do_PUT = do_POST = do_DELETE = do_PATCH = _refuse

    def _answer(self, head: bool) -> None:
        request_id = f"{next(self.server.request_ids):016X}"
        try:
            self._serve(head, request_id)
        except S3Error as error:
            self._error(error, head, request_id)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            # A bug here should read as an S3 error to the client, not a dropped connection
            # that botocore would retry.
            traceback.print_exc()
            self._error(S3Error(500, "InternalError", "The stand-in failed"), head, request_id)

    def _serve(self, head: bool, request_id: str) -> None:
        url = urlsplit(self.path)
        name, key = self._address(url.path)
        buckets = self.server.buckets
        bucket = buckets.get(name)
        if bucket is None:
            raise S3Error(
                404, "NoSuchBucket", "The specified bucket does not exist", BucketName=name
            )
        params: dict[str, str] = {}
        for param, value in parse_qsl(url.query, keep_blank_values=True):
            params.setdefault(param, value)
        if key:
            self._object(bucket, key, head, request_id)
        elif head:
            self._send(200, b"", request_id, head=True)
        elif params.get("list-type") == "2":
            if self.server.delay:
                time.sleep(self.server.delay)
            listing = bucket.listing() if isinstance(bucket, DirectoryBucket) else bucket
            self._send(200, list_objects_v2(listing, name, params), request_id)
        else:
            raise S3Error(501, "NotImplemented", "Only ListObjectsV2 (list-type=2) is served")

    def _address(self, path: str) -> tuple[str, str]:
        """(bucket, key): virtual-host style when the host's first label is a bucket's name."""
        host = (self.headers.get("Host") or "").split(":")[0]
        label = host.split(".")[0]
        if "." in host and label in self.server.buckets:
            return label, unquote(path[1:])
        name, _, key = path[1:].partition("/")
        return unquote(name), unquote(key)

    def _object(self, bucket, key: str, head: bool, request_id: str) -> None:
        path: Path | None = None
        if isinstance(bucket, ImageBucket):
            if bucket.number(key) is None:
                raise S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
            size, modified, etag = len(bucket.body), _IMAGES_MODIFIED, bucket.etag
        elif isinstance(bucket, DirectoryBucket):
            found = bucket.object(key)
            if found is None:
                raise S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
            path, stat, etag = found
            size, modified = stat.st_size, stat.st_mtime
        else:
            raise S3Error(501, "NotImplemented", "The synthetic bucket's objects are listed only")
        offset, length, status = 0, size, 200
        headers = {
            "Last-Modified": email.utils.formatdate(modified, usegmt=True),
            "ETag": f'"{etag}"',
            "Accept-Ranges": "bytes",
        }
        wanted = self.headers.get("Range")
        if wanted:
            match = _RANGE.fullmatch(wanted.strip())
            first, final = (match.group(1), match.group(2)) if match else ("", "")
            if first:
                offset, end = int(first), min(int(final or size - 1), size - 1)
            elif final:
                offset, end = max(size - int(final), 0), size - 1
            else:
                offset, end = 0, -1
            if not match or offset >= size or end < offset:
                raise S3Error(416, "InvalidRange", "The requested range is not satisfiable")
            length, status = end - offset + 1, 206
            headers["Content-Range"] = f"bytes {offset}-{end}/{size}"
        content_type = mimetypes.guess_type(key)[0] or "binary/octet-stream"
        self._start(status, request_id, content_type, length, headers)
        if head or not length:
            return
        if path is None:
            self.wfile.write(bucket.body[offset : offset + length])
        else:
            with path.open("rb") as file:
                self.connection.sendfile(file, offset, length)

    def _send(self, status: int, body: bytes, request_id: str, head: bool = False) -> None:
        self._start(status, request_id, "application/xml", len(body), {})
        if not head:
            self.wfile.write(body)

    def _start(
        self,
        status: int,
        request_id: str,
        content_type: str,
        length: int,
        headers: Mapping[str, str],
    ) -> None:
        self.send_response(status)
        self.send_header("x-amz-request-id", request_id)
        self.send_header("x-amz-id-2", request_id)
        self.send_header("x-amz-bucket-region", self.server.region)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _error(self, error: S3Error, head: bool, request_id: str) -> None:
        # A HEAD's error has no body, as S3's: botocore reports the status code alone.
        self._send(error.status, b"" if head else error.xml(request_id), request_id, head)


class StandinServer(ThreadingHTTPServer):
    """The stand-in's HTTP server; `serve_forever()` runs it."""

    daemon_threads = True
    # 16+ clients connect at once; the default backlog of 5 drops SYNs (a 1 s retry each).
    request_queue_size = 128

    def __init__(
        self,
        keys: int,
        *,
        prefixes: int = 16,
        delay_ms: float = 0,
        directory: str | os.PathLike[str] | None = None,
        bucket: str = BUCKET,
        files_bucket: str = FILES_BUCKET,
        images: int | None = None,
        images_bucket: str = IMAGES_BUCKET,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "eu-west-2",
    ) -> None:
        self.buckets: dict[str, SyntheticBucket | DirectoryBucket | ImageBucket] = {
            bucket: SyntheticBucket(keys, prefixes)
        }
        if directory is not None:
            self.buckets[files_bucket] = DirectoryBucket(directory)
        if images is not None:
            self.buckets[images_bucket] = ImageBucket(images, prefixes)
        self.delay = delay_ms / 1000
        self.region = region
        self.request_ids = itertools.count(1)
        self.host = host
        super().__init__((host, port), _Handler)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.server_port}"


class Standin:
    """A stand-in in a child process: `.endpoint_url`, `.stop()`, or use it in `with`."""

    def __init__(self, process: subprocess.Popen[str], endpoint_url: str) -> None:
        self.process = process
        self.endpoint_url = endpoint_url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()

    def __enter__(self) -> Standin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_standin(
    keys: int,
    *,
    prefixes: int = 16,
    delay_ms: float = 0,
    directory: str | os.PathLike[str] | None = None,
    bucket: str = BUCKET,
    files_bucket: str = FILES_BUCKET,
    images: int | None = None,
    images_bucket: str = IMAGES_BUCKET,
    region: str = "eu-west-2",
) -> Standin:
    """Start a stand-in in a child process on 127.0.0.1; returns once it listens.

    The child is a fresh interpreter (`python -m standins.s3_listing`), not a multiprocessing
    one: nothing of the caller is forked (threads, boto3 clients) and, unlike 'spawn', the
    caller's `__main__` is not re-imported, so a script without a main guard works too.
    """
    SyntheticBucket(keys, prefixes)  # bad arguments fail here, not in the child
    command = [sys.executable, "-m", "standins.s3_listing", "--keys", str(keys)]
    command += ["--prefixes", str(prefixes), "--delay-ms", str(delay_ms), "--region", region]
    command += ["--bucket", bucket, "--files-bucket", files_bucket, "--quiet"]
    if directory is not None:
        command += ["--dir", os.fspath(directory)]
    if images is not None:
        ImageBucket(images, prefixes)  # as above: bad arguments fail here
        command += ["--images", str(images), "--images-bucket", images_bucket]
    environment = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [package_root, environment.get("PYTHONPATH")])
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment)
    standin = Standin(process, "")
    stdout = process.stdout
    assert stdout is not None  # a pipe, as asked
    try:
        ready, _, _ = select.select([stdout], [], [], 60)
        line = stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            raise RuntimeError(f"the S3 stand-in did not start (exit code {process.poll()})")
    except BaseException:
        standin.stop()
        raise
    standin.endpoint_url = line
    return standin


def _exit_with_parent() -> None:
    """Exit when the parent is gone (killed without stop()): a stand-in outliving it is a leak."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def measure(keys: int = 1_000_000, pages: int = 200) -> dict[str, float]:
    """CPU µs to render one 1,000-key page (plain and URL-encoded), and keys/s over HTTP."""
    bucket = SyntheticBucket(keys)
    step = max(1, (keys - MAX_KEYS) // pages)
    result: dict[str, float] = {}
    for label, params in (("plain", {}), ("url", {"encoding-type": "url"})):
        started = time.process_time()
        for page in range(pages):
            list_objects_v2(bucket, BUCKET, {**params, "start-after": bucket.key(page * step)})
        result[f"render_us_per_page_{label}"] = round((time.process_time() - started) / pages * 1e6)
    server = StandinServer(keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    connection = http.client.HTTPConnection(server.host, server.server_port)
    started = time.perf_counter()
    for page in range(pages):
        query = f"list-type=2&encoding-type=url&start-after={quote(bucket.key(page * step))}"
        connection.request("GET", f"/{BUCKET}?{query}")
        connection.getresponse().read()
    result["http_keys_per_second"] = round(pages * MAX_KEYS / (time.perf_counter() - started))
    connection.close()
    server.shutdown()
    server.server_close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m standins.s3_listing", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--prefixes", type=int, default=16)
    parser.add_argument("--delay-ms", type=float, default=0, help="sleep before each LIST answer")
    parser.add_argument("--dir", help="serve this directory's files as the second bucket")
    parser.add_argument("--bucket", default=BUCKET)
    parser.add_argument("--files-bucket", default=FILES_BUCKET)
    parser.add_argument("--images", type=int, help="serve this many PNG images as a third bucket")
    parser.add_argument("--images-bucket", default=IMAGES_BUCKET)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--region", default="eu-west-2", help="sent as x-amz-bucket-region")
    parser.add_argument("--quiet", action="store_true", help="no start-up line on stderr")
    parser.add_argument(
        "--measure", action="store_true", help="print the render cost per page and exit"
    )
    args = parser.parse_args(argv)
    if args.measure:
        print(measure(args.keys))
        return 0
    server = StandinServer(
        args.keys,
        prefixes=args.prefixes,
        delay_ms=args.delay_ms,
        directory=args.dir,
        bucket=args.bucket,
        files_bucket=args.files_bucket,
        images=args.images,
        images_bucket=args.images_bucket,
        host=args.host,
        port=args.port,
        region=args.region,
    )
    with contextlib.suppress(KeyboardInterrupt):
        threading.Thread(target=_exit_with_parent, daemon=True).start()
        if not args.quiet:
            print(f"serving buckets: {', '.join(server.buckets)}", file=sys.stderr, flush=True)
        # The first line on stdout is the endpoint: start_standin() waits for it.
        print(server.endpoint_url, flush=True)
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
