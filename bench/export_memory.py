"""Exports stream in constant memory: peak Python memory while reading /donnees/fiches.* for
N and 10×N published sheets, as a ratio against the N run (≈1 means flat; the body grows 10×).

    .venv/bin/python -m bench.export_memory [N]
"""

from __future__ import annotations

import sys
import tempfile
import tracemalloc
from pathlib import Path

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.operations import create_user
from kb.extensions import db
from kb.sheets import operations
from kb.transaction import commit


def _app(directory: Path, count: int):  # type: ignore[no-untyped-def]
    app = create_app({"SECRET_KEY": "bench", "KB_BASE_URL": "http://kb.test",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory / 'kb.sqlite3'}",
                      "KB_INDEX_DIR": str(directory / "index")})
    with app.app_context():
        db.create_all()
        author = create_user("bench@example.org", "mot-de-passe-solide", "moderator", "Bench")
        for n in range(count):
            operations.create_sheet({
                "title": f"Initiative {n}", "summary": "Un résumé de deux phrases. " * 4,
                "context": "Contexte détaillé de l'initiative. " * 60,
                "method": "- Une étape\n" * 40, "city": "Brest", "department": "29",
                "scale": "commune", "tags": ["accueil", f"theme {n % 50}"],
            }, author, slug=f"initiative-{n}")
            if n % 500 == 499:
                commit()
        commit()
    return app


def _peak(app, url: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.get(url)  # warm-up: one-time costs (compiled SQL, templates) are not the export's
    tracemalloc.start()
    tracemalloc.reset_peak()
    response = client.get(url, buffered=False)
    size = 0
    for chunk in response.response:
        size += len(chunk)
    response.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, size


def main() -> None:
    base = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    results: dict[int, dict[str, tuple[int, int]]] = {}
    for count in (base, base * 10):
        with tempfile.TemporaryDirectory() as tmp:
            app = _app(Path(tmp), count)
            with app.app_context():
                results[count] = {fmt: _peak(app, f"/donnees/fiches.{fmt}")
                                  for fmt in ("csv", "json", "jsonl")}
                db.engine.dispose()
    small, large = results[base], results[base * 10]
    print(f"sheets: {base} vs {base * 10}")
    for fmt in ("csv", "json", "jsonl"):
        (peak_s, size_s), (peak_l, size_l) = small[fmt], large[fmt]
        print(f"{fmt:5} body ×{size_l / size_s:4.1f}   peak memory ×{peak_l / peak_s:4.2f}"
              f"   ({peak_s / 1e6:.1f} MB → {peak_l / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
