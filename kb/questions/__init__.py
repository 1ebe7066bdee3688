"""Questions to an initiative's team, relayed by mail, answered through a signed link."""
