"""Decoding and ordering S3 event notifications: pure, no AWS."""

from __future__ import annotations

import json
import random
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.watch.events import UndecodableMessage, decode_key, decode_message, latest_per_key


def notification(*records: tuple[str, str, str], bucket: str = "b") -> str:
    """A body as S3 sends it: (event name, key as stored, sequencer) per record."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": name,
                    "eventTime": "2026-12-01T10:00:00.000Z",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {"key": quote_plus(key, safe="/"), "sequencer": sequencer},
                    },
                }
                for name, key, sequencer in records
            ]
        }
    )


@given(st.text(min_size=1))
def test_a_key_decodes_to_what_was_stored_whatever_its_characters(key: str) -> None:
    assert decode_key(quote_plus(key)) == key
    assert decode_key(quote_plus(key, safe="/")) == key  # as AWS sends it: '/' left alone


def test_spaces_pluses_percents_and_accents_decode() -> None:
    [event] = decode_message(notification(("ObjectCreated:Put", "a b/1+1=2 %20 été.png", "01")))
    assert event.key == "a b/1+1=2 %20 été.png"
    assert decode_key("dog+1.jpg") == "dog 1.jpg" and decode_key("1%2B1.png") == "1+1.png"


def test_the_test_event_carries_nothing() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert decode_message(body) == []


@pytest.mark.parametrize("body", ["not json", "[1]", '{"Records": "x"}', '{"Records": [{}]}'])
def test_a_body_that_is_not_an_s3_notification_is_undecodable(body: str) -> None:
    with pytest.raises(UndecodableMessage):
        decode_message(body)


def test_sequencers_compare_after_left_padding() -> None:
    # "FF" < "0100" once padded; as plain strings "FF" would win.
    events = decode_message(
        notification(("ObjectCreated:Put", "k", "0100"), ("ObjectRemoved:Delete", "k", "FF"))
    )
    assert latest_per_key(events)["k"].name == "ObjectCreated:Put"


def test_a_delete_then_a_re_create_in_one_batch_ends_created() -> None:
    events = decode_message(
        notification(("ObjectRemoved:Delete", "k", "0A"), ("ObjectCreated:Put", "k", "0B"))
    )
    assert not latest_per_key(list(reversed(events)))["k"].removed


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c d"]),
            st.integers(min_value=0, max_value=2**70),
            st.booleans(),
        ),
        min_size=1,
        max_size=30,
        unique_by=lambda record: (record[0], record[1]),
    ),
    st.randoms(),
)
def test_the_latest_event_per_key_does_not_depend_on_arrival_order(records, shuffle) -> None:
    # Hex sequencers of varied lengths, with or without leading zeros.
    encoded = [
        ("ObjectRemoved:Delete" if removed else "ObjectCreated:Put", key, f"{n:0{n % 5 + 1}X}")
        for key, n, removed in records
    ]
    expected = {}
    for name, key, sequencer in encoded:
        if key not in expected or int(sequencer, 16) > int(expected[key][1], 16):
            expected[key] = (name, sequencer)
    shuffled = list(encoded)
    shuffle.shuffle(shuffled)
    latest = latest_per_key(decode_message(notification(*shuffled)))
    assert {key: (e.name, e.sequencer) for key, e in latest.items()} == expected


def test_without_sequencers_the_later_event_time_then_arrival_decides() -> None:
    body = json.loads(
        notification(("ObjectCreated:Put", "k", ""), ("ObjectRemoved:Delete", "k", ""))
    )
    body["Records"][0]["eventTime"] = "2026-12-01T10:00:01.000Z"
    assert latest_per_key(decode_message(json.dumps(body)))["k"].name == "ObjectCreated:Put"
    same_time = decode_message(
        notification(("ObjectCreated:Put", "k", ""), ("ObjectRemoved:Delete", "k", ""))
    )
    assert latest_per_key(same_time)["k"].removed
    random.shuffle(same_time)
    assert latest_per_key(same_time)["k"].removed  # arrival index, not list position


def eventbridge(detail_type: str, key: str, sequencer: str = "", bucket: str = "b") -> str:
    """A body as an EventBridge rule delivers an S3 event to SQS (key not URL-encoded)."""
    return json.dumps(
        {
            "version": "0",
            "detail-type": detail_type,
            "source": "aws.s3",
            "time": "2026-12-01T10:00:00Z",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket},
                "object": {"key": key, "size": 3, "etag": "e", "sequencer": sequencer},
                "reason": "PutObject" if detail_type == "Object Created" else "DeleteObject",
            },
        }
    )


@given(st.text(min_size=1))
def test_an_eventbridge_key_is_taken_as_it_is_whatever_its_characters(key: str) -> None:
    [event] = decode_message(eventbridge("Object Created", key), arrival=7)
    assert (event.key, event.bucket, event.removed, event.arrival) == (key, "b", False, 7)


def test_an_eventbridge_key_that_looks_encoded_is_not_decoded() -> None:
    [event] = decode_message(eventbridge("Object Deleted", "a+b %2F c.png"))
    assert event.key == "a+b %2F c.png" and event.removed
    assert event.name == "ObjectRemoved:DeleteObject"


def test_moto_s_eventbridge_time_in_epoch_seconds_decodes() -> None:
    body = json.loads(eventbridge("Object Created", "k"))
    body["time"] = 1796119200.5
    [event] = decode_message(json.dumps(body))
    assert event.time is not None and event.time.isoformat() == "2026-12-01T10:00:00.500000+00:00"


def test_other_s3_eventbridge_kinds_carry_nothing() -> None:
    assert decode_message(eventbridge("Object Tags Added", "k")) == []


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"detail-type": "Object Created", "source": "aws.ec2", "detail": {}}),
        json.dumps({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}),
        json.dumps(
            {
                "detail-type": "Object Created",
                "source": "aws.s3",
                "detail": {"bucket": {"name": "b"}, "object": {"key": 5}},
            }
        ),
    ],
)
def test_a_malformed_eventbridge_event_is_undecodable(body: str) -> None:
    with pytest.raises(UndecodableMessage):
        decode_message(body)


@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=2**40), st.booleans(), st.booleans()),
        min_size=1,
        max_size=12,
        unique_by=lambda record: record[0],
    ),
    st.randoms(),
)
def test_both_shapes_order_by_sequencer_together(records, shuffle) -> None:
    # (sequencer, removed, through EventBridge) for one key "a b": the greatest wins.
    bodies = []
    for n, removed, bridged in records:
        if bridged:
            bodies.append(
                eventbridge("Object Deleted" if removed else "Object Created", "a b", f"{n:X}")
            )
        else:
            name = "ObjectRemoved:Delete" if removed else "ObjectCreated:Put"
            bodies.append(notification((name, "a b", f"{n:X}")))
    shuffle.shuffle(bodies)
    events = [e for i, body in enumerate(bodies) for e in decode_message(body, arrival=i)]
    latest = latest_per_key(events)["a b"]
    assert latest.removed == max(records)[1]
