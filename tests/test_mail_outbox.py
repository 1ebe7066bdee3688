"""The outbox (kb/mail, docs/mail.md): every mail is a row written with the change that causes
it, sent once through a real SMTP server (aiosmtpd), whatever fails on the way."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kb import mail
from kb.extensions import db
from kb.mail import outbox
from kb.mail.models import MailState, MailSuppression, OutboxMail
from kb.mail.sender import LEASE, send_due
from kb.timeutil import utcnow
from kb.transaction import commit

ROOT = Path(__file__).resolve().parent.parent


# --- a controllable SMTP server -------------------------------------------------------------

class Server:
    """A real SMTP server whose answer to RCPT the test chooses ("250", "421 …", "550 …"),
    which can block inside DATA (to kill a sender mid-batch), and that is started late (before
    that, connections are refused)."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.rcpt_answer: dict[str, str] = {}  # address -> answer; default accepts
        self.default_answer = "250 OK"
        self.block_at: int | None = None   # block the n-th DATA (1-based) until released
        self.blocked = threading.Event()
        self.release = threading.Event()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.release.set()
        if self.controller is not None:
            self.controller.stop()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: Any) -> str:
        answer = self.rcpt_answer.get(address, self.default_answer)
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.received.append(message)  # type: ignore[arg-type]
        if self.block_at is not None and len(self.received) == self.block_at:
            self.blocked.set()
            while not self.release.is_set():  # the sender waits for "250" that never comes
                await asyncio.sleep(0.01)
        return "250 OK"

    def ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.received]


@pytest.fixture
def server(app: Flask) -> Iterator[Server]:
    s = Server()
    app.config["KB_MAIL_URL"] = s.url
    yield s
    s.stop()


def queue_notices(count: int, *, transactional: bool = False, to: str = "lecteur{}@example.org",
                  kind: str = "test.notice") -> list[OutboxMail]:
    rows = [mail.queue(mail.Mail(to.format(n), f"Avis {n}", f"Corps {n}", kind=kind,
                                 transactional=transactional)) for n in range(count)]
    commit()
    return [r for r in rows if r is not None]


def rows() -> list[OutboxMail]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


# --- in the change's transaction ------------------------------------------------------------

def test_a_rolled_back_change_sends_nothing_and_a_committed_one_sends_once(app, server):
    server.start()
    mail.queue(mail.Mail("annule@example.org", "Jamais", "Jamais envoyé", transactional=True))
    db.session.rollback()
    assert rows() == [] and send_due().sent == 0
    mail.queue(mail.Mail("garde@example.org", "Toujours", "Envoyé", transactional=True))
    commit()  # transactional: tried right after the commit
    assert [m["To"] for m in server.received] == ["garde@example.org"]
    assert send_due().sent == 0 and len(server.received) == 1
    assert rows()[0].state == MailState.SENT


def test_a_mail_goes_to_one_person_and_a_dedupe_key_queues_it_once(app):
    with pytest.raises(ValueError, match="une seule personne"):
        mail.queue(mail.Mail("a@example.org, b@example.org", "Sujet", "Corps"))
    first = mail.queue(mail.Mail("a@example.org", "Lettre", "Corps", dedupe_key="letter:1:2026-12"))
    again = mail.queue(mail.Mail("a@example.org", "Lettre", "Corps", dedupe_key="letter:1:2026-12"))
    commit()
    later = mail.queue(mail.Mail("a@example.org", "Lettre", "Corps", dedupe_key="letter:1:2026-12"))
    assert first is not None and again is None and later is None and len(rows()) == 1


def test_non_transactional_mail_waits_for_the_sender(app, server):
    server.start()
    queue_notices(2)
    assert server.received == []
    assert send_due().sent == 2 and len(server.received) == 2


# --- outages ------------------------------------------------------------------------------

def test_refused_then_421_then_accepted_every_mail_arrives_exactly_once(app, server):
    queued = queue_notices(5)
    # 1. Nothing listens: the pass stops at the first failure, every row stays to send.
    run = send_due()
    assert run.connection_failed and run.sent == 0
    assert all(r.state == MailState.PENDING for r in rows())
    tried = [r for r in rows() if r.attempts]
    assert len(tried) == 1 and "injoignable" in (tried[0].last_error or "")
    assert tried[0].send_after > utcnow()  # backoff: not retried at once
    # 2. The server answers 421 (busy, closing): still temporary.
    server.start()
    server.default_answer = "421 4.3.2 Service indisponible, réessayez"
    assert "1 courriel(s)" in app.test_cli_runner().invoke(args=["mail", "retry"]).output
    run = send_due()
    assert run.connection_failed and run.sent == 0 and server.received == []
    assert max(r.attempts for r in rows()) == 2
    # 3. The server accepts: everything leaves, once.
    server.default_answer = "250 OK"
    result = app.test_cli_runner().invoke(args=["mail", "retry"])
    assert result.exit_code == 0
    assert send_due().sent == 5
    assert sorted(server.ids()) == sorted(r.message_id for r in queued)
    assert Counter(m["To"] for m in server.received) == {f"lecteur{n}@example.org": 1 for n in range(5)}
    assert send_due().sent == 0 and len(server.received) == 5


def test_temporary_failures_back_off_then_give_up_after_24_hours(app):
    app.config["KB_MAIL_URL"] = "smtp://127.0.0.1:1"  # nothing listens there
    [row] = queue_notices(1)
    start = row.created_at
    delays = []
    now = start
    while True:
        send_due(now=now)
        [row] = rows()
        if row.state != MailState.PENDING:
            break
        delays.append(row.send_after - now)
        now = row.send_after
    assert row.state == MailState.FAILED and now - start >= timedelta(hours=24)
    assert delays[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert max(delays) == timedelta(hours=2)


def test_a_5xx_bounces_and_three_bounces_suppress_only_non_transactional_mail(
        app, server, client: FlaskClient, login, make_user):
    server.start()
    person = make_user(email="partie@example.org")
    server.rcpt_answer["partie@example.org"] = "550 5.1.1 Boîte inconnue"
    for _ in range(3):
        queue_notices(1, to="partie@example.org")
        assert send_due().bounced == 1
    bounced = rows()
    assert all(r.state == MailState.BOUNCED and r.bounced_at for r in bounced)
    suppression = db.session.get(MailSuppression, "partie@example.org")
    assert suppression is not None and suppression.bounces == 3 and suppression.suppressed_at
    # The mailbox works again, but only transactional mail is sent to it until it is confirmed.
    del server.rcpt_answer["partie@example.org"]
    queue_notices(1, to="partie@example.org", kind="moderation.decision")
    run = send_due()
    assert run.suppressed == 1 and server.received == []
    status = json.loads(app.test_cli_runner().invoke(args=["mail", "status", "--json"]).output)
    assert status["suppressed"] == 1 and status["bounced"] == 3
    # "Mon compte" says so and offers to confirm the address again (a transactional mail).
    login(person)
    page = client.get("/compte").get_data(as_text=True)
    assert "ne reçoit plus nos courriels" in page
    assert client.post("/compte/renvoyer-le-lien").status_code == 302
    [link_mail] = server.received
    assert link_mail["To"] == "partie@example.org"
    body = link_mail.get_body(("plain",))
    assert body is not None
    match = re.search(r"http://kb\.test(/inscription/confirmer/\S+)", body.get_content())
    assert match is not None
    assert client.post(match.group(1)).status_code == 302  # the button of the link's page
    assert outbox.suppression("partie@example.org") is None
    queue_notices(1, to="partie@example.org", kind="moderation.decision")
    assert send_due().sent == 1


# --- several senders ------------------------------------------------------------------------

def test_two_senders_at_once_send_each_row_once(app, server):
    server.start()
    queued = queue_notices(60)
    start = threading.Barrier(2)
    runs: list[int] = []

    def sender() -> None:
        with app.app_context():
            start.wait()
            runs.append(send_due().sent)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(runs) == 60
    assert sorted(server.ids()) == sorted(r.message_id for r in queued)  # each exactly once
    assert all(r.state == MailState.SENT and r.claimed_by is None for r in rows())


def test_a_row_claimed_by_a_live_sender_is_left_alone_until_its_lease_ends(app, server):
    from kb.mail.sender import _claim

    server.start()
    queue_notices(3)
    now = utcnow()
    mine = _claim(now, "sender-a", None)
    assert len(mine) == 3 and _claim(now, "sender-b", None) == []
    assert len(_claim(now + LEASE + timedelta(seconds=1), "sender-b", None)) == 3


def _kb_env(app: Flask, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "KB_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "KB_MAIL_URL": app.config["KB_MAIL_URL"], "KB_SECRET_KEY": "test",
            "KB_INDEX_DIR": str(tmp_path / "index"), "KB_BASE_URL": "http://kb.test",
            "PYTHONPATH": str(ROOT)}


KB = [sys.executable, "-c", "from kb.console import main; main()"]


def test_a_sender_killed_mid_batch_loses_nothing_and_resends_only_with_the_same_message_id(
        app, server, tmp_path):
    server.start()
    queued = queue_notices(8)
    server.block_at = 4  # the 4th mail is received, but the sender never hears "250"
    process = subprocess.Popen([*KB, "mail", "send"], env=_kb_env(app, tmp_path), cwd=ROOT)
    try:
        assert server.blocked.wait(60), "the sender never reached the 4th mail"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    server.release.set()
    assert process.returncode == -signal.SIGKILL
    done = [r for r in rows() if r.state == MailState.SENT]
    assert len(done) == 3  # the outcome of each mail is committed as soon as it is known
    # Restarted once the dead sender's lease is over: the rest leaves.
    send_due(now=utcnow() + LEASE + timedelta(seconds=1))
    assert all(r.state == MailState.SENT for r in rows())
    assert len(set(server.ids())) == len(queued) == 8  # nothing lost
    assert len(server.received) <= 9  # at most the one in flight again, same Message-ID
    assert set(server.ids()) == {r.message_id for r in queued}


def test_the_worker_stops_cleanly_on_sigterm(app, server, tmp_path):
    server.start()
    queue_notices(2)
    process = subprocess.Popen([*KB, "mail", "send", "--loop", "--interval", "0.2"],
                               env=_kb_env(app, tmp_path), cwd=ROOT, stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        assert "toutes les 0.2 s" in process.stdout.readline()
        assert "2 envoyé(s)" in process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Arrêt demandé" in out
    assert len(server.received) == 2


# --- after the commit, SMTP down ------------------------------------------------------------

def test_smtp_down_never_fails_a_request_and_the_mail_waits_for_the_sender(
        app, client: FlaskClient, server):
    # Nothing listens yet: the registration answers normally, the link waits in the outbox.
    response = client.post("/inscription", data={
        "email": "nina@example.org", "display_name": "Nina Martin",
        "password": "mot-de-passe-solide", "confirm": "mot-de-passe-solide"})
    assert response.status_code == 302
    [row] = rows()
    assert row.kind == "account.confirm" and row.transactional and row.state == MailState.PENDING
    # The next requests of this process do not try again at once (one short timeout per minute).
    client.post("/connexion/mot-de-passe-oublie", data={"email": "inconnu@example.org"})
    assert [r.attempts for r in rows()] == [1, 0]
    server.start()
    app.test_cli_runner().invoke(args=["mail", "retry"])  # the outage is over
    assert send_due().sent == 2 and {m["To"] for m in server.received} == {
        "nina@example.org", "inconnu@example.org"}


# --- headers ------------------------------------------------------------------------------

def test_every_mail_is_auto_submitted_and_transactional_ones_carry_no_list_headers(app, server):
    server.start()
    headers = (("List-Id", "<suivis.kb.test>"), ("List-Unsubscribe", "<http://kb.test/x>"))
    mail.queue(mail.Mail("a@example.org", "Lien", "Corps", headers=headers, transactional=True))
    mail.queue(mail.Mail("b@example.org", "Lettre", "Corps", headers=headers))
    commit()
    send_due()
    by_to = {m["To"]: m for m in server.received}
    assert all(m["Auto-Submitted"] == "auto-generated" for m in server.received)
    assert by_to["a@example.org"]["List-Id"] is None
    assert by_to["a@example.org"]["List-Unsubscribe"] is None
    assert by_to["b@example.org"]["List-Unsubscribe"] == "<http://kb.test/x>"


def test_an_attachment_is_kept_in_the_row_and_reaches_the_server_byte_for_byte(app, server):
    server.start()
    invitation = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    mail.queue(mail.Mail("a@example.org", "Visite", "Corps", transactional=True,
                         attachments=(("visite.ics", "text/calendar; method=REQUEST",
                                       invitation),)))
    commit()  # sent right after the commit, from the row
    [received] = server.received
    [part] = list(received.iter_attachments())
    assert part.get_filename() == "visite.ics"
    assert part.get_content_type() == "text/calendar"
    assert part.get_param("method") == "REQUEST"
    assert part.get_payload(decode=True) == invitation


# --- status and figures ---------------------------------------------------------------------

def test_status_in_french_and_json_with_exactly_the_documented_keys(app, client, login, moderator):
    app.config["KB_MAIL_URL"] = ""
    queue_notices(2)
    two_hours_ago = utcnow() - timedelta(hours=2)
    for row in rows():
        row.created_at = two_hours_ago
    commit()
    runner = app.test_cli_runner()
    data = json.loads(runner.invoke(args=["mail", "status", "--json"]).output)
    assert set(data) == {"pending", "retrying", "bounced", "suppressed", "oldest_pending_seconds"}
    assert data["pending"] == 2 and data["retrying"] == 0 and data["oldest_pending_seconds"] >= 7200
    text = runner.invoke(args=["mail", "status"]).output
    assert "En attente : 2" in text and "EN RETARD" in text
    # The moderators' dashboard shows the same, late in words (not colour only).
    login(moderator)
    page = client.get("/moderation/tableau-de-bord").get_data(as_text=True)
    assert "Courriels en attente" in page and "Envoi en retard" in page
    # Without KB_MAIL_URL, the sender writes them to the log and marks them sent.
    assert "2 envoyé(s)" in runner.invoke(args=["mail", "send"]).output
    assert json.loads(runner.invoke(args=["mail", "status", "--json"]).output)["pending"] == 0
    page = client.get("/moderation/tableau-de-bord").get_data(as_text=True)
    assert "Envoi en retard" not in page and "Envoi à jour" in page


def test_mails_per_person_per_month_by_kind(app):
    now = utcnow()
    for _ in range(3):  # three months: a@ gets 1 letter a month, b@ 3 in the last month
        mail.queue(mail.Mail("a@example.org", "L", "C", kind="letter"))
    mail.queue(mail.Mail("b@example.org", "L", "C", kind="letter"))
    mail.queue(mail.Mail("b@example.org", "L", "C", kind="letter"))
    mail.queue(mail.Mail("b@example.org", "L", "C", kind="letter"))
    mail.queue(mail.Mail("b@example.org", "R", "C", kind="account.reset", transactional=False))
    commit()
    ages = iter([70, 40, 10, 5, 4, 3, 2])
    for row in rows():
        row.created_at = now - timedelta(days=next(ages))
    commit()
    figures = outbox.mails_per_person_per_month(months=3, now=now)
    assert figures["letter"] == (6 / 3 / 2, 3)
    assert figures["account.reset"] == (1 / 3 / 2, 1)


# --- one place talks SMTP -------------------------------------------------------------------

def test_no_module_outside_kb_mail_talks_smtp_or_builds_mime():
    offenders = []
    for path in (ROOT / "kb").rglob("*.py"):
        if path.parent.name == "mail" and path.parent.parent.name == "kb":
            continue
        source = path.read_text("utf-8")
        if re.search(r"\bsmtplib\b|\bEmailMessage\b|email\.mime|\bMIMEText\b", source):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
