"""Issue 25, "A moderator's morning": one queue row per sheet and author, counts on the links,
the review of a new sheet in words, "À actualiser" on an outdated-information report."""

from __future__ import annotations

import re

from kb.extensions import db
from kb.sheets import operations
from kb.sheets.models import Revision, RevisionStatus
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.conftest import sheet_data


def test_the_queue_lists_one_row_per_sheet_and_author_with_counts_on_links_and_tabs(
        client, login, contributor, moderator, make_user):
    first = operations.create_sheet(sheet_data(title="Garde itinérante"), contributor)
    commit()
    # Two proposals of one author left pending side by side (saved before replaced proposals
    # were marked): one row, the latest.
    second = Revision(sheet=first.sheet, author=contributor, data={**first.data, "results": "v2"},
                      base_revision_id=first.id, created_at=utcnow(),
                      status=RevisionStatus.PENDING.value)
    db.session.add(second)
    other = operations.create_sheet(sheet_data(title="Permis solidaire"), make_user())
    commit()
    login(moderator)
    html = client.get("/moderation").get_data(as_text=True)
    assert html.count("Garde itinérante") == 1
    assert f"/moderation/revisions/{second.id}" in html
    assert f"/moderation/revisions/{first.id}\"" not in html
    assert f"/moderation/revisions/{other.id}" in html
    assert "2 révisions en attente" in html
    link = re.search(r'<a href="/moderation">Modération(.*?)</a>', html, re.S)
    assert link and re.search(r">2<", link.group(1))
    tab = re.search(r'File de relecture <span class="count-pill">(\d+)', html)
    assert tab and tab.group(1) == "2"
    assert re.search(r'Doublons <span class="count-pill">0', html)
    dashboard = client.get("/moderation/tableau-de-bord").get_data(as_text=True)
    assert "paire" in dashboard and 'href="/moderation/doublons"' in dashboard
