"""Whose data a login sees: the user id made from an identity provider's claims.

An email names the user only when the provider says, with a boolean true, that it verified it, and only
when it is a plain address (one spelling per mailbox: NFKC, lower case, the domain in its ASCII form).
Otherwise the user is the provider's subject at its issuer, which can never equal the local user or an email.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping

from .errors import InvalidInput

LOCAL_USER = "local"  # whose data the app shows when login is not configured
MAX_USER_ID_CHARS = 200
MAX_LOCAL_PART_CHARS = 64
MAX_EMAIL_CHARS = 254
NO_ONE = (
    "The identity provider sent neither a verified email nor an issuer and subject, "
    "so Memory Lab cannot tell whose data to show."
)
_LOCAL_PART = re.compile(r"[^\s@\"(),:;<>\[\]\\]+")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def _printable(text: str) -> bool:
    """No control, format (zero-width, bidi), separator or lone surrogate characters."""
    return all(unicodedata.category(ch)[0] not in "CZ" for ch in text)


def normalized_email(value: object) -> str | None:
    """One spelling per mailbox, or None when the value is not a plain address."""
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    if not text or len(text) > MAX_EMAIL_CHARS or not _printable(text) or text.count("@") != 1:
        return None
    local, domain = text.split("@")
    if not local or len(local) > MAX_LOCAL_PART_CHARS or not _LOCAL_PART.fullmatch(local):
        return None
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    domain = domain.removesuffix(".")
    labels = domain.split(".")
    if len(labels) < 2 or any(not label for label in labels):
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if not all(_LABEL.fullmatch(label) and len(label) <= 63 for label in ascii_domain.split(".")):
        return None
    address = f"{local.lower()}@{ascii_domain}"
    return address if len(address) <= MAX_EMAIL_CHARS else None


def _subject_id(issuer: object, subject: object) -> str:
    """`sub:<issuer>#<subject>`, hashed when long; raises InvalidInput when either is missing or unusable."""
    if not isinstance(issuer, str) or not isinstance(subject, str) or not subject:
        raise InvalidInput(NO_ONE)
    if not re.fullmatch(r"https?://[^\s#]+", issuer) or not _printable(issuer) or not _printable(subject):
        raise InvalidInput(NO_ONE)
    try:
        subject.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(NO_ONE) from None
    user = f"sub:{issuer}#{subject}"
    if len(user) <= MAX_USER_ID_CHARS:
        return user
    return "sub:sha256:" + hashlib.sha256(user.encode("utf-8")).hexdigest()  # no "#": never a short id


def user_id_from_claims(claims: Mapping[str, object]) -> str:
    """The user id for a login: the verified email, else the subject at its issuer (never `local`)."""
    if claims.get("email_verified") is True:
        email = normalized_email(claims.get("email"))
        if email is not None and len(email) <= MAX_USER_ID_CHARS:
            return email
    return _subject_id(claims.get("iss"), claims.get("sub"))
