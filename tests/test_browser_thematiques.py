"""Entry by problem in a real browser (Chromium): from the home page to the mobility sheets of
one département in at most 3 clicks (issue 23). Screenshots of the home page and a thématique
page at 375 and 1280 px are written when KB_SCREENSHOTS names a directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.operations import create_user
from kb.extensions import db
from kb.sheets import operations
from kb.transaction import commit
from tests.conftest import sheet_data
from tests.test_browser import CHROMIUM, _serve
from tests.test_browser import browser as browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium absent ({CHROMIUM})")
        pytest.skip(f"Chromium absent ({CHROMIUM}) : apt-get install chromium")
    tmp = tmp_path_factory.mktemp("thematiques")
    app = create_app({
        "SECRET_KEY": "browser-thematiques", "RATELIMIT_ENABLED": False,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/kb.sqlite3", "KB_INDEX_DIR": str(tmp / "index"),
    })
    server, base = _serve(app)
    app.config["KB_BASE_URL"] = base
    with app.app_context():
        db.create_all()
        modo = create_user("modo@example.org", "mot-de-passe-solide", "moderator", "Modo")
        for title, city, department, thematiques in (
                ("Garage solidaire de Brest", "Brest", "29", ["mobilite--entretenir-reparer-son-vehicule"]),
                ("Auto-école sociale de Quimper", "Quimper", "29", ["mobilite--preparer-un-permis"]),
                ("Location de scooters à Nantes", "Nantes", "44", ["mobilite--acceder-a-un-vehicule"]),
                ("Crèche à vocation d'insertion", "Rennes", "35", ["famille--garde-denfants"])):
            operations.create_sheet(sheet_data(title=title, city=city, department=department,
                                               thematiques=thematiques, publics=["tous-publics"]),
                                    modo)
        commit()
        db.session.remove()
    yield base
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("width", [375, 1280])
def test_home_to_mobility_in_one_departement_in_three_clicks_at_most(site: str, browser: Any,
                                                                     width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(site + "/")
    page.click("ul.tiles a:has-text('Mobilité')")  # 1
    page.wait_for_url("**/thematiques/mobilite")
    page.click("section:has(#facet-department) a:has-text('Finistère (29)')")  # 2
    page.wait_for_url("**/thematiques/mobilite?department=29")
    titles = page.locator("article.card h3").all_inner_texts()
    assert sorted(titles) == ["Auto-école sociale de Quimper", "Garage solidaire de Brest"]
    context.close()


@pytest.mark.parametrize("width, on_first_screen", [(375, 14), (1280, 16)])
def test_the_sixteen_tiles_are_compact_enough_to_fill_the_first_screen(
        site: str, browser: Any, width: int, on_first_screen: int) -> None:
    """On a phone (375 px) the tiles were two screens tall: most of them now show at once."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(site + "/")
    boxes = [page.locator("ul.tiles a").nth(i).bounding_box() for i in range(16)]
    assert all(box is not None for box in boxes)
    shown = sum(1 for box in boxes if box["y"] + box["height"] <= 800)
    assert shown >= on_first_screen, [round(box["y"] + box["height"]) for box in boxes]
    # Two columns on a phone, and no tile runs into the one below it.
    if width == 375:
        assert len({round(box["x"]) for box in boxes}) == 2
    for above, below in zip(boxes, boxes[2 if width == 375 else 6:], strict=False):
        assert above["y"] + above["height"] <= below["y"] + 0.5
    context.close()


@pytest.mark.skipif(not os.environ.get("KB_SCREENSHOTS"), reason="KB_SCREENSHOTS non défini")
@pytest.mark.parametrize("width", [375, 1280])
def test_screenshots(site: str, browser: Any, width: int) -> None:
    out = Path(os.environ["KB_SCREENSHOTS"])
    out.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(site + "/connexion")
    page.fill("#email", "modo@example.org")
    page.fill("#password", "mot-de-passe-solide")
    page.click("form.narrow button[type=submit]")
    page.wait_for_url(lambda url: "/connexion" not in url)
    for name, path in (("accueil", "/"), ("thematique", "/thematiques/mobilite?pres=Brest"),
                       ("fiche", "/fiches/garage-solidaire-de-brest")):
        page.goto(site + path)
        if name == "fiche":  # the availability block and its buttons, as a contributor sees it
            page.locator("#disponibilite").screenshot(path=str(out / f"{name}-{width}.png"))
        else:
            page.screenshot(path=str(out / f"{name}-{width}.png"))
    context.close()
