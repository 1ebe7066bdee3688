""""Mon compte" (name, address, password, notifications, API tokens, data, leaving), the
admins' accounts page and the moderators' daily digest."""
