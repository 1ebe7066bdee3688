"""Times are stored in UTC and shown in Paris time, in French: 'le 3 mars 2026 à 14 h 05'."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from kb.extensions import db
from kb.templating import french_date, french_datetime


@pytest.mark.parametrize(("stored", "shown"), [
    (datetime(2026, 3, 3, 13, 5), "3 mars 2026 à 14 h 05"),  # winter: UTC+1
    (datetime(2026, 7, 14, 8, 0), "14 juillet 2026 à 10 h 00"),  # summer: UTC+2
    (datetime(2026, 3, 29, 0, 59), "29 mars 2026 à 1 h 59"),  # the last minute of winter time
    (datetime(2026, 3, 29, 1, 0), "29 mars 2026 à 3 h 00"),  # summer time begins
    (datetime(2026, 10, 25, 0, 30), "25 octobre 2026 à 2 h 30"),
    (datetime(2026, 10, 25, 1, 30), "25 octobre 2026 à 2 h 30"),  # back to winter time
    (datetime(2026, 12, 31, 23, 30), "1er janvier 2027 à 0 h 30"),  # the next day, year
    (None, ""),
])
def test_stored_utc_is_shown_in_paris_time(stored, shown):
    assert french_datetime(stored) == shown


def test_dates_are_the_day_in_paris():
    assert french_date(datetime(2026, 2, 28, 23, 30)) == "1er mars 2026"
    assert french_date(datetime(2026, 8, 31, 21, 59)) == "31 août 2026"
    assert french_date(date(2026, 5, 1)) == "1er mai 2026"  # a date has no time zone to apply


def test_the_history_page_shows_paris_time(client, make_sheet):
    revision = make_sheet()
    revision.created_at = datetime(2026, 3, 3, 13, 5)
    db.session.commit()
    page = client.get(f"/fiches/{revision.sheet.slug}/historique").get_data(as_text=True)
    assert "3 mars 2026 à 14 h 05" in page
    assert "UTC" not in page
