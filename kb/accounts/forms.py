from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from kb.accounts.operations import TOKEN_EXPIRIES
from kb.auth.forms import confirm_password_field, email_field, new_password_field
from kb.auth.models import ROLE_LABELS
from kb.auth.passwords import MAX_LENGTH
from kb.auth.permissions import ROLE_CAPABILITIES
from kb.auth.preferences import LETTER_PERIODS, LETTER_SECTIONS, WEEKDAYS

# Several forms share the "Mon compte" page: each has a prefix so that ids never collide.


class NameForm(FlaskForm):
    display_name = StringField("Nom affiché",
                               validators=[DataRequired("Indiquez le nom à afficher."),
                                           Length(max=120)],
                               description="Il apparaît à côté de vos contributions.")


class CommuneForm(FlaskForm):
    commune = StringField("Votre commune", validators=[Length(max=120)],
                          description="Les pages des thématiques montrent d'abord ce qui la "
                                      "couvre. Son nom (Brest) ou son code INSEE ; vide pour "
                                      "l'oublier.")


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


class NotificationsForm(FlaskForm):
    # The same setting lets the questions asked about one's sheets be relayed at once.
    contributions = BooleanField("Décisions sur mes propositions et questions posées sur mes "
                                 "fiches (dès qu'elles arrivent)")
    letter_period = RadioField("Fréquence de la lettre", default="month",
                               choices=[SelectChoice(k, v) for k, v in LETTER_PERIODS.items()])
    letter_weekday = SelectField("Jour de la lettre hebdomadaire", default="2",
                                 choices=[SelectChoice(str(i), day)
                                          for i, day in enumerate(WEEKDAYS)])
    section_verifier = BooleanField(LETTER_SECTIONS["verifier"],
                                    description="Vos fiches à confirmer ou à mettre à jour.")
    section_suivis = BooleanField(LETTER_SECTIONS["suivis"],
                                  description="Les fiches nouvelles ou mises à jour de vos suivis.")
    section_questions = BooleanField(LETTER_SECTIONS["questions"],
                                     description="Les questions posées sur vos fiches qui "
                                                 "attendent encore une réponse.")
    section_moderation = BooleanField(LETTER_SECTIONS["moderation"],
                                      description="Propositions, signalements, doublons et "
                                                  "fiches en retard sans contributeur joignable.")
    section_visites = BooleanField(LETTER_SECTIONS["visites"],
                                   description="Les créneaux de visite que vous accueillez, "
                                               "remplis à 50, 80 ou 100 %.")
    nothing = BooleanField("Ne recevoir aucun courriel facultatif",
                           description="Seuls restent les messages sur votre compte lui-même "
                                       "(confirmation d'adresse, mot de passe).")


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
