"""Login time does not tell which addresses have an account: median time of a failed
`POST /connexion` for an unknown address against a known address with a wrong password, with
the real password hashing (scrypt). The baseline is the former check (no hash for an unknown
address), run in the same process; a ratio near 1 means the two cannot be told apart.

    .venv/bin/python -m bench.login_timing [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kb.auth.operations as auth
import kb.models  # noqa: F401
from kb import create_app
from kb.auth.models import User
from kb.extensions import db


def _former_authenticate(email: str, password: str) -> User | None:
    user = auth.find_user(email)
    return user if user is not None and user.check_password(password) else None


def _median_ms(client: Any, email: str, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.post("/connexion", data={"email": email, "password": "pas le bon"})
        times.append(time.perf_counter() - start)
        assert response.status_code == 200
    return statistics.median(times) * 1000


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                          "RATELIMIT_ENABLED": False,
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(tmp) / 'kb.sqlite3'}",
                          "KB_INDEX_DIR": str(Path(tmp) / "index")})
        with app.app_context():
            db.create_all()
            auth.create_user("connu@example.org", "une phrase de passe solide",
                             display_name="Connu")
            db.session.commit()
            client = app.test_client()
            _median_ms(client, "connu@example.org", 2)  # warm-up
            current = auth.authenticate
            for label, function in (("avant (sans hachage factice)", _former_authenticate),
                                    ("maintenant", current)):
                auth.authenticate = function  # type: ignore[assignment]
                known = _median_ms(client, "connu@example.org", rounds)
                unknown = _median_ms(client, "inconnu@example.org", rounds)
                print(f"{label:30} adresse connue {known:7.1f} ms   inconnue {unknown:7.1f} ms"
                      f"   rapport inconnue/connue {unknown / known:5.2f}")
            auth.authenticate = current


if __name__ == "__main__":
    main()
