"""Time phrases in recall queries -> half-open UTC intervals; questions without one -> None."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnemara.index import timephrase
from mnemara.index.timephrase import TimeRange, resolve_time

UTC = timezone.utc
NOW = datetime(2026, 12, 5, 15, 30, tzinfo=UTC)        # a Saturday
NOW_2023 = datetime(2023, 6, 14, 10, 0, tzinfo=UTC)    # a Wednesday, years before the code


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def check(query: str, now: datetime, since: datetime, until: datetime, phrase: str,
          granularity: str | None = None) -> TimeRange:
    got = resolve_time(query, now)
    assert got is not None, query
    assert (got.since, got.until, got.phrase) == (since, until, phrase), query
    assert got.since.tzinfo == UTC and got.until.tzinfo == UTC
    assert phrase in query
    if granularity:
        assert got.granularity == granularity
    return got


# -- the phrases the recall tool must understand, against a fixed now --------------------------

@pytest.mark.parametrize("query, since, until, phrase, granularity", [
    ("what did we decide last week", utc(2026, 11, 23), utc(2026, 11, 30), "last week", "week"),
    ("the bug from yesterday", utc(2026, 12, 4), utc(2026, 12, 5), "yesterday", "day"),
    ("what happened in May", utc(2026, 5, 1), utc(2026, 6, 1), "in May", "month"),
    ("what did I say two days ago?", utc(2026, 12, 3), utc(2026, 12, 4), "two days ago", "day"),
    ("the call on March 3", utc(2026, 3, 3), utc(2026, 3, 4), "on March 3", "day"),
    ("which libraries did we pick in 2023", utc(2023, 1, 1), utc(2024, 1, 1), "in 2023", "year"),
    ("the plan from last month", utc(2026, 11, 1), utc(2026, 12, 1), "last month", "month"),
    ("what did we fix this morning", utc(2026, 12, 5), utc(2026, 12, 5, 12), "this morning", "part"),
    ("the outage 3 weeks ago", utc(2026, 11, 9), utc(2026, 11, 16), "3 weeks ago", "week"),
    ("the test we ran earlier today", utc(2026, 12, 5), NOW, "earlier today", "part"),
])
def test_brief_phrases(query, since, until, phrase, granularity):
    check(query, NOW, since, until, phrase, granularity)


@pytest.mark.parametrize("query, since, until, phrase", [
    ("what did we decide last week", utc(2023, 6, 5), utc(2023, 6, 12), "last week"),
    ("the bug from yesterday", utc(2023, 6, 13), utc(2023, 6, 14), "yesterday"),
    ("what happened in May", utc(2023, 5, 1), utc(2023, 6, 1), "in May"),
    ("what happened in July", utc(2022, 7, 1), utc(2022, 8, 1), "in July"),  # not the future one
    ("two days ago", utc(2023, 6, 12), utc(2023, 6, 13), "two days ago"),
    ("on March 3", utc(2023, 3, 3), utc(2023, 3, 4), "on March 3"),
    ("on December 3", utc(2022, 12, 3), utc(2022, 12, 4), "on December 3"),
    ("in 2023", utc(2023, 1, 1), utc(2024, 1, 1), "in 2023"),
    ("last month", utc(2023, 5, 1), utc(2023, 6, 1), "last month"),
    ("this morning", utc(2023, 6, 14), utc(2023, 6, 14, 12), "this morning"),
    ("3 weeks ago", utc(2023, 5, 22), utc(2023, 5, 29), "3 weeks ago"),
    ("earlier today", utc(2023, 6, 14), NOW_2023, "earlier today"),
])
def test_a_now_in_the_past_is_the_base(query, since, until, phrase):
    check(query, NOW_2023, since, until, phrase)


@pytest.mark.parametrize("query, since, until, phrase", [
    # days
    ("what did we do today", utc(2026, 12, 5), utc(2026, 12, 6), "today"),
    ("the day before yesterday", utc(2026, 12, 3), utc(2026, 12, 4), "the day before yesterday"),
    ("a day ago", utc(2026, 12, 4), utc(2026, 12, 5), "a day ago"),
    ("10 days ago", utc(2026, 11, 25), utc(2026, 11, 26), "10 days ago"),
    ("yesterday afternoon", utc(2026, 12, 4, 12), utc(2026, 12, 4, 18), "yesterday afternoon"),
    ("last night", utc(2026, 12, 4, 18), utc(2026, 12, 5, 6), "last night"),
    ("the 3rd of March 2023", utc(2023, 3, 3), utc(2023, 3, 4), "the 3rd of March 2023"),
    ("on 3 March", utc(2026, 3, 3), utc(2026, 3, 4), "on 3 March"),
    ("March 3rd, 2023", utc(2023, 3, 3), utc(2023, 3, 4), "March 3rd, 2023"),
    ("what broke on 2023-03-03?", utc(2023, 3, 3), utc(2023, 3, 4), "on 2023-03-03"),
    ("December 25", utc(2025, 12, 25), utc(2025, 12, 26), "December 25"),  # most recent past one
    ("the meeting on Monday", utc(2026, 11, 30), utc(2026, 12, 1), "on Monday"),
    ("last Saturday", utc(2026, 11, 28), utc(2026, 11, 29), "last Saturday"),  # not today
    ("this Tuesday", utc(2026, 12, 1), utc(2026, 12, 2), "this Tuesday"),
    # weeks, months, years
    ("this week", utc(2026, 11, 30), utc(2026, 12, 7), "this week"),
    ("a week ago", utc(2026, 11, 23), utc(2026, 11, 30), "a week ago"),
    ("a couple of weeks ago", utc(2026, 11, 16), utc(2026, 11, 23), "a couple of weeks ago"),
    ("last weekend", utc(2026, 11, 28), utc(2026, 11, 30), "last weekend"),
    ("this month", utc(2026, 12, 1), utc(2027, 1, 1), "this month"),
    ("two months ago", utc(2026, 10, 1), utc(2026, 11, 1), "two months ago"),
    ("in December", utc(2026, 12, 1), utc(2027, 1, 1), "in December"),  # the current month counts
    ("last December", utc(2025, 12, 1), utc(2026, 1, 1), "last December"),
    ("in May 2023", utc(2023, 5, 1), utc(2023, 6, 1), "in May 2023"),
    ("last year", utc(2025, 1, 1), utc(2026, 1, 1), "last year"),
    ("a year ago", utc(2025, 1, 1), utc(2026, 1, 1), "a year ago"),
    # rolling spans and "since"
    ("over the past week", NOW - timedelta(days=7), NOW, "over the past week"),
    ("in the last month", utc(2026, 11, 5, 15, 30), NOW, "in the last month"),
    ("in the past few days", NOW - timedelta(days=3), NOW, "in the past few days"),
    ("earlier this week", utc(2026, 11, 30), NOW, "earlier this week"),
    ("this past weekend", utc(2026, 11, 28), utc(2026, 11, 30), "past weekend"),
    ("what happened in May.", utc(2026, 5, 1), utc(2026, 6, 1), "in May"),
    ("the last week of May", utc(2026, 5, 1), utc(2026, 6, 1), "of May"),
    ("since 2023", utc(2023, 1, 1), NOW, "since 2023"),
    ("the notes from Monday", utc(2026, 11, 30), utc(2026, 12, 1), "from Monday"),
    ("in the last 3 days", NOW - timedelta(days=3), NOW, "in the last 3 days"),
    ("the past 2 months", utc(2026, 10, 5, 15, 30), NOW, "the past 2 months"),
    ("since yesterday", utc(2026, 12, 4), NOW, "since yesterday"),
    ("since May", utc(2026, 5, 1), NOW, "since May"),
    ("2 hours ago", utc(2026, 12, 5, 12, 30), utc(2026, 12, 5, 14, 30), "2 hours ago"),
])
def test_more_phrases(query, since, until, phrase):
    check(query, NOW, since, until, phrase)


@pytest.mark.parametrize("now, since, until", [
    (utc(2024, 1, 10), utc(2023, 12, 1), utc(2024, 1, 1)),     # across a year
    (utc(2024, 3, 31), utc(2024, 2, 1), utc(2024, 3, 1)),      # from a 31st
])
def test_last_month_at_edges(now, since, until):
    check("last month", now, since, until, "last month")


def test_last_week_on_monday_and_sunday():
    check("last week", utc(2026, 11, 30, 0, 5), utc(2026, 11, 23), utc(2026, 11, 30), "last week")
    check("last week", utc(2026, 12, 6, 23), utc(2026, 11, 23), utc(2026, 11, 30), "last week")


def test_a_date_later_this_year_means_last_year():
    check("on March 3", utc(2026, 3, 2), utc(2025, 3, 3), utc(2025, 3, 4), "on March 3")
    check("on March 3", utc(2026, 3, 3, 9), utc(2026, 3, 3), utc(2026, 3, 4), "on March 3")


def test_days_follow_the_timezone_of_now_and_come_back_in_utc():
    new_york = timezone(timedelta(hours=-5))
    now = datetime(2026, 12, 5, 21, 0, tzinfo=new_york)   # already Dec 6 in UTC
    check("yesterday", now, utc(2026, 12, 4, 5), utc(2026, 12, 5, 5), "yesterday")
    check("on March 3", now, utc(2026, 3, 3, 5), utc(2026, 3, 4, 5), "on March 3")


def test_naive_now_is_utc():
    check("yesterday", datetime(2026, 12, 5, 15, 30), utc(2026, 12, 4), utc(2026, 12, 5), "yesterday")


def test_the_first_phrase_wins_and_the_longest_at_a_place():
    check("in May 2023 and again last week", NOW, utc(2023, 5, 1), utc(2023, 6, 1), "in May 2023")
    check("yesterday morning", NOW, utc(2026, 12, 4), utc(2026, 12, 4, 12), "yesterday morning")


@pytest.mark.parametrize("query", ["9999 years ago", "on February 30", "2023-02-30",
                                   "on March 45"])
def test_impossible_dates_are_no_time(query):
    assert resolve_time(query, NOW) is None


# -- questions that name no time must not be misread --------------------------------------------

NO_TIME = [
    "May I ask what Caroline's job is?",
    "may i see the logs",
    "What did Melanie paint?",
    "Did he march in the parade?",
    "did he march 3 miles?",
    "How many kids does she have, 2 or 3?",
    "What is the second step?",
    "Wait a second, what was that command?",
    "What did we talk about last time?",
    "What is the last thing you said?",
    "How do I make the tests pass now?",
    "What are the 10 best practices?",
    "Who won the March Madness bracket?",
    "What did June say about April's plan?",
    "What did Jan think of the design?",
    "It may rain; should we move it?",
    "2 may help, 3 may not",
    "Is 2023 a leap year?",
    "What is error code 2024?",
    "Did we ship version 2023.1?",
    "What was said at Sunday school?",
    "How many days are in a week?",
    "How many years ago did she move?",
    "Which year did she graduate?",
    "What is the month-end process?",
    "Can you summarise the Day 2 agenda?",
    "Show me the 1/2 cup recipe",
    "Which is better, this or that?",
    "Who was the May Queen?",
    "What did we decide at the last meeting?",
    "Can we meet in a day or two?",
    "How many hours a day does she work?",
    "What is in the last 10 lines?",
    "a few days ago",
    "",
]


@pytest.mark.parametrize("query", NO_TIME)
def test_questions_without_a_time_are_none(query):
    assert resolve_time(query, NOW) is None


def test_dateparser_is_imported_only_for_explicit_dates():
    code = (
        "import sys\n"
        "from datetime import datetime, timezone\n"
        "from mnemara.index.timephrase import resolve_time\n"
        "now = datetime(2026, 12, 5, tzinfo=timezone.utc)\n"
        "for q in ['May I ask what Caroline job is?', 'what did we decide last week',\n"
        "          'two days ago', 'in May', 'in 2023']:\n"
        "    assert resolve_time(q, now) is not None or q.startswith('May')\n"
        "assert 'dateparser' not in sys.modules, 'imported too early'\n"
        "assert resolve_time('on March 3', now).phrase == 'on March 3'\n"
        "assert 'dateparser' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# -- the pre-filter's word sets skip rules that cannot match: never a different answer ---------

# The pre-filter as a regex, before it became a word set: every rule is tried on every text it
# lets through. Slower by 4x on a long turn, and the reference the gated resolver must equal.
_ALL_RULES_PREFILTER = re.compile(
    r"\b(?:ago|yesterday|today|tonight|morning|afternoon|evening|night|hours?|days?|weeks?|weekend"
    r"|months?|years?|jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|monday|tuesday|wednesday"
    r"|thursday|friday|saturday|sunday|(?:19|20)\d\d)\b|\d/\d", re.I)

_PIECES = [
    # time words, the rules' lead-ins and modifiers, numbers, dates, and words that are not time
    *"ago yesterday today tonight morning afternoon evening night hour hours day days week weeks "
     "weekend month months year years jan January Feb mar March apr may June jul aug Sept sep "
     "oct Nov dec December monday Tuesday friday SUNDAY".split(),
    *"in over during within for the last past previous this current earlier on of from since "
     "early late mid throughout before a an one two twelve couple few several".split(),
    "3", "17", "31", "1999", "2023", "2099", "1899", "3rd", "21st", "3/4", "3/4/2023", "12/31/99",
    "2023-03-05", "2023-3-5", "10:30", "May.", "school", "we", "marched", "mayday", "dayton",
    "weekends", "todays", "Sunday's",
    # whole phrases, each some rule's (the words above rarely line up into one)
    "two days ago", "a couple of weeks ago", "3 months ago", "the past few days",
    "in the last 3 weeks", "over the previous month", "last week", "this weekend",
    "earlier this year", "the last week of", "in May", "last May", "during the month of June",
    "May 3rd, 2023", "on the 3rd of May", "Jan 2023",
    "in 2023", "since 1999", "on 2023-03-05", "on 3/4/2023", "yesterday evening", "earlier today",
    "the day before yesterday", "this morning", "last night", "on Monday", "since Friday",
    "this Sunday", "throughout 2023", "mid-March", "late December",
]
_SEPARATORS = [" ", " ", " ", "  ", "\n", ", ", ". ", "-", "/", ""]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PIECES), st.sampled_from(_SEPARATORS)), max_size=14),
       st.sampled_from([NOW, NOW_2023]))
def test_skipping_rules_never_changes_the_answer(pieces, now):
    text = "".join(word + sep for word, sep in pieces)
    gated = resolve_time(text, now)
    with pytest.MonkeyPatch.context() as mp:
        for rule in timephrase._RULES:
            mp.setattr(rule, "needs", [])
        mp.setattr(timephrase, "_words",
                   lambda t: set() if _ALL_RULES_PREFILTER.search(t) else None)
        reference = resolve_time(text, now)
    assert gated == reference, text


def test_a_long_turn_with_a_time_phrase_deep_inside_is_still_read():
    filler = "we talked about the new deploy and the retry logic for a while. " * 40
    check(filler + "We shipped it last week, finally.", NOW,
          utc(2026, 11, 23), utc(2026, 11, 30), "last week")
