"""The allowlist CSV: entries in force are kept, expired ones dropped, bad lines named by file:line."""

from __future__ import annotations

from datetime import date

import pytest

from core.allowlist import AllowEntry, AllowlistError, load_allowlist

TODAY = date(2026, 11, 27)
HEADER = "entity_type,entity_value,reason,expires\n"


def test_load_allowlist_keeps_entries_in_force_and_drops_expired_ones(tmp_path):
    path = tmp_path / "allow.csv"
    path.write_text(
        HEADER
        + "client_id,partner-01,verification partner,\n"
        + "client_id,partner-02, partner two ,2026-11-27\n"
        + "device_id,dev-old,old pilot,2026-11-26\n"
        + "client_ip,10.1.2.3,internal job,2027-01-01\n",
        encoding="utf-8",
    )
    assert load_allowlist(path, TODAY) == [
        AllowEntry("client_id", "partner-01", "verification partner", None),
        AllowEntry("client_id", "partner-02", "partner two", date(2026, 11, 27)),
        AllowEntry("client_ip", "10.1.2.3", "internal job", date(2027, 1, 1)),
    ]


def test_load_allowlist_expires_column_is_optional(tmp_path):
    path = tmp_path / "allow.csv"
    path.write_text("entity_type,entity_value,reason\ncampaign,203.0.113.0/24,red team exercise\n", encoding="utf-8")
    assert load_allowlist(path, TODAY) == [AllowEntry("campaign", "203.0.113.0/24", "red team exercise", None)]


def test_load_allowlist_without_a_file_is_empty():
    assert load_allowlist(None, TODAY) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("account,partner-01,why,", "entity_type must be one of", id="unknown entity type"),
        pytest.param("client_id,partner-01,why,31/12/2026", "expires is not an ISO date", id="non-ISO expiry date"),
        pytest.param("client_id,partner-01,why,2026-02-30", "expires is not an ISO date", id="impossible date"),
        pytest.param("client_id,,why,", "entity_value and reason are required", id="empty entity value"),
        pytest.param("client_id,partner-01,,", "entity_value and reason are required", id="no reason given"),
    ],
)
def test_load_allowlist_bad_line_raises_allowlist_error_with_file_and_line(tmp_path, line, message):
    path = tmp_path / "allow.csv"
    path.write_text(HEADER + "client_id,partner-00,fine,\n" + line + "\n", encoding="utf-8")
    with pytest.raises(AllowlistError, match=message) as caught:
        load_allowlist(path, TODAY)
    assert str(caught.value).startswith(f"{path}:3:")


def test_load_allowlist_missing_columns_raise_allowlist_error(tmp_path):
    path = tmp_path / "allow.csv"
    path.write_text("entity_type,entity_value\nclient_id,partner-01\n", encoding="utf-8")
    with pytest.raises(AllowlistError, match=f"{path}:1: allowlist lacks columns reason"):
        load_allowlist(path, TODAY)


def test_load_allowlist_unreadable_file_raises_allowlist_error(tmp_path):
    with pytest.raises(AllowlistError, match="cannot read allowlist"):
        load_allowlist(tmp_path / "absent.csv", TODAY)


def test_load_allowlist_names_the_line_of_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "allow.csv"
    path.write_bytes(b"entity_type,entity_value,reason\nclient_id,partner,verification\nclient_id,\xff\xfe,x\n")
    with pytest.raises(AllowlistError, match=f"{path}:3: not UTF-8"):
        load_allowlist(path, date(2026, 11, 1))
