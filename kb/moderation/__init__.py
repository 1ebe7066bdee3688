"""Moderation: review queue, reports, audit log, spam defence."""
