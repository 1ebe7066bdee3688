"""Measured results across sheets (issue 26): one kind of indicator as a dot plot, and up to
four sheets side by side. Reads only published sheets and their approved revision."""
