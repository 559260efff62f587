"""The analysts' watchlist CSV: names become hashes, and every unusable row is named by file and line."""

from __future__ import annotations

import pytest

from core.pseudonym import keyed_hash, watchlist_key
from core.watchlist import WatchlistEntry, WatchlistError, load_watchlist

KEY = b"watchlist-test-key-0123456789abcdef"


def test_load_watchlist_of_no_file_is_empty():
    assert load_watchlist(None, KEY) == []


def test_load_watchlist_hashes_normalized_names_and_ignores_other_columns(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("\ufeffnote,name\nsinger, 周杰伦 \nactor,ＪＡＣＫＩＥ\n", encoding="utf-8")  # BOM from Excel
    assert load_watchlist(path, KEY) == [
        WatchlistEntry(keyed_hash(KEY, "name", "周杰伦"), watchlist_key(KEY, "周杰伦"), "周杰伦"),
        WatchlistEntry(keyed_hash(KEY, "name", "JACKIE"), watchlist_key(KEY, "JACKIE"), "JACKIE"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"person\nx\n", ":1: watchlist needs the column(s) name"),
        (b"", ":1: watchlist has no header line"),
        ("name\nalice\n\xff\xfe\n".encode("latin-1"), ":3: not UTF-8"),
        (b"name\nalice\nsmith, john\n", ":3: 2 values but the header has 1 columns"),
        (b"name,Name\nalice,bob\n", ":1: columns 1 and 2 are both named 'name'"),
    ],
    ids=["no-name-column", "empty-file", "not-utf8", "unquoted-comma-in-a-name", "name-column-twice"],
)
def test_load_watchlist_refuses_an_ambiguous_file_with_one_line_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / "w.csv"
    path.write_bytes(content)
    with pytest.raises(WatchlistError) as info:
        load_watchlist(path, KEY)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_load_watchlist_without_a_header_never_echoes_the_first_name(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("周杰伦\n王菲\n", encoding="utf-8")
    with pytest.raises(WatchlistError) as info:
        load_watchlist(path, KEY)
    assert "周杰伦" not in str(info.value)


def _entry(name: str) -> WatchlistEntry:
    return WatchlistEntry(keyed_hash(KEY, "name", name), watchlist_key(KEY, name), name)


def test_load_watchlist_watches_a_repeated_name_once_and_warns_naming_the_lines(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("name\n周杰伦\nbob\n 周杰伦\nｂｏｂ\n周杰伦\n", encoding="utf-8")
    warnings: list[str] = []
    assert load_watchlist(path, KEY, warnings) == [_entry("周杰伦"), _entry("bob")]
    repeats = [w for w in warnings if "repeats a name" in w]
    assert repeats == [
        f"{path}: lines 4, 5, 6: repeats a name listed above (compared after NFKC and trimming); watched once"
    ]
    assert not any("周杰伦" in w or "bob" in w for w in warnings)


def test_load_watchlist_reads_what_a_spreadsheet_writes_and_warns_about_each_kind(tmp_path):
    path = tmp_path / "w.csv"
    content = (
        "\ufeff# celebrities, kept by the analysts\r\n Name ,note\r\n\r\n 周杰伦 ,singer\r\nＪＡＣＫＩＥ,actor\r\n,\r\n"
    )
    path.write_bytes(content.encode("utf-8"))
    warnings: list[str] = []
    assert load_watchlist(path, KEY, warnings) == [_entry("周杰伦"), _entry("JACKIE")]
    assert warnings == [
        f"{path}:1: UTF-8 byte-order mark ignored",
        f"{path}:1: Windows (CRLF) line endings read as plain line ends",
        f"{path}: lines 1, 3, 6: blank or comment line skipped",
        f"{path}:2: header read as 'name' (case, spaces and full-width forms ignored)",
        f"{path}:4: spaces around a value trimmed",
        f"{path}:5: full-width or compatibility characters read as their plain forms (NFKC)",
    ]


def test_load_watchlist_of_a_header_alone_is_empty_without_a_warning(tmp_path):
    # The shipped config/watchlist.csv is such a template; the ingest log says "0 names".
    path = tmp_path / "w.csv"
    path.write_text("name\n", encoding="utf-8")
    warnings: list[str] = []
    assert load_watchlist(path, KEY, warnings) == []
    assert warnings == []
