"""Discovery: which files a source holds, and what a run does with each, given the manifest."""

from __future__ import annotations

import hashlib

import pytest

from core.discovery import SourceError, SourceFile, fingerprint, list_files, plan


def _touch(path, data: bytes = b"x\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_list_files_searches_a_directory_recursively_and_sorts_what_it_keeps(tmp_path):
    for name in ("b.jsonl", "a.json", "sub/deep/c.log", "sub/d.jsonl.gz"):
        _touch(tmp_path / name)
    found, skipped = list_files(tmp_path, "jsonl")
    assert found == sorted(found)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in found) == [
        "a.json",
        "b.jsonl",
        "sub/d.jsonl.gz",
        "sub/deep/c.log",
    ]
    assert skipped == []
    assert all(p.is_absolute() for p in found)


@pytest.mark.parametrize(
    ("name", "fmt", "accepted"),
    [
        ("access.jsonl", "jsonl", True),
        ("access.json.gz", "jsonl", True),
        ("access.log", "jsonl", True),
        ("access.log.1", "combined", True),
        ("access.log.2.gz", "combined", True),
        ("access.txt", "combined", True),
        ("access.txt", "jsonl", False),
        ("notes.csv", "jsonl", False),
        (".hidden.jsonl", "jsonl", False),
    ],
    ids=[
        "jsonl-extension",
        "gzipped-json",
        "log-extension-for-jsonl",
        "logrotate-numbered-file",
        "logrotate-numbered-gzip",
        "txt-for-combined",
        "txt-not-for-jsonl",
        "unrelated-extension",
        "hidden-files-ignored",
    ],
)
def test_list_files_picks_files_by_extension_for_the_format(tmp_path, name, fmt, accepted):
    path = _touch(tmp_path / name)
    found, skipped = list_files(tmp_path, fmt)
    assert (path in found) is accepted
    assert (str(path) in skipped) is not accepted


def test_list_files_takes_a_single_file_whatever_its_extension(tmp_path):
    path = _touch(tmp_path / "weird.name")
    assert list_files(path, "jsonl") == ([path], [])


def test_list_files_raises_source_error_naming_a_missing_path(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(SourceError, match="does not exist") as info:
        list_files(missing, "jsonl")
    assert str(missing) in str(info.value)


def test_list_files_keeps_a_dangling_symlink_so_it_is_reported_as_unreadable(tmp_path):
    (tmp_path / "x.jsonl").symlink_to(tmp_path / "gone.jsonl")
    found, _ = list_files(tmp_path, "jsonl")
    assert found == [tmp_path / "x.jsonl"]


def test_fingerprint_gives_size_and_sha256_of_the_bytes(tmp_path):
    data = b'{"a":1}\n' * 1000
    path = _touch(tmp_path / "f.jsonl", data)
    assert fingerprint(path) == SourceFile(str(path), len(data), hashlib.sha256(data).hexdigest())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_plan_sorts_new_unchanged_changed_and_unreadable_files(tmp_path):
    new = _touch(tmp_path / "new.jsonl", b"new\n")
    same = _touch(tmp_path / "same.jsonl", b"same\n")
    changed = _touch(tmp_path / "changed.jsonl", b"changed now\n")
    dangling = tmp_path / "x.jsonl"
    dangling.symlink_to(tmp_path / "gone")
    ingested = {str(same): _sha(b"same\n"), str(changed): _sha(b"changed before\n")}
    result = plan([new, same, changed, dangling], ingested, reingest=False)
    assert [f.path for f in result.new] == [str(new)]
    assert result.unchanged == [str(same)]
    assert result.changed == [str(changed)]
    assert result.unreadable == [(str(dangling), "No such file or directory")]
    assert result.replace == []
    assert [f.path for f in result.to_ingest] == [str(new)]


def test_plan_with_reingest_replaces_every_file_already_ingested_changed_or_not(tmp_path):
    same = _touch(tmp_path / "same.jsonl", b"same\n")
    changed = _touch(tmp_path / "changed.jsonl", b"changed now\n")
    new = _touch(tmp_path / "new.jsonl", b"new\n")
    ingested = {str(same): _sha(b"same\n"), str(changed): _sha(b"before\n")}
    result = plan([same, changed, new], ingested, reingest=True)
    assert [f.path for f in result.replace] == [str(same), str(changed)]
    assert [f.path for f in result.new] == [str(new)]
    assert result.changed == [] and result.unchanged == []


def test_plan_treats_a_moved_file_with_known_content_as_already_ingested(tmp_path):
    moved = _touch(tmp_path / "rotated" / "a.jsonl", b"content\n")
    result = plan([moved], {str(tmp_path / "a.jsonl"): _sha(b"content\n")}, reingest=False)
    assert result.unchanged == [str(moved)]
    assert result.new == []
