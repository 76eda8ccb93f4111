"""Dates and cameras typed as words: a rule-based reader (no model, no network) that takes them out of
a query into filters, leaving the rest for meaning and keywords. "beach in july 2019" -> taken
2019-07-01 .. 2019-08-01, text "beach"; "dog last summer" -> the last summer that has ended; "from
the canon" -> camera "canon" when a camera of the library says Canon.

A word is taken as a date only when it plainly is one: a year is four digits from 1900 to 2099; a
month or season name needs a year or a cue ("in", "last", "this", "during") — "may" and "march"
alone stay words, as do "summer dress" and "christmas tree". Seasons are the northern hemisphere's
meteorological ones (summer: June to August; winter 2019: December 2019 to February 2020). A month
or season without a year means that month or season in any year (`months`). Relative phrases
("last year", "3 weeks ago", "in the last 30 days") count from `today`. English only: another
language needs its own month, season, holiday and cue words, and its word order ("juillet 2019",
"im Sommer 2019") — the rules are tables below, the reader is the same.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

MONTHS = {name: i + 1 for i, name in enumerate(
    "january february march april may june july august september october november december".split())}
MONTHS.update({name[:3]: n for name, n in list(MONTHS.items())})
MONTHS["sept"] = 9
# Month names that are common words or names: taken as months only with a year or a cue.
AMBIGUOUS_MONTHS = {"may", "mar", "march", "jun", "june", "aug", "august", "april", "apr", "jan", "dec", "oct", "nov",
                    "sep", "sept", "feb", "jul"}
SEASONS = {"spring": (3, 4, 5), "summer": (6, 7, 8), "autumn": (9, 10, 11), "fall": (9, 10, 11), "winter": (12, 1, 2)}
CUES = ("in", "during", "from", "of")
CAMERA_CUES = r"(?:taken |shot )?(?:from|with|by|on|using)(?: (?:the|my|a|an|our))?"
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_SEASON = "|".join(SEASONS)
_YEAR = r"(19\d\d|20\d\d)"
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "couple of": 2, "few": 3}
_N = r"(\d{1,3}|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + ")"


@dataclass
class Interpreted:
    """What was read out of a query: a taken-time range [after, before), months of any year, a
    camera, and the text left for meaning and keywords. `read` lists the phrases as typed, with
    their kind, for the page's chips."""

    text: str
    taken_after: date | None = None
    taken_before: date | None = None
    months: tuple[int, ...] = ()
    camera: str | None = None
    read: list[tuple[str, str]] = field(default_factory=list)  # (kind, phrase): ("taken", "summer 2025")

    def __bool__(self) -> bool:
        return bool(self.read)


def _month_range(year: int, month: int) -> tuple[date, date]:
    end = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, 1), end


def _season_range(year: int, season: str) -> tuple[date, date]:
    months = SEASONS[season]
    if season == "winter":  # winter 2019: December 2019 to the end of February 2020
        return date(year, 12, 1), date(year + 1, 3, 1)
    return date(year, months[0], 1), _month_range(year, months[-1])[1]


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m + 90) // 451
    month = (h + m - 7 * n + 114) // 31
    return date(year, month, (h + m - 7 * n + 114) % 31 + 1)


HOLIDAYS = {  # name -> (year -> [start, end))
    "christmas eve": lambda y: (date(y, 12, 24), date(y, 12, 25)),
    "christmas": lambda y: (date(y, 12, 24), date(y, 12, 27)),
    "xmas": lambda y: (date(y, 12, 24), date(y, 12, 27)),
    "new year's eve": lambda y: (date(y, 12, 31), date(y + 1, 1, 1)),
    "new years eve": lambda y: (date(y, 12, 31), date(y + 1, 1, 1)),
    "new year's day": lambda y: (date(y, 1, 1), date(y, 1, 2)),
    "halloween": lambda y: (date(y, 10, 31), date(y, 11, 1)),
    "valentine's day": lambda y: (date(y, 2, 14), date(y, 2, 15)),
    "easter": lambda y: (_easter(y) - timedelta(days=2), _easter(y) + timedelta(days=2)),
}
_HOLIDAY = "|".join(re.escape(h) for h in sorted(HOLIDAYS, key=len, reverse=True))


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _years_before(today: date, n: int) -> date:
    try:
        return today.replace(year=today.year - n)
    except ValueError:  # 29 February
        return today.replace(year=today.year - n, day=28)


def _months_before(today: date, n: int) -> date:
    y, m = divmod(today.year * 12 + today.month - 1 - n, 12)
    return date(y, m + 1, 1)


class _Reader:
    def __init__(self, text: str, today: date):
        self.text, self.today = text, today
        self.tomorrow = today + timedelta(days=1)
        self.found: Interpreted | None = None
        self.after = self.before = None
        self.months: tuple[int, ...] = ()
        self.read: list[tuple[str, str]] = []

    def take(self, pattern: str, handle, kind: str = "taken") -> None:
        """Replace every match of `pattern` whose handler gives a range (or months) by a space."""
        def sub(m):
            if self.after or self.months:  # one date filter per query: the first one read
                return m.group(0)
            got = handle(m)
            if got is None:
                return m.group(0)
            if isinstance(got, tuple) and got and isinstance(got[0], int):
                self.months = got
            else:
                self.after, self.before = got
            self.read.append((kind, " ".join(m.group(0).split())))
            return " "
        self.text = re.sub(r"(?<![\w'-])(?:" + pattern + r")(?![\w'-])", sub, self.text)


def _rules(r: _Reader):
    t = r.today
    # explicit dates
    yield r"(?:on |from |in )?(\d{4})-(\d{2})-(\d{2})", lambda m: _day(int(m[1]), int(m[2]), int(m[3]))
    yield rf"(?:in |during |from )?{_YEAR}-(\d{{1,2}})", lambda m: _month(int(m[1]), int(m[2]))
    yield rf"(?:on )?(\d{{1,2}})(?:st|nd|rd|th)? ({_MONTH}),? {_YEAR}", lambda m: _day(int(m[3]), MONTHS[m[2]], int(m[1]))
    yield rf"(?:on )?({_MONTH}) (\d{{1,2}})(?:st|nd|rd|th)?,? {_YEAR}", lambda m: _day(int(m[3]), MONTHS[m[1]], int(m[2]))
    # holidays with a year, or last/this
    yield rf"(?:at |on |for )?({_HOLIDAY}) (?:of )?{_YEAR}", lambda m: HOLIDAYS[m[1]](int(m[2]))
    yield rf"(last|this) ({_HOLIDAY})", lambda m: _last_holiday(m[2], t, m[1] == "this")
    # months and seasons with a year
    yield (rf"(?:in |during |from )?(?:the )?(?:month of )?({_MONTH})(?: of)?,? {_YEAR}",
           lambda m: _month_range(int(m[2]), MONTHS[m[1]]))
    yield rf"(?:in |during |from )?(?:the )?({_SEASON})(?: of)? {_YEAR}", lambda m: _season_range(int(m[2]), m[1])
    # relative
    yield r"today", lambda m: (t, r.tomorrow)
    yield r"yesterday", lambda m: (t - timedelta(days=1), t)
    yield r"(?:in |during )?this (week)", lambda m: (t - timedelta(days=t.weekday()), r.tomorrow)
    yield r"(?:in |during )?last (week)", lambda m: (t - timedelta(days=t.weekday() + 7), t - timedelta(days=t.weekday()))
    yield r"(?:in |during )?this (month)", lambda m: (t.replace(day=1), r.tomorrow)
    yield r"(?:in |during )?last (month)", lambda m: (_months_before(t, 1), t.replace(day=1))
    yield r"(?:in |during )?this (year)", lambda m: (date(t.year, 1, 1), r.tomorrow)
    yield r"(?:in |during )?last (year)", lambda m: (date(t.year - 1, 1, 1), date(t.year, 1, 1))
    yield (rf"(?:in |during |over )?(?:the )?(?:last|past) {_N} (day|week|month|year)s?",
           lambda m: _last_n(t, r.tomorrow, m[1], m[2]))
    yield rf"{_N} (day|week|month|year)s? ago", lambda m: _ago(t, _number(m[1]), m[2])
    yield rf"(last|this) ({_SEASON})", lambda m: _last_season(m[2], t, m[1] == "this")
    yield rf"(last|this) ({_MONTH})", lambda m: _last_month(MONTHS[m[2]], t, m[1] == "this")
    # decades and years
    yield r"(?:in |during |from )?(?:the )?(?:(19|20)(\d)0|'?(\d)0)'?s", lambda m: _decade(m)
    yield rf"(?:between |from )?{_YEAR} ?(?:-|to|and|until|till) ?{_YEAR}", lambda m: _years(int(m[1]), int(m[2]))
    yield rf"(?:since|after) {_YEAR}", lambda m: (date(int(m[1]) + (m[0].startswith("after")), 1, 1), r.tomorrow)
    yield rf"before {_YEAR}", lambda m: (date(1900, 1, 1), date(int(m[1]), 1, 1))
    yield rf"(?:in |during |from |of )?{_YEAR}", lambda m: (date(int(m[1]), 1, 1), date(int(m[1]) + 1, 1, 1))
    # months and seasons of any year: a cue, or an unambiguous month name
    yield rf"(?:in|during) (?:the )?({_SEASON})", lambda m: SEASONS[m[1]]
    yield rf"(?:in|during) (?:the month of )?({_MONTH})", lambda m: (MONTHS[m[1]],)
    yield rf"({_MONTH})", lambda m: None if m[1] in AMBIGUOUS_MONTHS else (MONTHS[m[1]],)


def _day(y, mo, d):
    try:
        start = date(y, mo, d)
    except ValueError:
        return None
    return start, start + timedelta(days=1)


def _month(y, mo):
    return _month_range(y, mo) if 1 <= mo <= 12 else None


def _years(a, b):
    return (date(a, 1, 1), date(b + 1, 1, 1)) if a <= b else None


def _decade(m):
    if m[1]:
        start = int(m[1] + m[2] + "0")
    else:
        start = (1900 if int(m[3]) >= 3 else 2000) + int(m[3]) * 10  # the 90s -> 1990, the 20s -> 2020
    return date(start, 1, 1), date(start + 10, 1, 1)


def _last_n(today, tomorrow, n, unit):
    n = _number(n)
    if unit == "day":
        return today - timedelta(days=n - 1), tomorrow
    if unit == "week":
        return today - timedelta(weeks=n), tomorrow
    if unit == "month":
        return _months_before(today, n) if n else today, tomorrow
    return _years_before(today, n), tomorrow


def _ago(today, n, unit):
    if unit == "day":
        day = today - timedelta(days=n)
        return day, day + timedelta(days=1)
    if unit == "week":
        start = today - timedelta(days=today.weekday() + 7 * n)
        return start, start + timedelta(days=7)
    if unit == "month":
        start = _months_before(today, n)
        return start, _month_range(start.year, start.month)[1]
    return date(today.year - n, 1, 1), date(today.year - n + 1, 1, 1)


def _last_season(season, today, this):
    """"last summer": the latest summer that has ended; "this summer": this year's (to today)."""
    for year in (today.year, today.year - 1, today.year - 2):
        start, end = _season_range(year, season)
        if this and start <= today:
            return start, min(end, today + timedelta(days=1))
        if not this and end <= today:
            return start, end
    return None


def _last_month(month, today, this):
    if this:
        return _month_range(today.year, month) if month <= today.month else None
    year = today.year if month < today.month else today.year - 1
    return _month_range(year, month)


def _last_holiday(name, today, this):
    for year in (today.year, today.year - 1):
        start, end = HOLIDAYS[name](year)
        if (this and start <= today) or (not this and end <= today):
            return start, end
    return None


def _camera(text: str, cameras) -> tuple[str, str | None, str]:
    """Take "from the canon" (a cue, then a known make or model) out of the text."""
    names = sorted({n for c in cameras for n in _camera_names(c)}, key=len, reverse=True)
    if not names:
        return text, None, ""
    pattern = rf"(?<![\w'-]){CAMERA_CUES} ({'|'.join(re.escape(n) for n in names)})(?![\w'-])"
    m = re.search(pattern, text)
    if m is None:  # a model name of several words (or with digits) is plainly a camera without a cue
        plain = [n for n in names if " " in n or any(ch.isdigit() for ch in n)]
        m = re.search(rf"(?<![\w'-])({'|'.join(re.escape(n) for n in plain)})(?![\w'-])", text) if plain else None
    if m is None:
        return text, None, ""
    return text[:m.start()] + " " + text[m.end():], m.group(1), " ".join(m.group(0).split())


def _camera_names(camera: str) -> set[str]:
    """The ways a person names a camera "Canon EOS 5D Mark II": its make, its model, both."""
    words = " ".join(camera.lower().replace(",", " ").split())
    out = {words} if words else set()
    parts = words.split(" ", 1)
    if len(parts) == 2:
        out |= {parts[0], parts[1]}
    return {n for n in out if len(n) >= 3}


# Words that name no content: a query of only these (after dates and cameras are read) browses.
NOTHING_WORDS = frozenset("""a an and any are as at be by for from has have in is it its of on or that the this to with
photo photos picture pictures image images pic pics shot shots taken all everything every show me my our
some""".split())


def carries_nothing(text: str) -> bool:
    """Whether the words left of a query name no content (empty, or only words like "a photo")."""
    return all(w.strip(".,;:!?\"'()") in NOTHING_WORDS for w in (text or "").lower().split())


def interpret(q: str, today: date, cameras=()) -> Interpreted:
    """Read dates and a camera out of `q` (any case); what is left is the text. `cameras`: the
    library's cameras ("Canon EOS 5D"), so that only a camera someone has is read as one."""
    text = " " + " ".join((q or "").lower().split()) + " "
    reader = _Reader(text, today)
    for pattern, handle in _rules(reader):
        reader.take(pattern, handle)
    rest, camera, phrase = _camera(reader.text, cameras)
    read = reader.read + ([("camera", phrase)] if camera else [])
    if not read:
        return Interpreted(" ".join((q or "").split()))
    left = " ".join(rest.split())
    return Interpreted(left, reader.after, reader.before, reader.months, camera, read)
