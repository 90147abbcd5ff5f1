"""Phone numbers are stored in E.164; the site's country is the default region."""

import phonenumbers


class InvalidPhone(ValueError):
    pass


def normalize_phone(raw: str, region: str = "RU") -> str:
    """Return the E.164 form of `raw`, or raise InvalidPhone."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("empty")
    if len(text) > 40:
        raise InvalidPhone("too long")
    try:
        parsed = phonenumbers.parse(text, region or "RU")
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(str(exc)) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone("not a valid number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_search_key(raw: str, region: str = "RU") -> str | None:
    """The E.164 form if `raw` is a full number; else its digits, for a suffix search."""
    try:
        return normalize_phone(raw, region)
    except InvalidPhone:
        digits = "".join(ch for ch in raw if ch.isascii() and ch.isdigit())
        return digits or None


def format_phone(e164: str) -> str:
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
