"""The merge notice: one mail to each contributor of the two merged sheets, queued in the
merge's transaction (kb.mail). Never one mail to several people: no contributor sees another's
address."""

from __future__ import annotations

from collections.abc import Sequence

from kb import mail


def queue_notices(recipients: Sequence[str], subject: str, body: str) -> None:
    for address in dict.fromkeys(recipients):  # one mail per person, in order
        mail.queue(mail.Mail(address, subject, body, kind="duplicates.merge"))


def merge_notice(survivor_title: str, survivor_url: str, merged_title: str,
                 moderator: str) -> tuple[str, str]:
    subject = f"Fiches fusionnées : « {survivor_title} »"
    body = (
        "Bonjour,\n\n"
        f"Vous avez contribué à la fiche « {merged_title} » ou à la fiche « {survivor_title} ».\n"
        "Elles décrivaient la même initiative : un modérateur "
        f"({moderator}) les a réunies en une seule fiche.\n\n"
        f"La fiche commune : {survivor_url}\n"
        "L'ancienne adresse redirige vers elle et les deux historiques restent consultables.\n\n"
        "Merci pour votre contribution.\n"
    )
    return subject, body
