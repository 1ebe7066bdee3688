"""Issue 20, item 4: the demo data never relays a test question to a real person. Every e-mail
address in fixtures/ is on a domain reserved for examples; imports of real data keep theirs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kb.extensions import db
from kb.importers import run_import
from kb.questions.operations import contact_addresses
from kb.sheets.models import published_sheets

FIXTURES = Path(__file__).parent.parent / "fixtures"
SEED = Path(__file__).parent / "data" / "bazar_seed.txt"
ADDRESS = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
# RFC 2606 / RFC 6761: example.com, .net, .org (and their subdomains) and the .test, .invalid
# and .example top-level names never reach anyone; .local (RFC 6762) is the system account's
# (kb.auth.models.SYSTEM_EMAIL), which is never mailed.
RESERVED_DOMAINS = ("example.org", "example.com", "example.net")
RESERVED_TLDS = ("test", "invalid", "example", "local")


def reserved(domain: str) -> bool:
    domain = domain.lower()
    return domain.rsplit(".", 1)[-1] in RESERVED_TLDS or any(
        domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS)


def test_every_address_in_the_demo_fixtures_is_on_a_reserved_domain() -> None:
    files = sorted(FIXTURES.glob("*.json"))
    assert files
    for path in files:
        domains = ADDRESS.findall(path.read_text(encoding="utf-8"))
        assert domains, path  # the check reads the addresses it should
        assert [d for d in domains if not reserved(d)] == [], path.name


def test_the_reserved_domain_rule() -> None:
    assert reserved("mairie-brest.example.org") and reserved("kb.test") and reserved("x.invalid")
    assert not reserved("mairie-brest.fr") and not reserved("bretagne.bzh")
    assert not reserved("example.org.evil.fr") and not reserved("notexample.org")


def test_the_demo_sheets_are_reachable_only_at_example_addresses(app: Any) -> None:
    run_import(FIXTURES / "demo.json", "json", echo=lambda _: None)
    addresses = [a for s in db.session.scalars(published_sheets()) for a in contact_addresses(s)]
    assert addresses  # the demo still shows the question form somewhere
    assert all(reserved(a.rsplit("@", 1)[1]) for a in addresses), addresses


def test_an_import_of_real_data_keeps_its_addresses(app: Any) -> None:
    run_import(SEED, "bazar-text", echo=lambda _: None)
    contacts = " ".join(str(s.approved_revision.data.get("contacts", ""))
                        for s in db.session.scalars(published_sheets()))
    assert "frederic.bergot@mairie-brest.fr" in contacts and "tilab@bretagne.bzh" in contacts
