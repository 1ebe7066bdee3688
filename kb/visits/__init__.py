"""Learning visits (issue 22, docs/visits.md): slots a published sheet offers, with seats, a
minimum and a decision date, a FIFO waitlist, calendar invitations and a private feed."""
