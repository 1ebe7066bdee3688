"""Structures (issue 24): the employers and collectives whose agents write and keep sheets.

A structure has members; a sheet names the structure that carries it (`Sheet.structure_id`,
declared in the sheets domain, which never imports this one). Joining and leaving keep their
row: how a member joined (`joined_via`) counts for verification, and a left member simply drops
out of the sheets' teams.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from slugify import slugify
from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kb.auth.models import User
from kb.extensions import db
from kb.timeutil import utcnow


class MemberRole(StrEnum):
    MEMBER = "membre"
    ADMIN = "administrateur"


# What a membership role allows, in one table (like kb/auth/permissions.py for accounts): an
# administrator invites and accepts requests; a member is in the team and may publish.
MANAGES_STRUCTURE: dict[str, bool] = {MemberRole.MEMBER: False, MemberRole.ADMIN: True}


class MemberState(StrEnum):
    REQUESTED = "demande"  # asked to join; an administrator or a moderator decides
    ACTIVE = "actif"
    LEFT = "parti"  # left, or a refused request: the row stays, the person is no member


class JoinedVia(StrEnum):
    CREATION = "creation"  # created the structure (moderator form, import)
    INVITATION = "invitation"  # opened an administrator's signed link
    REQUEST = "demande"  # asked, then accepted by an administrator or a moderator
    PROCONNECT = "proconnect"  # signed in through ProConnect with the structure's SIRET
    MODERATOR = "moderation"  # added by a moderator


class Structure(db.Model):  # type: ignore[name-defined]
    __tablename__ = "structures"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # 14 digits with a valid check digit (stdnum), or None for an informal collective. Unique:
    # two structures with one SIRET cannot exist (the database refuses it too).
    siret: Mapped[str | None] = mapped_column(String(14), unique=True)
    # One of kb.sheets.fields.ACTOR_TYPES, or "".
    type: Mapped[str] = mapped_column(String(30), default="")
    # data·inclusion's `reseaux_porteurs` values (data_inclusion.schema.v1.ReseauPorteur).
    networks: Mapped[list[str]] = mapped_column(JSON, default=list)
    # INSEE code of the commune (kb/territories register), or "".
    commune_code: Mapped[str] = mapped_column(String(5), default="", index=True)
    website: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Verified structures' members publish their own changes to its sheets without review.
    verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    # "moderation" or "proconnect" (two members signed in with its SIRET).
    verified_how: Mapped[str] = mapped_column(String(20), default="")

    members: Mapped[list[Membership]] = relationship(
        back_populates="structure", cascade="all, delete-orphan", order_by="Membership.id")

    @property
    def slug(self) -> str:
        return slugify(self.name, max_length=80) or "structure"

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    def active_members(self) -> list[Membership]:
        return [m for m in self.members if m.is_active]

    def public_data(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "siret": self.siret}


class Membership(db.Model):  # type: ignore[name-defined]
    __tablename__ = "structure_members"
    __table_args__ = (UniqueConstraint("structure_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[int] = mapped_column(
        ForeignKey("structures.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default=MemberRole.MEMBER.value)
    state: Mapped[str] = mapped_column(String(20), default=MemberState.ACTIVE.value)
    joined_via: Mapped[str] = mapped_column(String(20), default=JoinedVia.REQUEST.value)
    # The member chooses whether the structure's page shows their public name.
    shown: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    left_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Last sign-in through ProConnect with the structure's SIRET: two active members with one
    # verify the structure (kb.structures.operations.on_oidc_signed_in).
    proconnect_at: Mapped[datetime | None] = mapped_column(DateTime)

    structure: Mapped[Structure] = relationship(back_populates="members")
    user: Mapped[User] = relationship()

    @property
    def is_active(self) -> bool:
        return self.state == MemberState.ACTIVE

    @property
    def administers(self) -> bool:
        return self.is_active and MANAGES_STRUCTURE.get(self.role, False)


class Invitation(db.Model):  # type: ignore[name-defined]
    """The stored half of an invitation link: single use and bounded in time; only a hash of the
    nonce is kept (like kb.auth.models.AccountToken)."""

    __tablename__ = "structure_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    structure_id: Mapped[int] = mapped_column(
        ForeignKey("structures.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    structure: Mapped[Structure] = relationship()
