"""Duplicate sheets: similarity candidates while writing, a moderators' queue, merge + redirects."""
