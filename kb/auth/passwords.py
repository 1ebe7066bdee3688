"""Password rules, and the dummy hash that makes a login for an unknown address take as long as
one for a known address."""

from __future__ import annotations

import re

from werkzeug.security import check_password_hash

from kb.text import fold

MIN_LENGTH = 10
MAX_LENGTH = 200  # hashing very long inputs is a cheap way to load the server
# Parts of a name or address shorter than this are too common to refuse ("de", "ma"…).
_MIN_PART = 4
# The most common choices, in French and English: refused whatever their length.
_COMMON = frozenset({
    "motdepasse", "motdepasse1", "motdepasse123", "password", "password1", "password123",
    "azertyuiop", "azerty1234", "azerty123456", "qwertyuiop", "1234567890", "0123456789",
    "123456789a", "abcdefghij", "bonjour123", "soleil1234", "jetaime123", "iloveyou12",
    "changeme123", "administrateur", "0000000000", "1111111111", "1q2w3e4r5t",
})


def _squash(text: str) -> str:
    """Lower case, no accents, letters and digits only: "Éléonore-2024!" -> "eleonore2024"."""
    return re.sub(r"[^a-z0-9]", "", fold(text).lower())


def password_problem(password: str, email: str = "", name: str = "") -> str | None:
    """Why `password` is refused for this account (French, no final period), or None."""
    if len(password) < MIN_LENGTH:
        return f"le mot de passe doit faire au moins {MIN_LENGTH} caractères"
    if len(password) > MAX_LENGTH:
        return f"le mot de passe doit faire au plus {MAX_LENGTH} caractères"
    squashed = _squash(password)
    if squashed in _COMMON or len(set(password)) < 4:
        return "ce mot de passe est trop courant ou trop simple"
    local, _, domain = email.strip().lower().partition("@")
    parts = {_squash(p) for p in re.split(r"[\s.\-_+'’@]+", f"{name} {local}")}
    parts |= {_squash(local), _squash(name)}
    parts.discard(_squash(domain.split(".")[0]) if domain else "")
    for part in parts:
        if len(part) >= _MIN_PART and part in squashed:
            return "le mot de passe ne doit pas contenir votre nom ni votre adresse e-mail"
    return None


_dummy_hash: dict[int, str] = {}


def verify_dummy(password: str) -> None:
    """Check `password` against a throw-away hash made with the current hashing method, so that
    an unknown address costs the same time as a known one."""
    from kb.auth import models  # the hashing function in use (the tests swap it for a fast one)

    method = id(models.generate_password_hash)
    if method not in _dummy_hash:
        _dummy_hash[method] = models.generate_password_hash("compte-inexistant")
    check_password_hash(_dummy_hash[method], password)
