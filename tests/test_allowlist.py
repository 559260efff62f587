"""The allowlist CSV: entries in force are kept, expired ones dropped with a warning, unclear lines refused by file:line."""

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
        pytest.param("client_id,partner-01,why,,extra", "5 values but the header has 4", id="more values than columns"),
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
    with pytest.raises(AllowlistError, match=rf"{path}:1: allowlist needs the column\(s\) reason"):
        load_allowlist(path, TODAY)


def test_load_allowlist_warns_naming_the_lines_of_expired_entries_and_ignores_them(tmp_path):
    path = tmp_path / "allow.csv"
    path.write_text(
        HEADER + "client_id,old-1,pilot,2026-01-31\nclient_id,live,partner,\ndevice_id,old-2,pilot,2026-11-26\n",
        encoding="utf-8",
    )
    warnings: list[str] = []
    assert load_allowlist(path, TODAY, warnings) == [AllowEntry("client_id", "live", "partner", None)]
    assert warnings == [f"{path}: lines 2, 4: expired before 2026-11-27, ignored"]


def test_load_allowlist_reads_a_spreadsheet_export_with_warnings(tmp_path):
    path = tmp_path / "allow.csv"
    content = (
        "\ufeffEntity_Type, Entity_Value ,REASON,Expires\r\n"
        "# partners\r\n"
        "Client_ID,ｐａｒｔｎｅｒ－０１,verification,２０２７－０１－０１\r\n"
        "\r\n"
        "client_ip, 10.1.2.3 ,internal job,\r\n"
    )
    path.write_bytes(content.encode("utf-8"))
    warnings: list[str] = []
    assert load_allowlist(path, TODAY, warnings) == [
        AllowEntry("client_id", "partner-01", "verification", date(2027, 1, 1)),
        AllowEntry("client_ip", "10.1.2.3", "internal job", None),
    ]
    assert warnings == [
        f"{path}:1: UTF-8 byte-order mark ignored",
        f"{path}:1: Windows (CRLF) line endings read as plain line ends",
        f"{path}:1: header read as 'entity_type,entity_value,reason,expires' (case, spaces and full-width forms ignored)",
        f"{path}: lines 2, 4: blank or comment line skipped",
        f"{path}:3: full-width or compatibility characters read as their plain forms (NFKC)",
        f"{path}:5: spaces around a value trimmed",
        f"{path}:3: entity_type in capitals read in lower case",
    ]


def test_load_allowlist_keeps_a_reason_as_written_apart_from_outer_spaces(tmp_path):
    path = tmp_path / "allow.csv"
    path.write_text(HEADER + "client_id,p1,核验合作方（银行），2027年续约 ,\n", encoding="utf-8")
    warnings: list[str] = []
    assert load_allowlist(path, TODAY, warnings) == [
        AllowEntry("client_id", "p1", "核验合作方（银行），2027年续约", None)
    ]
    assert warnings == [f"{path}:2: spaces around a value trimmed"]


def test_load_allowlist_refuses_a_line_the_csv_module_cannot_split_naming_it(tmp_path):
    path = tmp_path / "allow.csv"
    path.write_text(HEADER + "client_id,p1,why,\n" + 'client_id,"' + "x" * 200_000 + '",why,\n', encoding="utf-8")
    with pytest.raises(AllowlistError, match=f"{path}:3: not a CSV line: field larger than field limit"):
        load_allowlist(path, TODAY)


def test_load_allowlist_keeps_one_entry_per_entity_with_the_latest_expiry(tmp_path):
    path = tmp_path / "allow.csv"
    path.write_text(
        HEADER
        + "client_id,p1,partner,2026-12-01\nclient_id,p1,partner renewed,2027-06-01\nclient_id,p1,dup,2026-12-15\n",
        encoding="utf-8",
    )
    warnings: list[str] = []
    assert load_allowlist(path, TODAY, warnings) == [AllowEntry("client_id", "p1", "partner renewed", date(2027, 6, 1))]
    assert warnings == [f"{path}: lines 3, 4: lists an entity already listed above; the latest expiry holds"]


def test_load_allowlist_unreadable_file_raises_allowlist_error(tmp_path):
    with pytest.raises(AllowlistError, match="cannot read allowlist"):
        load_allowlist(tmp_path / "absent.csv", TODAY)


def test_load_allowlist_names_the_line_of_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "allow.csv"
    path.write_bytes(b"entity_type,entity_value,reason\nclient_id,partner,verification\nclient_id,\xff\xfe,x\n")
    with pytest.raises(AllowlistError, match=f"{path}:3: not UTF-8"):
        load_allowlist(path, date(2026, 11, 1))
