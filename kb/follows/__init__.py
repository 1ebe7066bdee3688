"""Following a theme, a territory or a search: one digest per person per period."""
