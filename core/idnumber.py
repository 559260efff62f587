"""Chinese resident ID numbers (GB 11643-1999): the check character, validation, construction.

An 18-character ID is a 6-digit region code, an 8-digit birth date (YYYYMMDD), a 3-digit
sequence number and an ISO 7064 MOD 11-2 check character ("X" stands for 10). Enumeration
attacks differ in whether they bother to get that check character right: a scanner that
counts up the last digits naively produces mostly invalid numbers (the API answers 400), while
one that brute-forces the sequence under a known region+birth prefix computes it correctly.
The detectors need `is_valid` to tell the two apart, and the traffic generator needs
`make_id` to plant realistic valid numbers, so both share this one dependency-free module.
"""

from __future__ import annotations

import datetime as dt
from operator import mul

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def check_char(first17: str) -> str:
    """The MOD 11-2 check character ("0"-"9" or "X") for the first 17 digits of an ID."""
    if len(first17) != 17 or not _ascii_digits(first17):
        raise ValueError(f"need exactly 17 ASCII digits, got {first17!r}")
    return CHECK_CHARS[sum(map(mul, map(int, first17), WEIGHTS)) % 11]


def is_valid(id_number: str) -> bool:
    """True for 18 characters: 17 ASCII digits with a real YYYYMMDD at 7-14, then the right check char."""
    if not isinstance(id_number, str) or len(id_number) != 18:
        return False
    body, check = id_number[:17], id_number[17].upper()
    if not _ascii_digits(body):
        return False
    try:
        dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return False
    return check == check_char(body)


def make_id(region: str, birth: dt.date, seq: int) -> str:
    """A valid ID for a 6-digit region code, a birth date and a sequence number 0-999."""
    if len(region) != 6 or not _ascii_digits(region):
        raise ValueError(f"region must be 6 ASCII digits, got {region!r}")
    if not 0 <= seq <= 999:
        raise ValueError(f"seq must be in 0..999, got {seq}")
    first17 = f"{region}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq:03d}"
    return first17 + check_char(first17)
