from __future__ import annotations

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from kb.accounts.operations import TOKEN_EXPIRIES
from kb.auth.forms import confirm_password_field, email_field, new_password_field
from kb.auth.models import ROLE_LABELS
from kb.auth.passwords import MAX_LENGTH
from kb.auth.permissions import ROLE_CAPABILITIES
from kb.auth.preferences import REMINDER_PERIODS

# Several forms share the "Mon compte" page: each has a prefix so that ids never collide.


class NameForm(FlaskForm):
    display_name = StringField("Nom affiché",
                               validators=[DataRequired("Indiquez le nom à afficher."),
                                           Length(max=120)],
                               description="Il apparaît à côté de vos contributions.")


class EmailChangeForm(FlaskForm):
    new_email = email_field("Nouvelle adresse e-mail")
    password = PasswordField("Mot de passe actuel",
                             validators=[DataRequired("Indiquez votre mot de passe."),
                                         Length(max=MAX_LENGTH)])


class PasswordChangeForm(FlaskForm):
    current = PasswordField("Mot de passe actuel",
                            validators=[DataRequired("Indiquez votre mot de passe actuel."),
                                        Length(max=MAX_LENGTH)])
    password = new_password_field("Nouveau mot de passe")
    confirm = confirm_password_field()
    revoke_tokens = BooleanField("Révoquer aussi tous mes jetons d'API",
                                 description="Les outils qui les utilisent recevront une erreur "
                                             "401 : à cocher si vous craignez qu'un jeton ou "
                                             "votre mot de passe ait été copié.")


def _period_label(days: int) -> str:
    return {7: "chaque semaine", 14: "toutes les deux semaines", 30: "chaque mois",
            60: "tous les deux mois", 90: "chaque trimestre",
            180: "tous les six mois"}.get(days, f"tous les {days} jours")


class NotificationsForm(FlaskForm):
    contributions = BooleanField("Décisions sur mes propositions et signalements de mes fiches")
    reminder = SelectField("Rappel des fiches à relire", choices=[])
    moderator_digest = BooleanField("Résumé quotidien du travail de modération en attente")
    nothing = BooleanField("Ne recevoir aucun courriel facultatif",
                           description="Seuls restent les messages sur votre compte lui-même "
                                       "(confirmation d'adresse, mot de passe).")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        default = int(current_app.config["KB_REMINDER_PERIOD_DAYS"])
        self.reminder.choices = [SelectChoice("", f"par défaut ({_period_label(default)})")] + [
            SelectChoice(str(days), _period_label(days)) for days in REMINDER_PERIODS] + [
            SelectChoice("0", "jamais")]


class TokenForm(FlaskForm):
    name = StringField("Nom du jeton", validators=[DataRequired("Donnez un nom au jeton."),
                                                   Length(max=100)],
                       description="L'outil ou le site qui l'utilisera, pour le reconnaître.")
    expires = SelectField("Expire dans",
                          choices=[SelectChoice(str(d), f"{d} jours") for d in TOKEN_EXPIRIES],
                          default="90")


class DeleteForm(FlaskForm):
    password = PasswordField("Mot de passe actuel",
                             validators=[DataRequired("Indiquez votre mot de passe."),
                                         Length(max=MAX_LENGTH)])
    understood = BooleanField("J'ai compris : mon nom, mon adresse et mes jetons seront effacés ; "
                              "mes contributions resteront, signées « ancien contributeur ».",
                              validators=[DataRequired("Cochez la case pour confirmer.")])


class RoleForm(FlaskForm):
    role = SelectField("Rôle",
                       choices=[SelectChoice(r, ROLE_LABELS.get(r, r)) for r in ROLE_CAPABILITIES])
    reason = StringField("Motif", validators=[Length(max=2000)])
