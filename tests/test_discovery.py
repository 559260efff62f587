"""Discovery: which files a source holds, and what a run does with each, given the manifest."""

from __future__ import annotations

import hashlib

import pytest

from core.discovery import Listing, SourceError, SourceFile, fingerprint, list_files, plan


def _touch(path, data: bytes = b"x\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_list_files_searches_a_directory_recursively_and_sorts_what_it_keeps(tmp_path):
    for name in ("b.jsonl", "a.json", "sub/deep/c.log", "sub/d.jsonl.gz"):
        _touch(tmp_path / name)
    found, skipped = list_files(tmp_path, "jsonl").found, list_files(tmp_path, "jsonl").skipped
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
    listing = list_files(tmp_path, fmt)
    found, skipped = listing.found, listing.skipped
    assert (path in found) is accepted
    assert (str(path) in skipped) is not accepted


def test_list_files_takes_a_single_file_whatever_its_extension(tmp_path):
    path = _touch(tmp_path / "weird.name")
    assert list_files(path, "jsonl") == Listing([path])


def test_list_files_raises_source_error_naming_a_missing_path(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(SourceError, match="does not exist") as info:
        list_files(missing, "jsonl")
    assert str(missing) in str(info.value)


def test_list_files_keeps_a_dangling_symlink_so_it_is_reported_as_unreadable(tmp_path):
    (tmp_path / "x.jsonl").symlink_to(tmp_path / "gone.jsonl")
    assert list_files(tmp_path, "jsonl").found == [tmp_path / "x.jsonl"]


@pytest.fixture
def linked(tmp_path):
    """A log volume reached through links: real files elsewhere, a source of links, a loop and a broken link."""
    volume = tmp_path / "volume"
    _touch(volume / "a.jsonl", b"a\n")
    _touch(volume / "host2" / "b.jsonl", b"b\n")
    source = tmp_path / "source"
    source.mkdir()
    (source / "host1").symlink_to(volume, target_is_directory=True)
    (source / "again").symlink_to(volume, target_is_directory=True)  # a second link to the same place
    (source / "a-link.jsonl").symlink_to(volume / "a.jsonl")  # a file reached twice
    (volume / "loop").symlink_to(tmp_path, target_is_directory=True)  # back up above the source
    (source / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    return tmp_path, volume, source


def test_list_files_follows_linked_directories_and_lists_each_real_file_once(linked):
    tmp_path, volume, source = linked
    listing = list_files(source, "jsonl")
    assert listing.found == [source / "gone.jsonl", volume / "a.jsonl", volume / "host2" / "b.jsonl"]
    assert any("walked once" in note for note in listing.notes)


def test_list_files_through_a_source_that_is_itself_a_link_finds_the_files(linked):
    tmp_path, volume, source = linked
    (tmp_path / "mounted").symlink_to(source, target_is_directory=True)
    assert list_files(tmp_path / "mounted", "jsonl").found == [
        tmp_path / "mounted" / "gone.jsonl",
        volume / "a.jsonl",
        volume / "host2" / "b.jsonl",
    ]


def test_list_files_survives_a_directory_loop_and_reports_it(tmp_path):
    _touch(tmp_path / "logs" / "x.jsonl")
    (tmp_path / "logs" / "self").symlink_to(tmp_path / "logs", target_is_directory=True)
    listing = list_files(tmp_path / "logs", "jsonl")
    assert listing.found == [tmp_path / "logs" / "x.jsonl"]
    assert listing.notes == [
        f"{tmp_path / 'logs' / 'self'} leads back to {tmp_path / 'logs'} (a symbolic link loop or a second link): walked once"
    ]


def test_list_files_leaves_out_the_lake_reached_through_a_link(tmp_path):
    _touch(tmp_path / "src" / "x.jsonl")
    _touch(tmp_path / "lake" / "requests" / "part.json")
    (tmp_path / "src" / "lake").symlink_to(tmp_path / "lake", target_is_directory=True)
    assert list_files(tmp_path / "src", "jsonl", exclude=tmp_path / "lake").found == [tmp_path / "src" / "x.jsonl"]


def test_plan_reports_a_broken_link_as_unreadable_by_name(linked):
    _, _, source = linked
    result = plan(list_files(source, "jsonl").found, {}, reingest=False)
    assert result.unreadable == [(str(source / "gone.jsonl"), "broken symbolic link")]
    assert len(result.new) == 2


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
    assert result.unreadable == [(str(dangling), "broken symbolic link")]
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
