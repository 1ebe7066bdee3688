"""The intended trust model, written down independently of the application (issue 9).

Used by tests/test_trust_properties.py. Nothing here imports the application: it holds the
markers written into texts, who wrote them, what a moderator explicitly approved, the accepted
changes that must not be lost, and one exception class per kind of violation of the rules:

- anyone sees approved revisions; an author sees their own revisions; moderators see everything;
- an anonymous reader sees only text a moderator approved through an explicit action, or text a
  trusted contributor or moderator wrote themselves;
- every accepted change stays in the approved text unless a later accepted change was made knowing
  it (based on it, or a merge that chose the other side).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

# One marker per written text. Three copies of the counter: any two markers differ by at least three
# edits, so the search's typo tolerance (two edits at most) never matches one marker for another;
# letters and digits only, ending with a digit: Markdown, slugs, the French stemmer and both search
# backends keep it whole.
MARKER = re.compile(r"zq\d{4}x\d{4}y\d{4}")


def marker(n: int) -> str:
    return f"zq{n:04d}x{n:04d}y{n:04d}"


def markers_in(value: Any) -> set[str]:
    """Markers anywhere in a text, a list or a JSON-like structure."""
    if value is None:
        return set()
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return set(MARKER.findall(text))


# --- what the test finds --------------------------------------------------------------------

class TrustViolation(AssertionError):
    """Base class. Hypothesis reports one minimal example per subclass (distinct origins)."""


class UnreviewedTextPublished(TrustViolation):
    """Invariant 1: an anonymous reader sees text nobody with the right to publish published."""


class PublishedByTrustedSave(UnreviewedTextPublished):
    """Invariant 1, issue case 1: a trusted contributor's save published someone else's text."""


class PublishedByModeratorSave(UnreviewedTextPublished):
    """Invariant 1, issue case 1: a moderator's save (not an approval) published someone else's
    unreviewed text."""


class UnreviewedTitleInSlug(TrustViolation):
    """Invariant 1, in URLs only: a slug built from a title that was never approved."""


class DraftShownInConflictAnswer(TrustViolation):
    """Invariant 2, in a 409 answer (page or API body): text of a revision the caller may not see."""


class DraftShownToOtherUser(TrustViolation):
    """Invariant 2, in any other response."""


class SearchMatchesUnreviewedText(TrustViolation):
    """Invariant 2 through search: a sheet found by words that only unreviewed text contains."""


class AcceptedChangeLost(TrustViolation):
    """Invariant 3: an approved change is neither in the approved text nor knowingly superseded."""


class AcceptedOnMergedSheet(AcceptedChangeLost):
    """Invariant 3: a change accepted on a sheet merged into another one, which readers never see
    again (its address redirects to the survivor)."""


class WriteWithoutRead(TrustViolation):
    """The same visibility rule for GET and POST: a write succeeded where the read was refused."""


class PermissionBypass(TrustViolation):
    """A moderator's action by someone who is not a moderator changed something."""


class TrustGrantedAgainstRule(TrustViolation):
    """Issue 20: an account became trusted (publishes without review) without the rule: approvals
    by moderators (one per decision, replaced proposals not counted) on at least three sheets,
    an account older than the standing period, never blocked."""


class ReplacedProposalNotSuperseded(TrustViolation):
    """Issue 20: a proposal its author replaced is not "superseded" (it must never count, nor be
    approved with the one that replaced it)."""


class ServerError(TrustViolation):
    """Any 5xx answer."""


# --- the model's records --------------------------------------------------------------------

@dataclass
class Write:
    """One create/edit/restore request that produced a revision."""

    actor: str
    sheet_id: int
    revision_id: int
    changes: dict[str, str]  # field -> marker written there (the fields this write meant to change)
    seen: dict[str, set[str]]  # field -> markers the writer started from (what it replaced)
    restore_of: int | None = None  # a restore: `seen` is the approved text it replaced
    restored: dict[str, set[str]] = field(default_factory=dict)  # field -> markers it brought back
    accepted: bool = False
    # The author's own pending proposal this one replaced (built on it): accepting this one
    # accepts that one's changes too (proposals are cumulative).
    replaces: Write | None = None


@dataclass
class Change:
    """An accepted change: `marker` written in `field` of a sheet by an accepted write."""

    sheet_id: int
    field: str
    marker: str
    write: Write
    superseded_by: str = ""  # why it may be absent from the approved text (merge decision)


@dataclass
class Ledger:
    """Who wrote which marker; which markers were explicitly approved; accepted changes."""

    owner: dict[str, str] = field(default_factory=dict)  # marker -> actor
    endorsed: set[str] = field(default_factory=set)  # markers a moderator explicitly approved
    writes: list[Write] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    counter: int = 0

    def new_marker(self, actor: str) -> str:
        self.counter += 1
        value = marker(self.counter)
        self.owner[value] = actor
        return value

    def written_by(self, actors: Iterable[str]) -> set[str]:
        wanted = set(actors)
        return {m for m, a in self.owner.items() if a in wanted}

    def accept(self, write: Write) -> None:
        if write.accepted:
            return
        write.accepted = True
        for name, value in write.changes.items():
            self.changes.append(Change(write.sheet_id, name, value, write))
        if write.replaces is not None:
            self.accept(write.replaces)

    def superseded(self, change: Change) -> bool:
        """Whether a later accepted write replaced this change knowingly (it started from it)."""
        if change.superseded_by:
            return True
        for other in self.writes:
            if other is change.write or not other.accepted or other.sheet_id != change.sheet_id:
                continue
            if other.restore_of is not None:
                # A restore replaces what the approved text was when it was made.
                if change.marker in other.seen.get(change.field, set()) \
                        and change.marker not in other.restored.get(change.field, set()):
                    return True
            elif change.field in other.changes and change.marker in other.seen.get(change.field, set()):
                return True
        return False


# --- reading responses ----------------------------------------------------------------------

class FormValues(HTMLParser):
    """The values a browser would send back from the first <form method=post> with fields."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name", "")
        if tag == "input" and name and a.get("type", "text") not in ("checkbox", "radio", "submit"):
            self.values.setdefault(name, a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea, self._buffer = name, []
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea:
            # Browsers drop the one newline that follows <textarea>.
            text = "".join(self._buffer)
            self.values.setdefault(self._textarea, text[1:] if text.startswith("\n") else text)
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._buffer.append(data)


def form_values(html: str) -> dict[str, str]:
    parser = FormValues()
    parser.feed(html)
    return parser.values
