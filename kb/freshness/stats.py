"""The update rate, published on /statistiques and the moderators' dashboard.

- fresh share: published sheets whose review date has not passed;
- on time: of the review dates that fell in the last 12 months (at least 30 days ago, so that
  the outcome is known), the share whose sheet showed a sign of life at most 30 days after it
  (a sign in the 30 days before it counts too: that is what the "bientôt" reminder is for);
  readers' extensions are not confirmations and do not count;
- median days overdue: over the published sheets past their review date today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import select

from kb.extensions import db
from kb.freshness.models import ReviewEvent
from kb.freshness.signs import READERS
from kb.sheets.models import Sheet, published_sheets
from kb.timeutil import utcnow

WINDOW = timedelta(days=365)
ON_TIME = timedelta(days=30)


@dataclass(frozen=True)
class UpdateRate:
    published: int
    fresh: int
    due_dates: int  # review dates counted for "on time"
    on_time: int
    overdue: int
    median_days_overdue: float | None

    @property
    def fresh_share(self) -> float | None:
        return self.fresh / self.published if self.published else None

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.due_dates if self.due_dates else None


def update_rate(now: datetime | None = None) -> UpdateRate:
    now = now or utcnow()
    sheets = list(db.session.execute(published_sheets().with_only_columns(
        Sheet.id, Sheet.last_reviewed_at, Sheet.review_interval_months)))
    due = Sheet.review_due_at.fget  # type: ignore[attr-defined]  # the model's rule, on rows
    overdue_days = [(now - due(row)).total_seconds() / 86400 for row in sheets if due(row) <= now]
    start, end = now - WINDOW, now - ON_TIME
    published_ids = {row.id for row in sheets}
    events = db.session.scalars(select(ReviewEvent).where(
        ReviewEvent.due_before >= start, ReviewEvent.due_before <= end,
        ReviewEvent.kind != READERS)).all()
    # A review date "fell" unless a sign of life came more than 30 days before it.
    reached = [e for e in events if e.sheet_id in published_ids and e.at >= e.due_before - ON_TIME]
    on_time = sum(1 for e in reached if e.at <= e.due_before + ON_TIME)
    # Review dates in the window still waiting today are late too.
    waiting = sum(1 for row in sheets if start <= due(row) <= end)
    return UpdateRate(published=len(sheets), fresh=len(sheets) - len(overdue_days),
                      due_dates=len(reached) + waiting, on_time=on_time,
                      overdue=len(overdue_days),
                      median_days_overdue=round(median(overdue_days), 1) if overdue_days else None)
