"""Calendar files (RFC 5545, with the `icalendar` library): the invitation of a registration
(METHOD:REQUEST, or METHOD:CANCEL) and a person's private feed (METHOD:PUBLISH).

One UID per registration for its whole life and a SEQUENCE that grows on each change: Zimbra,
Outlook and Thunderbird then update (or remove) the same event instead of adding another."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parseaddr

from flask import current_app
from icalendar import Calendar, Event, vCalAddress, vText

from kb.timeutil import utcnow
from kb.visits.models import RegistrationStatus, VisitRegistration

PRODID = "-//Fiches initiatives//Visites apprenantes//FR"
REQUEST = "REQUEST"
CANCEL = "CANCEL"
PUBLISH = "PUBLISH"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _event(registration: VisitRegistration, cancelled: bool) -> Event:
    slot = registration.slot
    base_url = current_app.config["KB_BASE_URL"]
    event = Event()
    event.add("uid", registration.uid)
    event.add("sequence", registration.sequence)
    event.add("dtstamp", _utc(utcnow()))
    event.add("dtstart", _utc(slot.starts_at))
    event.add("dtend", _utc(slot.ends_at))
    event.add("summary", f"{slot.format_label} : {slot.sheet.title}")
    event.add("location", slot.place)
    lines = [f"Accueil : {slot.host_name}" + (f", {slot.host_phone}" if slot.host_phone else "")]
    if slot.bring:
        lines.append(f"À prévoir : {slot.bring}")
    if slot.accessibility:
        lines.append(f"Accessibilité : {slot.accessibility}")
    lines.append(f"La fiche : {base_url}/fiches/{slot.sheet.slug}")
    event.add("description", "\n".join(lines))
    event.add("url", f"{base_url}/fiches/{slot.sheet.slug}")
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    name, address = parseaddr(current_app.config["KB_MAIL_FROM"])
    organizer = vCalAddress(f"mailto:{address}")
    organizer.params["cn"] = vText(name or "Fiches initiatives")
    event["organizer"] = organizer
    attendee = vCalAddress(f"mailto:{registration.user.email}")
    attendee.params["cn"] = vText(registration.user.name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("ACCEPTED")
    event.add("attendee", attendee)
    return event


def _calendar(method: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    return calendar


def invitation(registration: VisitRegistration, method: str) -> bytes:
    """The .ics sent with a mail: the event as it is now (REQUEST), or its removal (CANCEL)."""
    calendar = _calendar(method)
    calendar.add_component(_event(registration, cancelled=method == CANCEL))
    return calendar.to_ical()


def attachment(registration: VisitRegistration, method: str) -> tuple[str, str, bytes]:
    return ("visite.ics", f"text/calendar; method={method}", invitation(registration, method))


def feed(registrations: Iterable[VisitRegistration], name: str) -> bytes:
    """A person's visits: registered ones, and cancelled ones as CANCELLED (so that a calendar
    that had them removes them)."""
    calendar = _calendar(PUBLISH)
    calendar.add("x-wr-calname", name)
    for registration in registrations:
        if registration.status == RegistrationStatus.WAITLISTED:
            continue
        calendar.add_component(_event(
            registration, cancelled=registration.status == RegistrationStatus.CANCELLED
            or registration.slot.status == "cancelled"))
    return calendar.to_ical()
