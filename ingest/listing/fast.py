"""The fast listing source: boto3's own ListObjectsV2 calls, without botocore's parser.

botocore turns each listed key into Python objects through its generic shape parser, which
caps a process's listing rate (`bench/README.md`); threads don't help, the GIL serialises
them. This lister keeps everything else of boto3 (credentials from the profile,
environment or role; the endpoint and addressing style, `AWS_ENDPOINT_URL` included;
header signing; retries; proxies and CA bundle; error parsing) and swaps only the parse of
a successful page: a `before-parse` hook, armed only for this lister's calls, takes the raw
body and hands botocore an empty document instead. The body is then read by four regular
expressions, far cheaper, and by the consumer rather than the listing threads, which only
wait on the network and hand raw pages to their `PageSpool` (parsing in the threads
measured no cheaper: `bench/README.md`).

With `encoding-type=url` (boto3 asks for it too) S3 percent-encodes keys, so any key S3 can
store (control characters, `//`, `./`, a trailing `/`) arrives intact: the reason this is
not built on `obstore`, whose object_store paths reject or rewrite such keys (measured:
`dir/` is listed as `dir`; `a//b`, `./x` or a tab in a key abort the listing).

Configured prefixes are listed in parallel. With none configured, the lister first lists
the bucket with delimiter `/`: the top-level folders become the prefixes, and the objects at
the top, which that listing returns anyway, are passed on as they are.

A prefix's pages are sequential (each needs the previous one's token), so one prefix of 20k
keys takes 20 round trips however many threads wait. A prefix whose first page is not its
last is therefore split into key ranges listed side by side (`_split`): its sub-folders (one
listing with delimiter `/`) are the split points, one folder short of `PAGES_PER_RANGE`
pages apart as its first page's keys per folder suggest. Range i is the keys after point
i-1 up to and including point i: `StartAfter`, then stop at the first key past the next
point (that last page's surplus is the next range's start, listed there). One folder
short: a range of equal folders then ends inside its last page, so the key that proves
its end comes with its own keys; a range of exactly whole pages would need one more
request for it. Ranges partition the key space
whatever the points are, so keys at a point, empty ranges or a folder that grew meanwhile
cost a request at most, never a key twice or lost. Prefixes are probed (first page, folders)
`workers` ahead of the one being read, so later ranges start without waiting.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import partial
from html import unescape
from typing import Any, NamedTuple
from urllib.parse import unquote_plus
from xml.etree import ElementTree

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.httpsession import URLLib3Session
from botocore.utils import get_environ_proxies

from ingest.listing.scan import (
    ListedObject,
    fan_out,
    listing_errors,
    normalise_prefixes,
    nothing_under,
)
from ingest.listing.spool import in_background

_HOOK_ID = "ingest.listing.fast.send-keeping-body"
_EMPTY_RESULT = b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
# Per thread, during this lister's own calls: the HTTP session to send with, and the page.
_call = threading.local()

_KEY = re.compile(r"<Key>([^<]*)</Key>")
_SIZE = re.compile(r"<Size>(\d+)</Size>")
_ETAG = re.compile(r"<ETag>(?:&quot;|\")?([^<&\"]*)(?:&quot;|\")?</ETag>")
_LAST_MODIFIED = re.compile(r"<LastModified>([^<]*)</LastModified>")
_CONTENTS = re.compile(
    r"<Contents><Key>([^<]*)</Key><LastModified>([^<]*)</LastModified>"
    r"<ETag>(?:&quot;|\")?([^<&\"]*)(?:&quot;|\")?</ETag>"
    r"(?:<Checksum\w*>[^<]*</Checksum\w*>)*<Size>(\d+)</Size>"
)
_COMMON_PREFIX = re.compile(r"<CommonPrefixes><Prefix>([^<]*)</Prefix></CommonPrefixes>")
_NEXT_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")
_TRUNCATED = re.compile(rb"<IsTruncated>true</IsTruncated>")
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
# A range's pages, as its folders' keys are expected. Few: a prefix's ranges are listed side
# by side, so the first prefix, which the consumer waits for, is whole after as many round
# trips (~4 against ~8: `bench/README.md`); each range costs at most one page more.
PAGES_PER_RANGE = 4


class _Listed(NamedTuple):
    """A page a discovery already listed: passed on as it is."""

    objects: list[Any]


class _Range(NamedTuple):
    """The keys of `prefix` after `after` (None: from its first) up to and including `upto`
    (None: to its end). `first`: its first page, already listed, and `token` the
    continuation after it (None: that page was the range's last)."""

    prefix: str
    after: str | None
    upto: str | None
    first: bytes | None = None
    token: str | None = None


def _decode_key(text: str) -> str:
    return unquote_plus(text) if "%" in text or "+" in text else text


def _key_decoder(text: str) -> Callable[[str], str]:
    """How this page's keys read: URL-encoded only if the page says so (as botocore decides;
    boto3 asks for `encoding-type=url`, an S3-compatible store may not honour it)."""
    return _decode_key if "<EncodingType>url</EncodingType>" in text else str


def _contents(text: str) -> list[tuple[str, str, str, str]] | None:
    """(key, last modified, ETag, size) of each `<Contents>` of a page, in order; None for
    a page in a shape this doesn't expect.

    One scan when the elements come in S3's own order (checksums may sit between ETag and
    Size); else four, one per element: each `<Contents>` holds exactly one Key,
    LastModified, ETag and Size, and those elements appear nowhere else in the document,
    so the four line up."""
    expected = text.count("<Contents>")
    rows = _CONTENTS.findall(text)
    if len(rows) == expected:
        return rows
    keys = _KEY.findall(text)
    times = _LAST_MODIFIED.findall(text)
    etags = _ETAG.findall(text)
    sizes = _SIZE.findall(text)
    if len(keys) == len(times) == len(etags) == len(sizes) == expected:
        return list(zip(keys, times, etags, sizes, strict=True))
    return None


def parse_page(body: bytes) -> list[ListedObject]:
    """The objects of one ListObjectsV2 response (encoding-type=url), in order; a page in
    a shape `_contents` doesn't expect is parsed with ElementTree instead."""
    text = body.decode("utf-8")
    rows = _contents(text)
    if rows is None:
        return _parse_page_slowly(body)
    new, parse_time = tuple.__new__, datetime.fromisoformat
    if "<EncodingType>url</EncodingType>" in text:
        return [
            new(ListedObject, (_decode_key(key), int(size), etag, parse_time(when)))
            for key, when, etag, size in rows
        ]
    return [
        new(ListedObject, (key, int(size), etag, parse_time(when)))
        for key, when, etag, size in rows
    ]


def parse_records(body: bytes) -> list[tuple[str, int, str, None]]:
    """`parse_page`'s records as plain tuples without LastModified (None): what the child
    lister sends (`ingest.listing.process`). Nothing in a plan reads LastModified, and
    parsing it cost the planner more than any other field."""
    text = body.decode("utf-8")
    rows = _contents(text)
    if rows is None:
        return [(key, size, etag, None) for key, size, etag, _ in _parse_page_slowly(body)]
    if "<EncodingType>url</EncodingType>" in text:
        return [
            (unquote_plus(key) if "%" in key or "+" in key else key, int(size), etag, None)
            for key, _, etag, size in rows
        ]
    return [(key, int(size), etag, None) for key, _, etag, size in rows]


def _parse_page_slowly(body: bytes) -> list[ListedObject]:
    root = ElementTree.fromstring(body)
    decode = _key_decoder(body.decode("utf-8"))
    return [
        ListedObject(
            decode(item.findtext(f"{_NS}Key", "")),
            int(item.findtext(f"{_NS}Size", "0")),
            item.findtext(f"{_NS}ETag", "").strip('"'),
            datetime.fromisoformat(item.findtext(f"{_NS}LastModified", "")),
        )
        for item in root.iter(f"{_NS}Contents")
    ]


def sub_prefixes(body: bytes) -> list[str]:
    text = body.decode("utf-8")
    decode = _key_decoder(text)
    return [decode(prefix) for prefix in _COMMON_PREFIX.findall(text)]


class FastLister:
    """Lists `bucket` through `s3`, a boto3 client (its credentials, endpoint and retries)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        workers: int = 16,
        decode: Callable[[bytes], list[Any]] = parse_page,
        page_size: int = 1000,
    ) -> None:
        """`decode`: how a page's body becomes records (`parse_records` for plain tuples);
        `page_size`: keys per page asked for (`MaxKeys`; 1,000 is S3's most)."""
        self._s3 = s3
        self._decode = decode
        self._bucket = bucket
        self._workers = workers
        self._page_size = page_size
        self._http = URLLib3Session(
            verify=botocore.session.get_session().get_config_variable("ca_bundle") or True,
            proxies=s3.meta.config.proxies or get_environ_proxies(s3.meta.endpoint_url),
            timeout=60,
            # The listing threads and as many probing prefixes ahead.
            max_pool_connections=2 * workers + 2,
        )
        # Registered once per client (same unique id), armed per call: the client's other
        # ListObjectsV2 users still send and parse as ever.
        s3.meta.events.register(
            "before-send.s3.ListObjectsV2", _send_keeping_body, unique_id=_HOOK_ID
        )

    def objects(self, prefixes: list[str]) -> Iterator[ListedObject]:
        """Every object under `prefixes`, in key order; an empty configured prefix is an error."""
        units = self._ranges(self._units(normalise_prefixes(prefixes)))
        return fan_out(units, self._start, self._workers)

    def _units(self, prefixes: list[str]) -> Iterator[str | _Listed]:
        """Configured prefixes are listed as they are; the whole bucket is split by folder.

        A folder chain with nothing beside it (`data/` alone at the top, `data/2026/` alone
        in it) is followed down, so a bucket keeping everything under one folder still
        fans out."""
        if prefixes != [""]:
            yield from prefixes
            return
        prefix = ""
        while True:
            units = self._discover(prefix)
            first = next(units, None)
            if first is None:
                raise nothing_under(self._where(prefix))
            second = next(units, None)
            if second is None and isinstance(first, str):
                prefix = first
                continue
            yield first
            if second is not None:
                yield second
                yield from units
            return

    def _discover(self, prefix: str) -> Iterator[str | _Listed]:
        """`prefix`'s sub-prefixes and direct objects, merged in key order.

        A sub-prefix `p/` spans keys starting with `p/`; no direct object (it has no `/`
        after `prefix`) starts with it, so sorting both by their own string orders the
        units as their keys are ordered."""
        for body in self._pages(prefix, delimiter="/"):
            objects = self._decode(body)
            at = 0
            for sub in sorted(sub_prefixes(body)):
                upto = at
                while upto < len(objects) and objects[upto][0] < sub:
                    upto += 1
                if upto > at:
                    yield _Listed(objects[at:upto])
                yield sub
                at = upto
            if at < len(objects):
                yield _Listed(objects[at:])

    def _ranges(self, units: Iterator[str | _Listed]) -> Iterator[_Range | _Listed]:
        """Each prefix of `units` as its key ranges (`_split`), in order; prefixes are
        probed in threads up to `workers` ahead of the one whose ranges are handed out."""
        pool = ThreadPoolExecutor(self._workers, thread_name_prefix="probe")
        ahead: deque[_Listed | Future[tuple[list[_Range], str | None]]] = deque()

        def handed_out() -> Iterator[_Range | _Listed]:
            probe = ahead.popleft()
            while not isinstance(probe, _Listed):
                ranges, rest = probe.result()
                if rest is not None:  # probed now, while its predecessors are listed
                    probe = pool.submit(self._split, ranges[0].prefix, rest)
                yield from ranges
                if rest is None:
                    return
            yield probe

        try:
            for unit in units:
                ahead.append(unit if isinstance(unit, _Listed) else pool.submit(self._split, unit))
                if len(ahead) > self._workers:
                    yield from handed_out()
            while ahead:
                yield from handed_out()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _split(self, prefix: str, after: str | None = None) -> tuple[list[_Range], str | None]:
        """`prefix`'s keys after `after` as consecutive ranges, and the point after which
        the rest is still to split (None: the ranges reach the prefix's end).

        The first page comes first: a prefix it holds whole is one range, no further
        request. Else one listing with delimiter `/` names its next sub-folders; as many
        folders as the first page spanned, times `PAGES_PER_RANGE`, less one, make a range. A
        delimiter page that didn't reach the end (more folders than a page holds) leaves
        the rest after its last split point for another probe."""
        first = next(self._pages(prefix, after=after))
        token = _continuation(first)
        last = None if token is None else self._last_key(first)
        if last is None:
            return [_Range(prefix, after, None, first, token)], None
        listing = next(self._pages(prefix, delimiter="/", after=after))
        folders = sub_prefixes(listing)
        spanned = sum(folder < last for folder in folders)
        rest = [folder for folder in folders if folder > last]
        step = max(1, max(1, spanned) * PAGES_PER_RANGE - 1)
        points = rest[step::step]
        more = _continuation(listing) is not None and bool(rest)
        if more and (not points or points[-1] != rest[-1]):
            points.append(rest[-1])
        ranges = [_Range(prefix, after, points[0] if points else None, first, token)]
        ends: list[str | None] = [*points[1:], None]
        ranges += [_Range(prefix, start, end) for start, end in zip(points, ends, strict=False)]
        if more:
            return ranges[:-1], points[-1]
        return ranges, None

    def _start(self, unit: _Range | _Listed) -> Any:
        if isinstance(unit, _Listed):
            return [unit.objects]
        decode = self._decode
        if unit.after is not None or unit.upto is not None:
            decode = partial(_within, self._decode, unit.after, unit.upto)
        if unit.first is not None and unit.token is None:
            return [decode(unit.first)]
        return in_background(self._bodies(unit), f"scan:{unit.prefix}", decode=decode)

    def _bodies(self, unit: _Range) -> Iterator[bytes]:
        """The raw pages of `unit`, the last one the first past its end."""
        if unit.first is not None:
            yield unit.first
        for body in self._pages(unit.prefix, after=unit.after, token=unit.token):
            yield body
            if unit.upto is not None and self._past(body, unit.upto):
                return

    def _past(self, body: bytes, upto: str) -> bool:
        last = self._last_key(body)
        return last is not None and last > upto

    def _last_key(self, body: bytes) -> str | None:
        """The page's last key, as its records will read it: alone on a URL-encoded page
        (the usual one), else from the decoded page."""
        if b"<EncodingType>url</EncodingType>" not in body:
            records = self._decode(body)
            return records[-1][0] if records else None
        at = body.rfind(b"<Key>")
        if at < 0:
            return None
        return _decode_key(body[at + 5 : body.index(b"</Key>", at)].decode())

    def _pages(
        self,
        prefix: str,
        delimiter: str | None = None,
        after: str | None = None,
        token: str | None = None,
    ) -> Iterator[bytes]:
        """Raw ListObjectsV2 bodies of `prefix` (keys after `after`, or from continuation
        `token`), page after page; the first page of a whole prefix must not be empty."""
        params = {"Bucket": self._bucket, "Prefix": prefix, "MaxKeys": self._page_size}
        if delimiter:
            params["Delimiter"] = delimiter
        if after is not None:
            params["StartAfter"] = after
        whole = after is None and token is None
        while True:
            if token is not None:
                params["ContinuationToken"] = token
            with listing_errors(self._where(prefix)):
                _call.http = self._http
                try:
                    self._s3.list_objects_v2(**params)
                    body = _call.body
                finally:
                    _call.http = _call.body = None
            if whole and b"<Contents>" not in body and b"<CommonPrefixes>" not in body:
                raise nothing_under(self._where(prefix))
            whole = False
            yield body
            token = _continuation(body)
            if token is None:
                return

    def _where(self, prefix: str) -> str:
        return f"s3://{self._bucket}/{prefix}"


def _within(
    decode: Callable[[bytes], list[Any]], after: str | None, upto: str | None, body: bytes
) -> list[Any]:
    """A range's page without the keys past its end (its last page's surplus) nor, should a
    store ignore `StartAfter`, the keys before its start."""
    records = decode(body)
    if records and after is not None and records[0][0] <= after:
        records = [record for record in records if record[0] > after]
    if records and upto is not None and records[-1][0] > upto:
        records = [record for record in records if record[0] <= upto]
    return records


def _continuation(body: bytes) -> str | None:
    """The token of the page after this one; None on the last page."""
    token = _NEXT_TOKEN.search(body)
    if token is None or not _TRUNCATED.search(body):
        return None
    return unescape(token.group(1).decode())


def _send_keeping_body(request: Any, **_: Any) -> AWSResponse | None:
    """botocore's `before-send` event: send the signed request ourselves; keep a page's body.

    botocore gets the response as it came for errors (it parses them, retries what it
    retries, raises the rest) and an empty result for a page, whose body waits in `_call`:
    otherwise botocore would parse it twice (its check for an error inside a 200 response,
    then the shapes)."""
    http = getattr(_call, "http", None)
    if http is None:  # not this lister's call
        return None
    response = http.send(request)
    if response.status_code != 200 or b"<Error>" in response.content[:512]:
        return response
    _call.body = response.content
    return AWSResponse(request.url, 200, response.headers, _Body(_EMPTY_RESULT))


class _Body:
    """What `AWSResponse` reads a body from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data
