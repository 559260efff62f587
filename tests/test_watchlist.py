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
        (b"person\nx\n", ":1: watchlist needs a 'name' column"),
        (b"", ":1: watchlist needs a 'name' column"),
        (b"name\nalice\n  \nbob\n", ":3: empty name"),
        ("name\n周杰伦\nbob\n 周杰伦\n".encode(), ":4: duplicate name"),
        ("name\nＪＡＣＫＩＥ\nJACKIE\n".encode(), ":3: duplicate name"),
        (b"name\nalice\n\xff\xfe\n", ":3: not UTF-8"),
    ],
    ids=[
        "no-name-column",
        "empty-file",
        "blank-name-on-line-3",
        "same-name-twice",
        "full-width-duplicate-after-nfkc",
        "not-utf8",
    ],
)
def test_load_watchlist_names_the_file_and_line_of_a_bad_row(tmp_path, content, message):
    path = tmp_path / "w.csv"
    path.write_bytes(content)
    with pytest.raises(WatchlistError) as info:
        load_watchlist(path, KEY)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_load_watchlist_names_a_missing_file(tmp_path):
    with pytest.raises(WatchlistError, match="cannot read watchlist") as info:
        load_watchlist(tmp_path / "nope.csv", KEY)
    assert str(tmp_path / "nope.csv") in str(info.value)
