from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kb.auth.models import User
from kb.extensions import db
from kb.sheets.models import Revision, Sheet
from kb.timeutil import utcnow


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    HIDE_SPAM = "hide_spam"  # automatic, after K spam reports
    HIDE = "hide"
    RESTORE = "restore"
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"
    REPORT_CLOSED = "report_closed"
    BLOCK = "block"
    UNBLOCK = "unblock"
    TRUST_GRANTED = "trust_granted"
    TRUST_AUTO = "trust_auto"  # automatic, after N approved revisions
    TRUST_REVOKED = "trust_revoked"
    CONFIRM_FRESH = "confirm_fresh"
    SET_INTERVAL = "set_interval"
    ROLE_CHANGED = "role_changed"
    ACCOUNT_DELETED = "account_deleted"
    MERGE = "merge"  # duplicates: `details` name the absorbed sheet
    NOT_DUPLICATE = "not_duplicate"  # duplicates: `details` name the other sheet
    REVERT = "revert"  # a blocked account's changes undone; `details` name the fields
    FRESHNESS_RELAUNCH = "freshness_relaunch"  # freshness: the escalation starts again
    READERS_EXTENDED = "readers_extended"  # freshness: three readers' "Oui" moved the date
    SET_AVAILABILITY = "set_availability"  # kb/availability: `details` hold the new values
    MARK_DUE = "mark_due"  # freshness: an outdated-information report made the sheet due now


ACTION_LABELS = {
    Action.APPROVE: "révision approuvée",
    Action.REJECT: "révision refusée",
    Action.HIDE_SPAM: "fiche masquée après des signalements de spam",
    Action.HIDE: "fiche masquée",
    Action.RESTORE: "fiche rétablie",
    Action.ARCHIVE: "fiche archivée",
    Action.UNARCHIVE: "fiche désarchivée",
    Action.REPORT_CLOSED: "signalement traité",
    Action.BLOCK: "compte bloqué",
    Action.UNBLOCK: "compte débloqué",
    Action.TRUST_GRANTED: "confiance accordée",
    Action.TRUST_AUTO: "confiance accordée automatiquement",
    Action.TRUST_REVOKED: "confiance retirée",
    Action.CONFIRM_FRESH: "fiche confirmée à jour",
    Action.SET_INTERVAL: "fréquence de relecture modifiée",
    Action.ROLE_CHANGED: "rôle modifié",
    Action.ACCOUNT_DELETED: "compte supprimé",
    Action.MERGE: "fiches fusionnées",
    Action.NOT_DUPLICATE: "pas un doublon",
    Action.REVERT: "modifications d'un compte bloqué annulées",
    Action.FRESHNESS_RELAUNCH: "relecture relancée",
    Action.READERS_EXTENDED: "date de relecture repoussée par des lecteurs",
    Action.SET_AVAILABILITY: "disponibilité mise à jour",
    Action.MARK_DUE: "fiche à actualiser après un signalement",
}


# Reasons written by the application itself (counts, intervals), never a person's free text:
# the public history may show them. Any other reason is internal unless the moderator ticked
# "motif visible publiquement" (details["public_reason"]).
GENERATED_REASONS = frozenset({Action.HIDE_SPAM, Action.TRUST_AUTO, Action.CONFIRM_FRESH,
                               Action.SET_INTERVAL, Action.FRESHNESS_RELAUNCH,
                               Action.READERS_EXTENDED, Action.SET_AVAILABILITY})


class AuditEntry(db.Model):  # type: ignore[name-defined]
    """Who did what, when and why. Append-only; `actor_id` None means the system did it."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(30), index=True)
    sheet_id: Mapped[int | None] = mapped_column(
        ForeignKey("sheets.id", ondelete="CASCADE"), index=True)
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id", ondelete="CASCADE"))
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    target_user: Mapped[User | None] = relationship(foreign_keys=[target_user_id])
    sheet: Mapped[Sheet | None] = relationship(foreign_keys=[sheet_id])
    revision: Mapped[Revision | None] = relationship(foreign_keys=[revision_id])

    @property
    def label(self) -> str:
        try:
            return ACTION_LABELS[Action(self.action)]
        except ValueError:
            return self.action

    @property
    def actor_name(self) -> str:
        return self.actor.name if self.actor else "système"

    @property
    def reason_is_public(self) -> bool:
        return self.action in GENERATED_REASONS or bool((self.details or {}).get("public_reason"))


class ReportReason(StrEnum):
    OUTDATED = "outdated"
    DUPLICATE = "duplicate"
    SPAM = "spam"
    INAPPROPRIATE = "inappropriate"
    OTHER = "other"


REPORT_REASONS = (
    (ReportReason.OUTDATED.value, "Informations périmées"),
    (ReportReason.DUPLICATE.value, "Doublon d'une autre fiche"),
    (ReportReason.SPAM.value, "Spam ou publicité"),
    (ReportReason.INAPPROPRIATE.value, "Contenu inapproprié"),
    (ReportReason.OTHER.value, "Autre"),
)
REPORT_REASON_LABELS = dict(REPORT_REASONS)


class Report(db.Model):  # type: ignore[name-defined]
    """A reader's report about a sheet. `reporter_key` identifies distinct reporters: `u:<id>`
    for an account, `ip:<keyed hash>` for an anonymous client (the address itself is not kept)."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reporter_key: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str] = mapped_column(Text, default="")

    sheet: Mapped[Sheet] = relationship(foreign_keys=[sheet_id])
    reporter: Mapped[User | None] = relationship(foreign_keys=[reporter_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])

    @property
    def reason_label(self) -> str:
        return REPORT_REASON_LABELS.get(self.reason, self.reason)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None
