"""Time phrases in recall queries: "what did we decide last week" -> the interval of last week.

`resolve_time(query, now)` finds the first phrase that names a period and returns it as a
half-open interval [since, until) in UTC, with the phrase as written so a caller can also drop it
from the lexical query. Questions that name no time return None, fast, and must never be misread:
most questions pass through here, and "May I ask...", "did he march...", "the second step" or
"2 or 3" are not dates.

Three stages, cheapest first:

1. A pre-filter: the text's words against a set of time words (month and weekday names,
   day/week/month/year, ago, yesterday, years like 2023, digit dates). Most questions stop
   here (a few microseconds). The words also tell which rules of stage 2 can match at all.
2. A small grammar of phrase patterns, each with a granularity. Month names count only in a
   time context ("in May", "May 3", "May 2023", "last May"), never alone, so the verb "may" and
   names like June or April are left alone. This is ours rather than `dateparser.search`, whose
   free-text search reads "we" as Wednesday and "march in the" as a date.
3. `dateparser` (imported lazily, only here) parses the explicit calendar dates the grammar
   found ("March 3rd", "3 March 2023", "2023-03-03", "3/4/2023") into a day; relative phrases
   ("two days ago", "last month") are plain calendar arithmetic and need no parser.

Periods are whole calendar units: a day phrase covers that day, "last week" the previous ISO
week (Monday 00:00 to Monday 00:00, chosen over "the last 7 days" because that is what people
mean by it), "N weeks ago" the week containing the day N weeks back, "last month"/"N months ago"
that calendar month, "in May" the most recent May that has started (the current one included),
"last May" the one before this month, "in 2023" that year, "on Monday" the most recent Monday
before today ("this Monday": this week's). Day parts: morning 00-12, afternoon 12-18, evening
18-24, night 18-06. Rolling phrases ("the past week", "in the last month", "the last 3 days",
"the past few days" = 3) run from now minus the span up to now, as do "earlier today" and
"earlier this week". "since <phrase>" runs from the start of the phrase's period up to now.
Only the first phrase counts ("between May and June" is May).

Calendar boundaries are taken in `now`'s timezone (pass a local `now` to get the user's days; a
naive `now` is UTC); `since` and `until` are always returned in UTC.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import cached_property
from typing import Callable, Collection

__all__ = ["TimeRange", "resolve_time", "warm_up"]


@dataclass(frozen=True)
class TimeRange:
    since: datetime     # inclusive, UTC
    until: datetime     # exclusive, UTC
    phrase: str         # the matched text, as written in the query
    # "hour" | "part" (of a day) | "day" | "week" | "weekend" | "month" | "year" | "span"
    granularity: str


# -- stage 1: the pre-filter --------------------------------------------------------------------

# Month names and their short forms, as whole words; the rules match them longest first.
_MONTH_SET = frozenset(("jan january feb february mar march apr april may jun june jul july aug "
                        "august sep sept september oct october nov november dec december").split())
_MONTH_WORDS = "|".join(sorted(_MONTH_SET, key=lambda w: (-len(w), w)))
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# -- stage 2: the grammar -----------------------------------------------------------------------

_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
_NUM = (r"(?P<n>\d{1,3}|" + "|".join(_NUMBER_WORDS) + r"|(?:a\s+)?couple(?:\s+of)?)")
# Vague counts make sense only for a span up to now ("the past few days"), not for "N ago".
_VAGUE = {"few": 3, "several": 5}
_SPAN_NUM = _NUM[:-1] + "|" + "|".join(_VAGUE) + ")"
_MONTH = rf"(?P<month>{_MONTH_WORDS})\.?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_UNIT = r"(?P<unit>hour|day|week|month|year)s?"
# Day parts in hours from the day's midnight: night runs into the next morning.
_DAY_PARTS = {"morning": (0, 12), "afternoon": (12, 18), "evening": (18, 24), "night": (18, 30)}


# A handler gets a rule's match and the local `now` and returns (since, until, granularity) in
# now's timezone, or None when the match is not a time after all.
_Period = tuple[datetime, datetime, str]


def _month_number(word: str) -> int:
    return ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
            "dec").index(word[:3].lower()) + 1


def _number(text: str) -> int:
    text = " ".join(text.lower().split())
    if text.isdigit():
        return int(text)
    if "couple" in text:
        return 2
    return _NUMBER_WORDS.get(text) or _VAGUE[text]


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def _day(day: date, tz: tzinfo) -> _Period:
    return _midnight(day, tz), _midnight(day + timedelta(days=1), tz), "day"


def _week(day: date, tz: tzinfo) -> _Period:
    monday = day - timedelta(days=day.weekday())
    return _midnight(monday, tz), _midnight(monday + timedelta(days=7), tz), "week"


def _month(year: int, month: int, tz: tzinfo) -> _Period:
    after = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return _midnight(date(year, month, 1), tz), _midnight(after, tz), "month"


def _year(year: int, tz: tzinfo) -> _Period:
    return _midnight(date(year, 1, 1), tz), _midnight(date(year + 1, 1, 1), tz), "year"


def _shift_months(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + by
    return index // 12, index % 12 + 1


def _ago(m: re.Match[str], now: datetime) -> _Period | None:
    n, unit, tz, today = _number(m["n"]), m["unit"].lower(), now.tzinfo, now.date()
    if unit == "hour":
        # "an hour ago" is fuzzy by nature: an hour either side, never past now.
        return now - timedelta(hours=n + 1), min(now, now - timedelta(hours=n - 1)), "hour"
    if unit == "day":
        return _day(today - timedelta(days=n), tz)
    if unit == "week":
        return _week(today - timedelta(weeks=n), tz)
    if unit == "month":
        return _month(*_shift_months(today.year, today.month, -n), tz)
    return _year(today.year - n, tz)


def _span_back(n: int, unit: str, now: datetime) -> _Period:
    """[now - n units, now); a month back from March 31 is the last day of February."""
    if unit in ("month", "year"):
        year, month = _shift_months(now.year, now.month, -n * (12 if unit == "year" else 1))
        start = now.replace(year=year, month=month, day=min(now.day, monthrange(year, month)[1]))
    else:
        start = now - timedelta(**{f"{unit}s": n})
    return start, now, "span"


def _rolling(m: re.Match[str], now: datetime) -> _Period | None:
    return _span_back(_number(m["n"]), m["unit"].lower(), now)


def _calendar(m: re.Match[str], now: datetime) -> _Period | None:
    """last/this/past + week/weekend/month/year; "earlier this week" stops at now."""
    period = _calendar_unit(m, now)
    if m["earlier"] and period[1] > now:
        return period[0], now, period[2]
    return period


def _calendar_unit(m: re.Match[str], now: datetime) -> _Period:
    mod, unit, tz, today = m["mod"].lower(), m["unit"].lower(), now.tzinfo, now.date()
    # "the past week", "in the last month": a rolling span; bare "last month" is the calendar one.
    if unit != "weekend" and (mod == "past" or (mod == "last" and m["intro"])):
        return _span_back(1, unit, now)
    back = mod in ("last", "previous", "past")
    if unit == "week":
        return _week(today - timedelta(weeks=back), tz)
    if unit == "weekend":
        saturday = today - timedelta(days=(today.weekday() - 5) % 7)  # latest Saturday <= today
        if back and today.weekday() >= 5:
            saturday -= timedelta(days=7)  # on a weekend, "last weekend" is the one before
        elif not back and today.weekday() < 5:
            saturday += timedelta(days=7)  # "this weekend" on a weekday: the coming one
        return _midnight(saturday, tz), _midnight(saturday + timedelta(days=2), tz), "weekend"
    if unit == "month":
        return _month(*_shift_months(today.year, today.month, -back), tz)
    return _year(today.year - back, tz)


def _named_day(m: re.Match[str], now: datetime) -> _Period | None:
    """yesterday / today / tonight / the day before yesterday, with an optional day part."""
    word = (m["word"] or "").lower()
    offset = {"today": 0, "tonight": 0, "yesterday": 1, "": 2}[word]
    day = now.date() - timedelta(days=offset)
    part = "night" if word == "tonight" else (m["part"] or "").lower()
    if part:
        start, end = _DAY_PARTS[part]
        midnight = _midnight(day, now.tzinfo)
        return midnight + timedelta(hours=start), midnight + timedelta(hours=end), "part"
    return _day(day, now.tzinfo)


def _earlier_today(m: re.Match[str], now: datetime) -> _Period | None:
    return _midnight(now.date(), now.tzinfo), now, "part"


def _this_part(m: re.Match[str], now: datetime) -> _Period | None:
    """this morning / this evening / last night."""
    part = m["part"].lower()
    day = now.date()
    if m["mod"].lower() == "last":  # "last night": the night that ended this morning
        day -= timedelta(days=1)
        part = "night" if part in ("night", "evening") else part
    start, end = _DAY_PARTS[part]
    midnight = _midnight(day, now.tzinfo)
    return midnight + timedelta(hours=start), midnight + timedelta(hours=end), "part"


def _weekday(m: re.Match[str], now: datetime) -> _Period | None:
    """on/last/this Monday: the most recent one before today ("this" is this week's)."""
    wanted = _WEEKDAYS.index(m["wd"].lower())
    today = now.date()
    if m["mod"].lower() == "this":
        return _day(today - timedelta(days=today.weekday() - wanted), now.tzinfo)
    back = (today.weekday() - wanted) % 7 or 7
    return _day(today - timedelta(days=back), now.tzinfo)


def _month_only(m: re.Match[str], now: datetime) -> _Period | None:
    """in/last/this May: the most recent May that has started ("last": before this month)."""
    month, mod = _month_number(m["month"]), m["mod"].lower()
    if mod == "this":
        year = now.year
    elif mod in ("last", "past", "previous"):
        year = now.year - (month >= now.month)
    else:
        year = now.year - (month > now.month)
    return _month(year, month, now.tzinfo)


def _month_year(m: re.Match[str], now: datetime) -> _Period | None:
    return _month(int(m["year"]), _month_number(m["month"]), now.tzinfo)


def _year_only(m: re.Match[str], now: datetime) -> _Period | None:
    return _year(int(m["year"]), now.tzinfo)


def _has_date_context(m: re.Match[str]) -> bool:
    """A leading on/the, an ordinal, "of" or a year: what makes "3 may" or "march 3" a date."""
    return any(m.groupdict().get(g) for g in ("on", "ord", "of", "year"))


def _explicit_date(m: re.Match[str], now: datetime) -> _Period | None:
    if m.groupdict().get("month"):
        # Day-first forms need more than a bare number: "2 may help" is not a date. And 'may'
        # and 'march' are verbs first: lower-case and bare ("did he march 3 miles") they are
        # not months either.
        if m.re is _DAY_MONTH.pattern and not _has_date_context(m):
            return None
        verb = m["month"].lower() in ("may", "march") and not m["month"][0].isupper()
        if verb and not _has_date_context(m):
            return None
    parsed = _parse_date(m["date"], now)
    return _day(parsed, now.tzinfo) if parsed else None


# -- stage 3: dateparser ------------------------------------------------------------------------

def _parse_date(text: str, now: datetime) -> date | None:
    """The calendar day `text` names, or None; dateparser is imported on first use only."""
    import dateparser  # here, not at the top: ~0.1 s to import and ~0.1 s for the first parse

    # Only the calendar day is taken from the result and gets now's timezone back from us, so
    # dateparser works on naive local wall time: an aware round trip through UTC could move a
    # date across midnight.
    settings = {"RELATIVE_BASE": now.replace(tzinfo=None), "PREFER_DATES_FROM": "past",
                "PREFER_DAY_OF_MONTH": "first", "RETURN_AS_TIMEZONE_AWARE": False,
                "REQUIRE_PARTS": ["day", "month"]}
    text = re.sub(r"(?<=\d)(?:st|nd|rd|th)\b|\bthe\b|\bof\b", " ", text, flags=re.I)
    try:
        parsed = dateparser.parse(" ".join(text.split()), languages=["en"], settings=settings)
    except (ValueError, OverflowError):
        return None
    return parsed.date() if parsed else None


def warm_up() -> None:
    """Import dateparser and load its English data now (e.g. from a background thread at
    start-up) so the first dated query does not pay ~0.3 s."""
    _parse_date("March 3 2023", datetime(2024, 1, 1))


# Pseudo-words `_words` adds for a year (1900-2099) and a digit date ("3/4"); real words have
# no "<".
_YEAR_WORD, _SLASH_WORD = "<year>", "<slash>"
_UNIT_SET = frozenset(u + s for u in ("hour", "day", "week", "month", "year") for s in ("", "s"))
_TIME_WORDS = (_MONTH_SET | _UNIT_SET | frozenset(_WEEKDAYS) | frozenset(_DAY_PARTS)
               | {"ago", "yesterday", "today", "tonight", "weekend", _YEAR_WORD, _SLASH_WORD})
_WORD = re.compile(r"\w+")
_YEAR_RE = re.compile(r"(?:19|20)\d\d")
_SLASH_RE = re.compile(r"\d/\d")


def _words(text: str) -> set[str] | None:
    """The distinct words of `text`, case-folded, with `_YEAR_WORD` and `_SLASH_WORD` for a year
    or a digit date; None when it holds no time word at all (stage 1: the pre-filter)."""
    words = set(_WORD.findall(text.casefold()))
    if any(len(w) == 4 and _YEAR_RE.fullmatch(w) for w in words):
        words.add(_YEAR_WORD)
    if "/" in text and _SLASH_RE.search(text):
        words.add(_SLASH_WORD)
    return None if words.isdisjoint(_TIME_WORDS) else words


# -- the rules, most specific first (the earliest match wins; at equal starts, the longest) ----

class _Rule:
    def __init__(self, regex: str, handler: Callable[[re.Match[str], datetime], _Period | None],
                 *needs: Collection[str]):
        self.regex = regex
        self.handler = handler
        # Every match of the rule holds, as whole words, one word of each group: a text missing
        # a group is not scanned with the rule. A long turn passes the pre-filter more often
        # than not ("day", "may"), and scanning it with all the rules cost ~0.5 ms a turn: every
        # atom is read once as it is written (fusion.time_facts), and a search reads the texts
        # of its candidates whose stored facts are missing or stale.
        self.needs = [frozenset(group) for group in needs]

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        # Compiled on first use: most processes import this module and never see a time word.
        return re.compile(self.regex, re.I)


_ISO_DATE = _Rule(r"\b(?:on\s+)?(?P<date>(?:19|20)\d\d-\d\d?-\d\d?)\b", _explicit_date,
                  {_YEAR_WORD})
_SLASH_DATE = _Rule(r"\b(?:on\s+)?(?P<date>\d\d?/\d\d?/(?:(?:19|20)\d\d|\d\d))\b(?!/)",
                    _explicit_date, {_SLASH_WORD})
_MONTH_DAY = _Rule(rf"\b(?:(?P<on>on|the)\s+)?(?P<date>{_MONTH}\s+(?:the\s+)?\d\d?"
                   rf"(?P<ord>st|nd|rd|th)?(?:,?\s+{_YEAR})?)\b(?![:.]\d)", _explicit_date,
                   _MONTH_SET)
_DAY_MONTH = _Rule(rf"\b(?:(?P<on>on)\s+)?(?:the\s+)?(?P<date>\d\d?(?P<ord>st|nd|rd|th)?\s+"
                   rf"(?P<of>of\s+)?{_MONTH}(?:,?\s+{_YEAR})?)\b", _explicit_date, _MONTH_SET)
_SPAN_INTRO = r"(?:(?P<intro>in|over|during|within|for)\s+)?(?:the\s+)?"
_RULES = [
    _ISO_DATE, _SLASH_DATE, _MONTH_DAY, _DAY_MONTH,
    _Rule(rf"\b(?:(?:in|during|of|from|since)\s+)?{_MONTH},?\s+{_YEAR}\b", _month_year,
          _MONTH_SET, {_YEAR_WORD}),
    _Rule(rf"\b(?P<mod>in|during|of|from|since|early|late|mid|last|this|past|previous|throughout)"
          rf"(?:\s+|-)(?:the\s+month\s+of\s+)?(?P<month>{_MONTH_WORDS})\b", _month_only,
          _MONTH_SET, {"in", "during", "of", "from", "since", "early", "late", "mid", "last",
                       "this", "past", "previous", "throughout"}),
    _Rule(rf"\b(?P<mod>in|during|of|from|since|throughout)\s+{_YEAR}\b(?![-/.]\d)", _year_only,
          {_YEAR_WORD}, {"in", "during", "of", "from", "since", "throughout"}),
    _Rule(rf"\b{_NUM}\s+{_UNIT}\s+ago\b", _ago, {"ago"}, _UNIT_SET),
    _Rule(rf"\b{_SPAN_INTRO}(?:last|past|previous)\s+{_SPAN_NUM}\s+{_UNIT}\b", _rolling,
          _UNIT_SET, {"last", "past", "previous"}),
    # "(?!\s+of)": "the last week of May" is about May, and the May rule finds it.
    _Rule(rf"\b(?:(?P<earlier>earlier)\s+)?{_SPAN_INTRO}"
          r"(?P<mod>last|this|previous|past|current)\s+"
          r"(?P<unit>week|weekend|month|year)\b(?!\s+of\b)", _calendar,
          {"week", "weekend", "month", "year"}, {"last", "this", "previous", "past", "current"}),
    _Rule(r"\b(?:(?:the\s+)?day\s+before\s+yesterday|(?P<word>yesterday|today|tonight))"
          r"(?:\s+(?P<part>morning|afternoon|evening|night))?\b", _named_day,
          {"yesterday", "today", "tonight"}),
    _Rule(r"\bearlier\s+today\b", _earlier_today, {"earlier"}, {"today"}),
    _Rule(r"\b(?P<mod>this|last)\s+(?P<part>morning|afternoon|evening|night)\b", _this_part,
          {"this", "last"}, _DAY_PARTS),
    # Weekdays need a lead-in ("on Monday"), so "Sunday school" or "Girl Friday" stay names.
    _Rule(rf"\b(?P<mod>on|last|this|past|previous|since|from)\s+(?P<wd>{'|'.join(_WEEKDAYS)})\b",
          _weekday, _WEEKDAYS, {"on", "last", "this", "past", "previous", "since", "from"}),
]
_SINCE_BEFORE = re.compile(r"\bsince\s+$", re.I)


def resolve_time(query: str, now: datetime) -> TimeRange | None:
    """The period the first time phrase in `query` names, or None (quickly) if there is none."""
    words = _words(query) if query else None
    if words is None:
        return None
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    candidates = [(m.start(), -(m.end() - m.start()), i, m)
                  for i, rule in enumerate(_RULES)
                  if all(not words.isdisjoint(group) for group in rule.needs)
                  for m in rule.pattern.finditer(query)]
    for start, _, index, m in sorted(candidates, key=lambda c: c[:3]):
        try:
            period = _RULES[index].handler(m, now)
        except (ValueError, OverflowError):
            period = None  # e.g. "9999 years ago", or a day that does not exist
        if period is None:
            continue
        since, until, granularity = period
        end = m.end()
        before = _SINCE_BEFORE.search(query, 0, start)
        if before:
            start = before.start()
        if query[start:end].lower().startswith("since"):
            until, granularity = max(now, since), "span"
        return TimeRange(since.astimezone(timezone.utc), until.astimezone(timezone.utc),
                         query[start:end], granularity)
    return None
