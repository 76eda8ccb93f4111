"""Dates and cameras typed as words (embeddings.search.interpret): a table of phrases read against a
fixed today, what each becomes, and what is left for meaning and keywords."""
from datetime import date

import pytest

from embeddings.search.interpret import carries_nothing, interpret

TODAY = date(2026, 12, 3)  # a Thursday
CAMERAS = ["Canon EOS 5D", "Apple iPhone 12", "FUJIFILM X-T30"]
D = date

# phrase -> (taken_after, taken_before, months, camera, text left)
TABLE = [
    ("beach 2019", D(2019, 1, 1), D(2020, 1, 1), (), None, "beach"),
    ("beach in 2019", D(2019, 1, 1), D(2020, 1, 1), (), None, "beach"),
    ("beach in july 2019", D(2019, 7, 1), D(2019, 8, 1), (), None, "beach"),
    ("July 2019 beach", D(2019, 7, 1), D(2019, 8, 1), (), None, "beach"),
    ("jul 2019", D(2019, 7, 1), D(2019, 8, 1), (), None, ""),
    ("sept 2020 hike", D(2020, 9, 1), D(2020, 10, 1), (), None, "hike"),
    ("2019-07", D(2019, 7, 1), D(2019, 8, 1), (), None, ""),
    ("cake on 2019-07-14", D(2019, 7, 14), D(2019, 7, 15), (), None, "cake"),
    ("14 july 2019", D(2019, 7, 14), D(2019, 7, 15), (), None, ""),
    ("july 4th, 2019 fireworks", D(2019, 7, 4), D(2019, 7, 5), (), None, "fireworks"),
    ("may 2018 garden", D(2018, 5, 1), D(2018, 6, 1), (), None, "garden"),
    ("march 2021 protest", D(2021, 3, 1), D(2021, 4, 1), (), None, "protest"),
    ("summer 2025", D(2025, 6, 1), D(2025, 9, 1), (), None, ""),
    ("winter 2019 skiing", D(2019, 12, 1), D(2020, 3, 1), (), None, "skiing"),
    ("autumn of 2020 leaves", D(2020, 9, 1), D(2020, 12, 1), (), None, "leaves"),
    ("christmas 2020", D(2020, 12, 24), D(2020, 12, 27), (), None, ""),
    ("halloween 2018 costume", D(2018, 10, 31), D(2018, 11, 1), (), None, "costume"),
    ("easter 2024 eggs", D(2024, 3, 29), D(2024, 4, 2), (), None, "eggs"),
    ("new year's eve 2019", D(2019, 12, 31), D(2020, 1, 1), (), None, ""),
    ("last christmas", D(2025, 12, 24), D(2025, 12, 27), (), None, ""),
    ("dog last summer", D(2026, 6, 1), D(2026, 9, 1), (), None, "dog"),
    ("snow last winter", D(2025, 12, 1), D(2026, 3, 1), (), None, "snow"),
    ("this summer", D(2026, 6, 1), D(2026, 9, 1), (), None, ""),
    ("last may", D(2026, 5, 1), D(2026, 6, 1), (), None, ""),
    ("party last december", D(2025, 12, 1), D(2026, 1, 1), (), None, "party"),
    ("today", D(2026, 12, 3), D(2026, 12, 4), (), None, ""),
    ("yesterday at the park", D(2026, 12, 2), D(2026, 12, 3), (), None, "at the park"),
    ("last week", D(2026, 11, 23), D(2026, 11, 30), (), None, ""),
    ("this week", D(2026, 11, 30), D(2026, 12, 4), (), None, ""),
    ("last month", D(2026, 11, 1), D(2026, 12, 1), (), None, ""),
    ("this month", D(2026, 12, 1), D(2026, 12, 4), (), None, ""),
    ("last year", D(2025, 1, 1), D(2026, 1, 1), (), None, ""),
    ("this year", D(2026, 1, 1), D(2026, 12, 4), (), None, ""),
    ("3 weeks ago", D(2026, 11, 9), D(2026, 11, 16), (), None, ""),
    ("two years ago", D(2024, 1, 1), D(2025, 1, 1), (), None, ""),
    ("5 days ago", D(2026, 11, 28), D(2026, 11, 29), (), None, ""),
    ("in the last 30 days", D(2026, 11, 4), D(2026, 12, 4), (), None, ""),
    ("past 6 months", D(2026, 6, 1), D(2026, 12, 4), (), None, ""),
    ("the 90s", D(1990, 1, 1), D(2000, 1, 1), (), None, ""),
    ("1980s cars", D(1980, 1, 1), D(1990, 1, 1), (), None, "cars"),
    ("between 2018 and 2020", D(2018, 1, 1), D(2021, 1, 1), (), None, ""),
    ("2015-2017", D(2015, 1, 1), D(2018, 1, 1), (), None, ""),
    ("since 2020", D(2020, 1, 1), D(2026, 12, 4), (), None, ""),
    ("before 2010", D(1900, 1, 1), D(2010, 1, 1), (), None, ""),
    ("snow in december", None, None, (12,), None, "snow"),
    ("flowers in may", None, None, (5,), None, "flowers"),
    ("beach in the summer", None, None, (6, 7, 8), None, "beach"),
    ("october leaves", None, None, (10,), None, "leaves"),
    ("from the canon", None, None, (), "canon", ""),
    ("everything from the Canon", None, None, (), "canon", "everything"),
    ("shot on my iphone 12", None, None, (), "iphone 12", ""),
    ("canon eos 5d beach", None, None, (), "canon eos 5d", "beach"),
    ("dog with the fujifilm in 2021", D(2021, 1, 1), D(2022, 1, 1), (), "fujifilm", "dog"),
]

# Words that look like dates or cameras but plainly are not: left as they are.
PLAIN = ["may flowers", "march of the penguins", "christmas tree", "summer dress", "a red circle", "apple on a table",
         "june bug", "total 42.50 eur", "room 101", "the year of the dog", "spring water", "august rush",
         "IMG_2019.jpg", "canon in d"]


@pytest.mark.parametrize("q, after, before, months, camera, text", TABLE, ids=[row[0] for row in TABLE])
def test_phrase_table(q, after, before, months, camera, text):
    got = interpret(q, TODAY, CAMERAS)
    assert (got.taken_after, got.taken_before, got.months, got.camera, got.text) == (after, before, months, camera, text)
    assert got.read and all(phrase.lower() in q.lower() for _, phrase in got.read)


@pytest.mark.parametrize("q", PLAIN)
def test_plain_words_stay_words(q):
    got = interpret(q, TODAY, CAMERAS)
    assert not got and got.text == q and got.taken_after is None and got.camera is None and not got.months


def test_a_camera_no_one_has_is_not_read():
    assert interpret("from the leica", TODAY, CAMERAS).camera is None
    assert interpret("from the canon", TODAY, []).camera is None


def test_the_table_is_large_enough():
    assert len(TABLE) + len(PLAIN) >= 40


@pytest.mark.parametrize("text, nothing", [("", True), ("a photo", True), ("everything", True), ("show me all pictures", True),
                                           ("a dog", False), ("photo of a beach", False)])
def test_carries_nothing(text, nothing):
    assert carries_nothing(text) is nothing
