"""An entry's fingerprint is the SHA-256 of one JSON document: written by hand in the common
case, by `json.dumps` otherwise, and the two must never differ by a byte (the run state
finds its entries by fingerprint: a different one would import everything again)."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from ingest.encord_format import KINDS
from ingest.model import Entry

_TEXT = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)),  # the common case
    st.text(),  # quotes, backslashes, control characters, any Unicode
)
_METADATA = st.one_of(
    st.none(),
    st.dictionaries(st.text(), st.one_of(st.text(), st.integers(), st.booleans()), max_size=3),
)


def _by_json_dumps(entry: Entry) -> str:
    fields = ("kind", "title", "urls", "etags", "client_metadata", "create_video")
    payload = json.dumps(
        [getattr(entry, field) for field in fields], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


@given(
    kind=st.sampled_from(KINDS),
    title=_TEXT,
    urls=st.lists(_TEXT, min_size=1, max_size=3),
    etags=st.lists(_TEXT, max_size=3),
    metadata=_METADATA,
    create_video=st.booleans(),
)
def test_the_fingerprint_is_that_of_json_dumps(
    kind: str,
    title: str,
    urls: list[str],
    etags: list[str],
    metadata: dict | None,
    create_video: bool,
) -> None:
    entry = Entry(
        kind, title, tuple(urls), tuple(urls), tuple(etags), metadata, create_video=create_video
    )

    assert entry.fingerprint == _by_json_dumps(entry)


def test_a_title_json_escapes_is_fingerprinted_as_json_writes_it() -> None:
    for title in ('a "quoted" name', "back\\slash", "tab\there", "del\x7f", "café"):
        entry = Entry("images", title, ("k",), ("https://b/k",), ("e",))
        assert entry.fingerprint == _by_json_dumps(entry)
