"""The vectorized load checks agree with the pandas operations they stand in for, on messy data.

``pipnb.textcheck.maybe_padded`` lets loading skip ``str.strip()``, ``maybe_upper`` skip ``str.lower()``,
``has_duplicates`` replaces pandera's unique check, and ``pipnb.validate.earlier`` compares integer
nanoseconds instead of ``dt.normalize()`` columns: each is compared with the library on values built to break
it (every kind of white space, empty and missing values, widths around 8 bytes, non-ASCII text, sliced and
chunked Arrow arrays, dates before 1970, midnights and NaT).
"""

import numpy as np
import pandas as pd
import pytest

from pipnb.textcheck import has_duplicates, maybe_padded, maybe_upper
from pipnb.validate import earlier

SPACES = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u1680", "\u2003", "\u2028",
          "\u202f", "\u3000"]
LETTERS = ["a", "B", "7", "-", "_", "é", "ß", "中", "\u200b", "😀", "\x00"]


def text(values) -> pd.Series:
    return pd.Series(values, dtype=pd.StringDtype("pyarrow"))


def shapes(series: pd.Series):
    """The series as loading meets it: whole, sliced (an Arrow offset), in several chunks."""
    yield series
    yield series.iloc[1:]
    half = len(series) // 2
    yield pd.concat([series.iloc[:half], series.iloc[half:]], ignore_index=True)


def random_words(rng: np.random.Generator, n: int, alphabet: list[str], widths=(0, 12)) -> list:
    words = ["".join(rng.choice(alphabet, size=rng.integers(*widths))) for _ in range(n)]
    return [None if rng.random() < 0.1 else w for w in words]


# -- maybe_padded: False promises that stripping changes nothing and no value is empty -----------------------
def agrees_with_strip(series: pd.Series) -> None:
    stripped = series.str.strip()
    clean = bool(stripped.fillna("\x01").eq(series.fillna("\x01")).all()) and not series.eq("").any()
    if not maybe_padded(series):
        assert clean, series.tolist()


@pytest.mark.parametrize("space", SPACES)
def test_every_white_space_at_either_end_is_caught(space):
    for values in ([space + "R01", "R02"], ["R01", "R02" + space], ["R01", space], [space + "x" + space]):
        series = text(values)
        assert series.str.strip().tolist() != values        # pandas (Arrow) does strip it ...
        for shape in shapes(series):
            if shape.str.strip().tolist() != shape.tolist():
                assert maybe_padded(shape)                   # ... so the test must say so


def test_clean_ids_are_not_padded_and_need_no_strip():
    series = text(["R01", "ACT0000001", "a b", "x\u200by", None, "OPP-7"])
    for shape in shapes(series):
        assert not maybe_padded(shape)
        assert shape.str.strip().equals(shape)


def test_empty_values_count_as_padded():
    assert maybe_padded(text(["R01", ""]))
    assert not maybe_padded(text(["R01", None]))
    # missing values at a chunk's ends and an Arrow offset that is not a multiple of 8 (the validity bitmap)
    for shape in shapes(text([None] * 11 + ["R01", None, "", None])):
        assert maybe_padded(shape)
    for shape in shapes(text([None] * 11 + ["R01", None, "R02", None])):
        assert not maybe_padded(shape)
    assert not maybe_padded(text([None] * 11 + ["R01", None, "", None]).iloc[:13])


def test_maybe_padded_never_misses_on_random_messy_text():
    rng = np.random.default_rng(13)
    for _ in range(300):
        series = text(random_words(rng, 20, LETTERS + SPACES[:4] + ["\xa0", "\u3000"]))
        for shape in shapes(series):
            agrees_with_strip(shape)


def test_other_dtypes_are_always_stripped():
    assert maybe_padded(pd.Series(["R01", "R02"], dtype=object))
    assert maybe_padded(pd.Series(["R01"], dtype=pd.StringDtype("python")))


# -- maybe_upper: False promises that lower-casing changes nothing -----------------------------------------------
@pytest.mark.parametrize("capital", ["A", "Z", "É", "Σ", "ǅ", "Ⅻ", "Ａ"])
def test_every_capital_is_caught(capital):
    for values in ([capital + "mail", "call"], ["call", "meet" + capital], [None, capital, None]):
        for shape in shapes(text(values)):
            if shape.str.lower().tolist() != shape.tolist():         # pandas (Arrow) does lower it ...
                assert maybe_upper(shape)                             # ... so the test must say so


def test_lower_case_kinds_need_no_lowering():
    for shape in shapes(text(["email", "call", None, "meeting", "won", "lost-7_x"])):
        assert not maybe_upper(shape)
        assert shape.str.lower().equals(shape)


def test_maybe_upper_never_misses_on_random_messy_text():
    rng = np.random.default_rng(17)
    for _ in range(300):
        series = text(random_words(rng, 20, LETTERS + SPACES[:3] + ["@", "[", "`", "{"]))
        for shape in shapes(series):
            if not maybe_upper(shape):
                assert shape.str.lower().fillna("\x01").eq(shape.fillna("\x01")).all(), shape.tolist()
    assert maybe_upper(pd.Series(["email"], dtype=object))            # not Arrow text: lowered, as before


# -- has_duplicates == values.dropna().duplicated().any() -----------------------------------------------------
def expected(series: pd.Series) -> bool:
    return bool(series.dropna().duplicated().any())


@pytest.mark.parametrize("values", [
    ["A", "B", "A"], ["A", "B", "C"], ["", "x", ""], ["", "x"], [None, None, "x"], [None, "x", None, "y"],
    ["a", "a ", "a  "], ["a", "a\x00"], ["abcdefgh", "abcdefgh"], ["abcdefgh", "abcdefgi"],
    ["ACT0000001", "ACT0000002", "ACT0000001"], ["0015g00000Xy2aBAAQ", "0015g00000Xy2aBAAR"],
    ["é", "e", "é"], ["中文", "中文 ", "中"], ["😀", "😀😀", "😀"], ["x" * 70, "x" * 69 + "y", "x" * 70],
    ["1", "10", "100", "1000", "10"], ["a" * 7, "a" * 8, "a" * 9, "a" * 16, "a" * 17],
])
def test_has_duplicates_matches_pandas(values):
    for shape in shapes(text(values)):
        assert has_duplicates(shape) == expected(shape), shape.tolist()


def test_has_duplicates_matches_pandas_on_random_ids():
    rng = np.random.default_rng(7)
    for trial in range(300):
        alphabet = LETTERS if trial % 3 else ["0", "1"]        # a small alphabet: many true repeats
        widths = [(0, 4), (1, 12), (8, 9), (10, 11), (15, 20)][trial % 5]
        series = text(random_words(rng, int(rng.integers(2, 40)), alphabet, widths))
        for shape in shapes(series):
            assert has_duplicates(shape) == expected(shape), shape.tolist()


def test_has_duplicates_on_a_million_fixed_width_ids():
    ids = text([f"ACT{i:07d}" for i in range(1_000_000)])
    assert not has_duplicates(ids)
    assert has_duplicates(pd.concat([ids, ids.iloc[[123_456]]], ignore_index=True))
    shuffled = ids.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert not has_duplicates(shuffled)


def test_has_duplicates_for_other_dtypes():
    assert has_duplicates(pd.Series(["A", "A"], dtype=object))
    assert not has_duplicates(pd.Series([1, 2, None]))


# -- earlier == the normalize() comparison ------------------------------------------------------------------
def earlier_by_pandas(a: pd.Series, b: pd.Series) -> pd.Series:
    day_a, day_b = a.dt.normalize(), b.dt.normalize()
    as_days = (a == day_a) | (b == day_b)
    before = np.where(as_days.to_numpy(bool), (day_a < day_b).to_numpy(bool), (a < b).to_numpy(bool))
    return pd.Series(before, index=a.index) & a.notna() & b.notna()


def test_earlier_matches_normalize_on_messy_instants():
    rng = np.random.default_rng(3)
    days = rng.integers(-800, 800, 4000)                               # before and after 1970
    moment = rng.choice([0, 1, 3_600 * 10**9, 86_399_999_999_999, 43_200 * 10**9 + 7], 4000)
    a = pd.Series(pd.to_datetime((days * 86_400 * 10**9 + moment).astype("int64")), index=np.arange(4000) * 3)
    b = pd.Series(pd.to_datetime(((days + rng.integers(-2, 3, 4000)) * 86_400 * 10**9
                                  + rng.choice([0, 5, 3_600 * 10**9], 4000)).astype("int64")), index=a.index)
    a[rng.random(4000) < 0.05] = pd.NaT
    b[rng.random(4000) < 0.05] = pd.NaT
    assert earlier(a, b).equals(earlier_by_pandas(a, b))
    assert earlier(a, b.to_numpy()).equals(earlier_by_pandas(a, b))     # b as an aligned array


def test_earlier_on_the_rules_cases():
    a = pd.to_datetime(pd.Series(["2024-03-05 10:00", "2024-03-05", "2024-03-04 23:00", "2024-03-05 09:00",
                                  None, "1969-12-31 23:59"]), format="ISO8601")
    b = pd.to_datetime(pd.Series(["2024-03-05", "2024-03-05 10:00", "2024-03-05 01:00", "2024-03-05 10:00",
                                  "2024-03-05", "1970-01-01"]), format="ISO8601")
    assert earlier(a, b).tolist() == [False, False, True, True, False, True]
    assert earlier(a, b).equals(earlier_by_pandas(a, b))


def test_earlier_with_zones_falls_back_to_pandas():
    a = pd.Series(pd.to_datetime(["2024-03-05 10:00", "2024-03-04"], format="ISO8601").tz_localize("Europe/Paris"))
    b = pd.Series(pd.to_datetime(["2024-03-05", "2024-03-05 10:00"], format="ISO8601").tz_localize("Europe/Paris"))
    assert earlier(a, b).equals(earlier_by_pandas(a, b))
