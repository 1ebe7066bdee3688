"""An edit of a sheet that was merged into another one must be refused, not silently kept.

Found by tests/test_trust_properties.py (AcceptedOnMergedSheet). After a merge, the absorbed
sheet's page and API object redirect to the survivor, but `PATCH /api/v1/sheets/<absorbed>` and
`POST /fiches/<absorbed>/modifier` answered "saved" (200 "approved" for a trusted contributor):
the change landed on a sheet no reader ever sees again. Now: a 409 in French that names the
survivor (kb.sheets.operations.edit_sheet), and no revision written.
"""

from __future__ import annotations

from sqlalchemy import func, select

from kb.duplicates import operations as dup_ops
from kb.extensions import db
from kb.sheets.models import Revision
from kb.transaction import commit


def test_edit_of_a_merged_sheet_is_refused(client, make_sheet, moderator, make_user,
                                           bearer) -> None:
    survivor = make_sheet(title="Accueil en mairie de Brest").sheet
    absorbed = make_sheet(title="Accueil à la mairie de Brest").sheet
    dup_ops.merge(survivor, absorbed, {}, moderator)
    commit()
    slug, base = absorbed.slug, absorbed.approved_revision_id
    before = db.session.scalar(select(func.count(Revision.id)))

    trusted = make_user("contributor", trusted=True)
    answer = client.patch(f"/api/v1/sheets/{slug}", headers=bearer(trusted),
                          json={"summary": "Un ajout important", "base_revision": base})

    assert 400 <= answer.status_code < 500
    assert survivor.slug in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Revision.id))) == before
