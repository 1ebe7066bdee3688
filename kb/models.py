"""Imports every domain's models so that the metadata (Alembic, create_all) sees all tables."""

from kb.auth.models import AccountToken, ApiToken, User  # noqa: F401
from kb.availability.models import Availability  # noqa: F401
from kb.duplicates.models import DuplicateCandidate, DuplicateFeature, DuplicateFingerprint  # noqa: F401
from kb.follows.models import Follow, FollowDigest, FollowSettings  # noqa: F401
from kb.freshness.models import ConfirmToken, DigestLog, FreshnessState, ReaderCheck, ReviewEvent  # noqa: F401
from kb.letters.models import Letter  # noqa: F401
from kb.mail.models import MailSuppression, OutboxMail  # noqa: F401
from kb.moderation.models import AuditEntry, Report  # noqa: F401
from kb.ops.models import CommandRun  # noqa: F401
from kb.questions.models import ContactOptOut, Question  # noqa: F401
from kb.search.models import SearchDocument, SearchDocumentTag, SearchWord  # noqa: F401
from kb.sheets.models import Revision, Sheet, Tag  # noqa: F401
from kb.sheets.submissions import Submission  # noqa: F401
from kb.structures.models import Invitation, Membership, Structure  # noqa: F401
from kb.transaction import PublicationVersion  # noqa: F401
from kb.visits.models import VisitRegistration, VisitSlot  # noqa: F401
