"""Who made a change. Every action takes one; history and events record it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Source:
    USER = "user"
    API = "api"
    RULE = "rule"
    SYSTEM = "system"
    IMPORT = "import"

    choices = [(USER, "user"), (API, "api"), (RULE, "rule"), (SYSTEM, "system"), (IMPORT, "import")]


@dataclass(frozen=True)
class Actor:
    source: str
    user: Any = None  # accounts.User for source=user
    ref: str = ""  # api key id, rule id … for the other sources
    name: str = ""

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls(Source.USER, user=user, ref=str(user.pk), name=user.get_username())

    @classmethod
    def for_api_key(cls, key: Any) -> Actor:
        return cls(Source.API, ref=str(key.pk), name=key.name)

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(Source.SYSTEM, name=name)

    @classmethod
    def for_rule(cls, rule: Any) -> Actor:
        """An automation rule (any object with `pk` and `name`)."""
        return cls(Source.RULE, ref=str(rule.pk), name=rule.name)

    @classmethod
    def importer(cls, name: str = "import") -> Actor:
        return cls(Source.IMPORT, name=name)

    @property
    def user_id(self) -> int | None:
        return self.user.pk if self.user is not None else None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "user_id": self.user_id, "ref": self.ref, "name": self.name}


def actor_of(request: Any) -> Actor:
    """The actor behind a web request: its logged-in user."""
    return Actor.for_user(request.user)
