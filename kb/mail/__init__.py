"""All outgoing mail (docs/mail.md): a change queues its mails in its own transaction
(`queue`: a row of the `outbox` table), and a sender (`kb mail send`, or right after the commit
for transactional mails) sends them over SMTP from KB_MAIL_URL, or writes them to the log.
French text; a plain-text body, and an HTML alternative when the mail has one (`render()`
builds both from `<name>.txt` and `<name>.html`). No tracking: no images, no remote
resources, links are plain links to KB_BASE_URL. No other module talks SMTP or builds MIME
(tests/test_mail_outbox.py checks it)."""

from sqlalchemy import event
from sqlalchemy.orm import Session

from kb.mail.message import Mail, MailError, render
from kb.mail.outbox import _after_commit, _after_rollback, queue

__all__ = ["Mail", "MailError", "queue", "render"]

event.listen(Session, "after_commit", _after_commit)
event.listen(Session, "after_rollback", _after_rollback)
