"""When a letter is due: monthly on the first Wednesday morning (as DORA does), or weekly on the
weekday the person chose, at LETTER_HOUR in Europe/Paris whatever the season. Times in and out
are naive UTC, as stored everywhere else (kb/timeutil.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
LETTER_HOUR = time(8, 0)  # "the morning": before people open their mail
WEDNESDAY = 2
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre")


@dataclass(frozen=True)
class Period:
    key: str          # unique per person and period: "2026-12" (monthly), "2026-W49" (weekly)
    start: datetime   # naive UTC
    label: str        # French, for the subject: "décembre 2026", "semaine du 9 décembre 2026"
    weekly: bool = False


def _utc(day: date) -> datetime:
    """LETTER_HOUR of `day` in Paris, as naive UTC (zoneinfo handles summer time)."""
    local = datetime.combine(day, LETTER_HOUR, tzinfo=PARIS)
    return local.astimezone(UTC).replace(tzinfo=None)


def first_wednesday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(WEDNESDAY - first.weekday()) % 7)


def _paris_day(now: datetime) -> date:
    return now.replace(tzinfo=UTC).astimezone(PARIS).date()


def monthly_period(now: datetime) -> Period:
    """The monthly period `now` falls in: it starts on the first Wednesday of a month."""
    day = _paris_day(now)
    year, month = day.year, day.month
    start = first_wednesday(year, month)
    if now < _utc(start):  # before this month's letter: still last month's period
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        start = first_wednesday(year, month)
    return Period(f"{year}-{month:02d}", _utc(start), f"{MONTHS[month - 1]} {year}")


def weekly_period(now: datetime, weekday: int) -> Period:
    """The weekly period `now` falls in: it starts on `weekday` (0: Monday)."""
    day = _paris_day(now)
    start = day - timedelta(days=(day.weekday() - weekday) % 7)
    if now < _utc(start):
        start -= timedelta(days=7)
    year, week, _ = start.isocalendar()
    return Period(f"{year}-W{week:02d}", _utc(start),
                  f"semaine du {start.day} {MONTHS[start.month - 1]} {start.year}", weekly=True)


def period_for(period: str, weekday: int, now: datetime) -> Period:
    return weekly_period(now, weekday) if period == "week" else monthly_period(now)


def next_start(period: str, weekday: int, now: datetime) -> datetime:
    """When the period after the one `now` falls in starts (the person's next letter)."""
    current = period_for(period, weekday, now)
    if current.weekly:
        return _utc(_paris_day(current.start) + timedelta(days=7))
    day = _paris_day(current.start)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return _utc(first_wednesday(year, month))
