"""Freshness: review intervals, digest reminders, one-click confirmations, archiving."""
