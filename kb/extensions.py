"""Extension objects, bound to an app in create_app()."""

from __future__ import annotations

from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect, FlaskForm
from flask_wtf.csrf import CSRFError
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Named constraints so that Alembic migrations behave the same on SQLite and PostgreSQL.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Connectez-vous pour accéder à cette page."


class FrenchCSRFProtect(CSRFProtect):
    """Flask-WTF's CSRF refusals ("The CSRF token is missing.") said in French: the 400 page
    shows the reason to the person who sent the form."""

    REASONS = {
        "The CSRF token is missing.": "le formulaire n'a pas de jeton de sécurité",
        "The CSRF session token is missing.": "votre session a expiré",
        "The CSRF token has expired.": "le formulaire a expiré",
        "The CSRF token is invalid.": "le jeton de sécurité du formulaire n'est pas valide",
        "The CSRF tokens do not match.": "le formulaire a été ouvert dans une autre session",
        "The referrer header is missing.": "le formulaire n'a pas été envoyé depuis ce site",
        "The referrer does not match the host.": "le formulaire n'a pas été envoyé depuis ce site",
    }

    def _error_response(self, reason: str) -> None:
        why = self.REASONS.get(reason, "le formulaire n'a pas pu être vérifié")
        raise CSRFError(f"Formulaire refusé : {why}. Revenez en arrière, rechargez la page "
                        "puis envoyez-le de nouveau (votre texte reste dans le formulaire).")


csrf = FrenchCSRFProtect()

# Every form speaks French with WTForms' own catalogue ("Ce champ est requis."), forms of every
# domain included. Flask-WTF's translation needs Flask-Babel: it is turned off
# (WTF_I18N_ENABLED in kb/config.py) and WTForms reads the locale from the forms' Meta.
FlaskForm.Meta.locales = ("fr_FR", "fr")
