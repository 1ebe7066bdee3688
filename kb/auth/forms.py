from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from kb.auth.passwords import MAX_LENGTH, MIN_LENGTH

PASSWORD_HINT = (f"Au moins {MIN_LENGTH} caractères, sans votre nom ni votre adresse. "
                 "Une phrase de quelques mots est facile à retenir et difficile à deviner.")


def email_field(label: str = "Adresse e-mail") -> EmailField:
    return EmailField(label, validators=[DataRequired("Indiquez une adresse e-mail."),
                                         Email("Cette adresse e-mail n'est pas valide."),
                                         Length(max=254)])


def new_password_field(label: str = "Mot de passe") -> PasswordField:
    # Length and content rules are checked in kb.auth.passwords, with the name and address.
    return PasswordField(label, validators=[DataRequired("Choisissez un mot de passe."),
                                            Length(max=MAX_LENGTH)],
                         description=PASSWORD_HINT)


def confirm_password_field() -> PasswordField:
    return PasswordField("Confirmez le mot de passe",
                         validators=[DataRequired("Retapez le mot de passe."),
                                     EqualTo("password", "Les mots de passe diffèrent.")])


class LoginForm(FlaskForm):
    email = email_field()
    password = PasswordField("Mot de passe", validators=[DataRequired(), Length(max=MAX_LENGTH)])


class RegisterForm(FlaskForm):
    display_name = StringField(
        "Nom affiché", validators=[DataRequired("Indiquez le nom à afficher."), Length(max=120)],
        description="Votre prénom et nom, ou celui de votre structure : il apparaît à côté de "
                    "vos contributions.")
    email = email_field()
    password = new_password_field()
    confirm = confirm_password_field()


class EmailForm(FlaskForm):
    """"Mot de passe oublié" and "Renvoyer le lien"."""

    email = email_field()


class NewPasswordForm(FlaskForm):
    password = new_password_field("Nouveau mot de passe")
    confirm = confirm_password_field()


class ButtonForm(FlaskForm):
    """A form with only its CSRF token: one-button pages (confirm an address)."""
