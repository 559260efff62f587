"""GB 11643-1999 ID numbers: the check character, validation and construction."""

import datetime as dt

import pytest

from core.idnumber import check_char, is_valid, make_id

KNOWN = "11010519491231002X"  # the standard's own worked example (Beijing Chaoyang, 1949-12-31, seq 002)


def test_check_char_of_known_example_matches_hand_computed_weighted_sum():
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(KNOWN[:17], weights, strict=True))
    assert total == 167 and total % 11 == 2  # remainder 2 maps to "X" in "10X98765432"
    assert check_char(KNOWN[:17]) == "X"


@pytest.mark.parametrize(
    ("first17", "weighted_sum", "expected"),
    [
        ("11010119900307001", 154, "1"),  # 154 = 11 * 14, remainder 0
        ("31010419880312009", 199, "0"),  # remainder 1
        ("51010720150228999", 306, "3"),  # remainder 9
    ],
    ids=["remainder-0-gives-1", "remainder-1-gives-0", "remainder-9-gives-3"],
)
def test_check_char_matches_hand_computed_mod_11_2(first17, weighted_sum, expected):
    assert "10X98765432"[weighted_sum % 11] == expected  # sums worked out by hand with the weights above
    assert check_char(first17) == expected


@pytest.mark.parametrize(
    "bad",
    ["1101051949123100", "110105194912310021", "1101051949123100A", "１１０１０５１９４９１２３１００２"],
    ids=["16-digits", "18-digits", "letter", "full-width-digits"],
)
def test_check_char_rejects_anything_but_17_ascii_digits(bad):
    with pytest.raises(ValueError):
        check_char(bad)


def test_is_valid_accepts_the_known_example():
    assert is_valid(KNOWN)


def test_is_valid_accepts_lowercase_x_as_check_character():
    assert is_valid(KNOWN.lower())


@pytest.mark.parametrize(
    "bad",
    [
        "110105194912310021",  # wrong check character
        "110105194902300021",  # 1949-02-30 does not exist
        "110105194913310021",  # month 13
        "11010519491231002",  # 17 characters
        "11010519491231002X0",  # 19 characters
        "11010519491231A02X",  # letter in the body
        "１１０１０５１９４９１２３１００２X",  # full-width digits: is_valid is not a normalizer
        "",
    ],
    ids=["wrong-check-char", "feb-30", "month-13", "too-short", "too-long", "letter-in-body", "full-width", "empty"],
)
def test_is_valid_rejects_malformed_numbers(bad):
    assert not is_valid(bad)


def test_is_valid_rejects_wrong_check_character():
    for c in "0123456789X":
        assert is_valid(KNOWN[:17] + c) == (c == "X")


def test_is_valid_rejects_a_bad_date_even_with_the_matching_check_character():
    first17 = "11010519490230002"  # February 30th
    assert not is_valid(first17 + check_char(first17))


def test_is_valid_rejects_non_strings():
    assert not is_valid(None)  # type: ignore[arg-type]
    assert not is_valid(11010519491231002)  # type: ignore[arg-type]


def test_every_single_digit_typo_breaks_the_checksum():
    for i in range(17):
        for d in "0123456789":
            if d != KNOWN[i]:
                assert not is_valid(KNOWN[:i] + d + KNOWN[i + 1 :]), (i, d)


@pytest.mark.parametrize(
    ("region", "birth", "seq"),
    [("110101", dt.date(1950, 1, 1), 0), ("440305", dt.date(2000, 2, 29), 999), ("110105", dt.date(1949, 12, 31), 2)],
    ids=["first-seq", "leap-day-last-seq", "known-example"],
)
def test_make_id_builds_a_valid_number_from_its_parts(region, birth, seq):
    idn = make_id(region, birth, seq)
    assert is_valid(idn)
    assert idn[:6] == region and idn[6:14] == birth.strftime("%Y%m%d") and int(idn[14:17]) == seq


def test_make_id_reproduces_the_known_example():
    assert make_id("110105", dt.date(1949, 12, 31), 2) == KNOWN


@pytest.mark.parametrize(
    ("region", "seq"),
    [("11010", 1), ("11010a", 1), ("110101", -1), ("110101", 1000)],
    ids=["short-region", "letter-region", "negative-seq", "seq-over-999"],
)
def test_make_id_rejects_bad_region_or_sequence(region, seq):
    with pytest.raises(ValueError):
        make_id(region, dt.date(1990, 1, 1), seq)
