"""La lettre des fiches: one letter per person per period gathering every optional mail."""
