"""What the letters engine queued, read where `kb.mail.queue` receives it.

The one place the letters tests look at outgoing mail: when kb/mail becomes the outbox, this
fixture reads the outbox rows instead (same `Queued` list of `Mail`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kb import mail


class Queued(list[mail.Mail]):
    def letters(self, to: str | None = None) -> list[mail.Mail]:
        return [m for m in self if m.kind == "letter" and (to is None or m.to == to)]


@pytest.fixture(name="queued")
def queued_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Queued]:
    seen = Queued()
    real = mail.queue

    def record(message: mail.Mail) -> None:
        seen.append(message)
        real(message)

    monkeypatch.setattr(mail, "queue", record)
    yield seen
