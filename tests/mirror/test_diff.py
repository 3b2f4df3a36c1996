"""The mirror's pure decisions: classification, move pairing, removals and the limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.mirror.diff import (
    UNLINKED,
    Change,
    Held,
    MassDeleteRefused,
    Policy,
    Prior,
    Removals,
    check_limits,
    classify,
    holds,
    pair_moves,
    removal,
    signature,
)
from ingest.model import Entry


def entry(title: str, etags: tuple[str, ...], sizes: tuple[int, ...] = ()) -> Entry:
    keys = tuple(f"{title}{i}" for i in range(len(etags)))
    return Entry("images", title, keys, tuple("u:" + key for key in keys), etags, sizes=sizes)


def prior(title: str, etags: tuple[str, ...], sizes: tuple[int, ...] = (1,), **kw) -> Prior:
    return Prior(f"uuid-{title}", title, ("u:" + title,), etags, signature(etags, sizes), **kw)


def test_signature_needs_one_size_per_etag() -> None:
    assert signature(["a"], [1]) == signature(("a",), (1,))
    assert signature(["a"], []) is None
    assert signature([], []) is None
    assert signature(["a", "b"], [1, 2]) != signature(["b", "a"], [2, 1])  # frame order counts
    assert signature(["a"], [1]) != signature(["a"], [2])  # same ETag, other size


def test_classify() -> None:
    assert classify(entry("a", ("e1",)), prior("a", ("e1",)), False) is Change.UPDATE
    assert classify(entry("a", ("e2",)), prior("a", ("e1",)), True) is Change.CONTENT
    # Recovered from a Folder listing (no ETags): never taken for changed.
    assert classify(entry("a", ("e2",)), prior("a", ()), False) is Change.UPDATE
    assert classify(entry("b", ("e1",)), None, True) is Change.MOVE
    assert classify(entry("b", ("e1",)), None, False) is Change.ADD


def test_one_changed_frame_makes_a_group_changed() -> None:
    before = prior("g/", ("f1", "f2", "f3"), (1, 1, 1))
    assert classify(entry("g/", ("f1", "X", "f3")), before, False) is Change.CONTENT


@pytest.mark.parametrize(
    ("change", "policy", "held"),
    [
        (Change.MOVE, Policy(renames="repoint"), True),
        (Change.MOVE, Policy(renames="ignore"), False),
        (Change.CONTENT, Policy(changes="reimport"), True),
        (Change.CONTENT, Policy(changes="metadata"), False),
        (Change.ADD, Policy(changes="reimport"), False),
        (Change.UPDATE, Policy(changes="reimport"), False),
    ],
)
def test_what_waits_for_the_mirror_step(change: Change, policy: Policy, held: bool) -> None:
    assert holds(change, policy) is held


def test_moves_pair_by_signature_in_title_order() -> None:
    gone = [prior("old/b", ("x",)), prior("old/a", ("x",)), prior("old/c", ("y",))]
    appeared = [
        Held("f2", "new/b", Change.MOVE, signature(["x"], [1])),
        Held("f1", "new/a", Change.MOVE, signature(["x"], [1])),
        Held("f3", "new/z", Change.MOVE, signature(["z"], [1])),
    ]
    pairs = [(p.title, h.title) for p, h in pair_moves(appeared, gone)]
    assert pairs == [("old/a", "new/a"), ("old/b", "new/b")]


identities = st.tuples(st.sampled_from("abc"), st.integers(1, 3))


@given(
    gone=st.lists(identities, max_size=8),
    appeared=st.lists(identities, max_size=8),
)
def test_pairing_is_one_to_one_same_content_and_maximal(gone, appeared) -> None:
    priors = [prior(f"old{i}", (etag,), (size,)) for i, (etag, size) in enumerate(gone)]
    helds = [
        Held(f"fp{i}", f"new{i}", Change.MOVE, signature([etag], [size]))
        for i, (etag, size) in enumerate(appeared)
    ]
    pairs = pair_moves(helds, priors)
    assert len({p.item_uuid for p, _ in pairs}) == len(pairs)
    assert len({h.fingerprint for _, h in pairs}) == len(pairs)
    assert all(p.signature == h.signature for p, h in pairs)
    # Maximal: per signature, as many pairs as the smaller side has.
    for ident in set(gone) | set(appeared):
        sig = signature([ident[0]], [ident[1]])
        expected = min(gone.count(ident), appeared.count(ident))
        assert sum(1 for p, _ in pairs if p.signature == sig) == expected
    # Deterministic whatever order the inputs come in.
    assert pair_moves(list(reversed(helds)), list(reversed(priors))) == pairs


def test_removal_per_policy() -> None:
    present, unlinked = prior("a", ("e",)), prior("a", ("e",), status=UNLINKED)
    assert removal(present, Policy(deletions="keep")) == "keep"
    assert removal(present, Policy(deletions="unlink")) == "unlink"
    assert removal(present, Policy(deletions="delete")) == "delete"
    assert removal(unlinked, Policy(deletions="unlink")) is None  # done by an earlier sync
    assert removal(unlinked, Policy(deletions="keep")) is None
    assert removal(unlinked, Policy(deletions="delete")) == "delete"


def test_limits_refuse_naming_counts_and_the_flag() -> None:
    with pytest.raises(MassDeleteRefused) as refused:
        check_limits(Removals(unlink=2), mirrored=10, scanned=8, policy=Policy())
    message = str(refused.value)
    assert "remove 2 item(s)" in message and "20% of the 10" in message
    assert "--allow-mass-delete" in message and "Nothing was changed" in message
    with pytest.raises(MassDeleteRefused, match="more than maxDeletes 3"):
        check_limits(Removals(delete=4), mirrored=1000, scanned=996, policy=Policy(max_deletes=3))
    check_limits(Removals(unlink=1), mirrored=10, scanned=9, policy=Policy())  # 10%: allowed
    check_limits(Removals(unlink=9), mirrored=10, scanned=1, policy=Policy(allow_mass_delete=True))
    check_limits(Removals(), mirrored=10, scanned=0, policy=Policy())  # nothing to remove


def test_an_empty_listing_never_removes_even_when_allowed() -> None:
    with pytest.raises(MassDeleteRefused, match="found no objects"):
        check_limits(
            Removals(unlink=1), mirrored=1, scanned=0, policy=Policy(allow_mass_delete=True)
        )


@given(
    unlink=st.integers(0, 50),
    delete=st.integers(0, 50),
    reimport=st.integers(0, 50),
    mirrored=st.integers(0, 200),
    max_deletes=st.integers(0, 100),
    fraction=st.floats(0, 1),
)
def test_limits_allow_exactly_what_is_within_both(
    unlink, delete, reimport, mirrored, max_deletes, fraction
) -> None:
    removals = Removals(unlink, delete, reimport)
    policy = Policy(max_deletes=max_deletes, max_delete_fraction=fraction)
    total = removals.total
    share = total / mirrored if mirrored else 1.0
    within = total == 0 or (total <= max_deletes and share <= fraction)
    try:
        check_limits(removals, mirrored, scanned=1, policy=policy)
        refused = False
    except MassDeleteRefused:
        refused = True
    assert refused is not within
