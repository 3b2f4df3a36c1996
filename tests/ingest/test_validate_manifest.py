"""`ingest validate`: hand-written manifests, each problem with its JSON path and fix."""

from __future__ import annotations

import json

import pytest

from ingest.cli.main import main
from ingest.plan import validate
from ingest.plan.validate import validate_document

BASE = "https://media.s3.eu-west-2.amazonaws.com/"


def problems(document) -> list[tuple[str, str]]:
    return [(problem.path, problem.message) for problem in validate_document(document)[0]]


def test_a_good_hand_written_manifest_passes() -> None:
    document = {
        "videos": [{"objectUrl": BASE + "v.mp4", "videoMetadata": {"fps": 25}}],
        "images": [{"objectUrl": BASE + "a.png", "title": "a", "clientMetadata": {"k": 1}}],
        "image_groups": [
            {
                "title": "g",
                "createVideo": True,
                "objectUrl_0": BASE + "1.png",
                "objectUrl_1": BASE + "2.png",
            }
        ],
        "dicom_series": [{"title": "s", "objectUrl_0": BASE + "slice"}],
        "skip_duplicate_urls": True,
        "upsert_metadata": False,
    }
    assert validate_document(document) == ([], 4, 5)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"image": []}, [("$.image", "unknown top-level key; use one of: videos, images")]),
        ({"images": {}}, [("$.images", "must be a list of entries")]),
        ({"skip_duplicate_urls": "yes"}, [("$.skip_duplicate_urls", "must be true or false")]),
        ({"images": [{"title": "a"}]}, [("$.images[0].objectUrl", "required: add it")]),
        (
            {"images": [{"objectUrl": BASE + "a.png", "objectURL": "x"}]},
            [("$.images[0].objectURL", "unknown field: remove it or fix its spelling")],
        ),
        (
            {"images": [{"objectUrl": BASE + "a b.png"}]},
            [("$.images[0].objectUrl", "contains whitespace: percent-encode the key")],
        ),
        (
            {"images": [{"objectUrl": "images/a.png"}]},
            [
                (
                    "$.images[0].objectUrl",
                    "not a URL: use https://<bucket>.s3.<region>.amazonaws.com/<key>",
                )
            ],
        ),
        (
            {"images": [{"objectUrl": BASE + "clip.mp4"}]},
            [("$.images[0].objectUrl", "the extension says videos, not images: move it")],
        ),
        (
            {"images": [{"objectUrl": BASE + "a.png", "title": "t" * 301}]},
            [("$.images[0].title", "longer than Encord's 300 characters: shorten it")],
        ),
        (
            {
                "images": [
                    {"objectUrl": BASE + "a.png", "title": "t"},
                    {"objectUrl": BASE + "b.png", "title": "t"},
                ]
            },
            [("$.images[1].title", "same title as $.images[0]; make titles unique")],
        ),
        (
            {
                "image_groups": [
                    {"title": "g", "objectUrl_0": BASE + "1.png", "objectUrl_2": BASE + "3.png"}
                ]
            },
            [
                (
                    "$.image_groups[0]",
                    "frames must be numbered objectUrl_0 … objectUrl_N without gaps",
                )
            ],
        ),
        (
            {"image_groups": [{"objectUrl_0": BASE + "1.png"}]},
            [("$.image_groups[0].title", "required: add it")],
        ),
        (
            {"dicom_series": [{"title": "s", "objectUrl_0": BASE + "x.png"}]},
            [("$.dicom_series[0].objectUrl_0", "the extension says images, not dicom")],
        ),
        (
            {"images": [{"objectUrl": BASE + "x" * 17000 + ".png"}]},
            [("$.images[0].objectUrl", "longer than Encord's 16 KB per URL")],
        ),
    ],
)
def test_each_problem_names_the_entry_and_the_fix(document, expected) -> None:
    found = problems(document)
    assert [path for path, _ in found] == [path for path, _ in expected]
    for (_, message), (_, start) in zip(found, expected, strict=True):
        assert message.startswith(start)


def test_over_limit_files_are_rejected(monkeypatch) -> None:
    monkeypatch.setattr(validate, "MAX_ITEMS", 2)  # the real 500,000 would only be slower
    monkeypatch.setattr(validate, "MAX_URLS", 3)
    frames = {f"objectUrl_{i}": f"{BASE}{i}.png" for i in range(3)}
    document = {
        "images": [{"objectUrl": BASE + "a.png"}],
        "image_groups": [{"title": "g", **frames}] * 2,
    }
    assert problems(document)[-2:] == [
        ("$", "3 entries; Encord takes at most 2 per file: split it"),
        ("$", "7 URLs; Encord takes at most 3 per file: split it"),
    ]


def test_the_cli_lists_problems_then_exits_2(tmp_path, capsys) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"images": [{"objectUrl": BASE + "a.png"}]}))
    bad.write_text(json.dumps({"images": [{"objectUrl": BASE + "a b.png"}, {}]}))
    assert main(["validate", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == f"{good}: valid (1 entries, 1 URLs)\n"
    lines = err.splitlines()
    assert lines[0].startswith(f"{bad} $.images[0].objectUrl: contains whitespace")
    assert lines[1] == f"{bad} $.images[1].objectUrl: required: add it"
    assert lines[2] == f"error: invalid manifest(s): {bad} (2); fix the entries listed above"


@pytest.mark.parametrize(
    ("content", "message"), [("{", "is not JSON: Expecting"), (None, "cannot read")]
)
def test_unreadable_files_are_one_line(tmp_path, capsys, content, message) -> None:
    path = tmp_path / "m.json"
    if content is not None:
        path.write_text(content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


_EVERY_WHITESPACE = [chr(code) for code in range(0x110000) if chr(code).isspace()]


@pytest.mark.parametrize(
    "url",
    [
        *(f"{BASE}a{space}b.png" for space in _EVERY_WHITESPACE),
        *(f"{BASE}a.png{space}" for space in _EVERY_WHITESPACE),
        *(f"{space}{BASE}a.png" for space in _EVERY_WHITESPACE),
        "",
        "https://",
        "ftp://host/a.png",
        BASE + "a%20b.png",
        BASE + "é.png",
        BASE + "x" * 20_000,
    ],
)
def test_the_planners_quick_check_finds_what_the_full_check_finds(url: str) -> None:
    quick = validate.entry_problems("$.images[0]", "images", "a", (url,))
    assert quick == validate._check_urls("$.images[0]", "images", (url,), check_kind=False)
    if any(char.isspace() for char in url):
        assert quick and "whitespace" in quick[0].message


def test_the_quick_check_and_the_full_check_mean_the_same_whitespace() -> None:
    # `str.split()` cuts at `str.isspace` characters; `_url_problem` searches for `\s`.
    matched = [chr(code) for code in range(0x110000) if validate._WHITESPACE.match(chr(code))]
    assert matched == _EVERY_WHITESPACE
