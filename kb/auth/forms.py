from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length


class LoginForm(FlaskForm):
    email = EmailField("Adresse e-mail", validators=[DataRequired(), Email()])
    password = PasswordField("Mot de passe", validators=[DataRequired()])


class RegisterForm(FlaskForm):
    display_name = StringField("Nom affiché", validators=[DataRequired(), Length(max=120)],
                               description="Votre prénom et nom, ou celui de votre structure.")
    email = EmailField("Adresse e-mail", validators=[DataRequired(), Email()])
    password = PasswordField("Mot de passe", validators=[DataRequired(), Length(min=8)],
                             description="Au moins 8 caractères.")
    confirm = PasswordField("Confirmez le mot de passe",
                            validators=[DataRequired(), EqualTo("password", "Les mots de passe diffèrent.")])
