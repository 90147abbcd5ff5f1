"""API v5: users (§2.7) — Lavka's staff, their role and presence in retailCRM's words."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from lavka.accounts.actions import set_presence
from lavka.accounts.models import User
from lavka.core.permissions import Role
from lavka.integrations.api_v5 import formats
from lavka.integrations.api_v5.endpoints.tasks import (
    datetime_range,
    filter_bool,
    filter_strings,
    filter_text,
    path_id,
)
from lavka.integrations.api_v5.errors import AccessDenied, InvalidParameters, MissingParameter, NotFound
from lavka.integrations.api_v5.request import ApiRequest, pagination
from lavka.integrations.api_v5.router import api

# retailCRM has four statuses and Lavka three presences: dinner and break are both "absent",
# and "absent" reads back as "break".
STATUS_TO_PRESENCE = {
    "free": User.Presence.WORKING,
    "busy": User.Presence.BUSY,
    "dinner": User.Presence.ABSENT,
    "break": User.Presence.ABSENT,
}
PRESENCE_TO_STATUS = {
    User.Presence.WORKING: "free",
    User.Presence.BUSY: "busy",
    User.Presence.ABSENT: "break",
}
MANAGER_ROLES = (Role.MANAGER, Role.SUPERVISOR)
ADMIN_Q = Q(role=Role.ADMIN) | Q(is_superuser=True)
# Lavka keeps no live sessions: an active user who has not stepped away counts as online.
ONLINE_Q = Q(is_active=True) & ~Q(presence=User.Presence.ABSENT)


def is_online(user: User) -> bool:
    return user.is_active and user.presence != User.Presence.ABSENT


def user_json(user: User) -> dict[str, Any]:
    """A user as §2.7 shows it; the role is the user's one group."""
    return formats.compact(
        {
            "id": user.pk,
            "createdAt": formats.dt(user.date_joined),
            "active": user.is_active,
            "email": user.email,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "patronymic": user.patronymic,
            "position": str(user.get_role_display()),
            "phone": user.phone,
            "status": PRESENCE_TO_STATUS.get(user.presence, "free"),
            "online": is_online(user),
            "isAdmin": user.is_superuser or user.role == Role.ADMIN,
            "isManager": user.role in MANAGER_ROLES,
            "groups": [{"code": user.role, "name": str(user.get_role_display())}],
        }
    )


def _users(req: ApiRequest) -> QuerySet:
    """Users a key may see: admins (they work on every site) and the staff of the key's sites."""
    users = User.objects.all()
    codes = req.key.site_codes
    if codes is not None:
        users = users.filter(ADMIN_Q | Q(pk__in=User.objects.filter(sites__code__in=codes).values("pk")))
    return users


def _user(req: ApiRequest, id: str) -> User:
    user = User.objects.filter(pk=path_id(id)).first()
    if user is None:
        raise NotFound()
    if not _users(req).filter(pk=user.pk).exists():
        raise AccessDenied()
    return user


@api("GET", "users", scope="user_read", query=("filter", "limit", "page"))
def user_list(req: ApiRequest) -> dict[str, Any]:
    """Users (managers), by id."""
    flt = req.filter
    qs = _users(req).order_by("id")
    if email := filter_text(flt, "email"):
        qs = qs.filter(email__iexact=email[:254])
    status = filter_text(flt, "status")
    if status and status not in STATUS_TO_PRESENCE:
        raise InvalidParameters("status")
    if status:
        qs = qs.filter(presence=STATUS_TO_PRESENCE[status])
    flags = {
        "online": ONLINE_Q,
        "active": Q(is_active=True),
        "isManager": Q(role__in=MANAGER_ROLES),
        "isAdmin": ADMIN_Q,
    }
    for name, q in flags.items():
        value = filter_bool(flt, name)
        if value is not None:
            qs = qs.filter(q) if value else qs.exclude(q)
    if groups := filter_strings(flt, "groups"):
        qs = qs.filter(role__in=groups)
    qs = datetime_range(qs, flt, "date_joined", "createdAtFrom", "createdAtTo")
    rows, pagination = req.paginate(qs)
    return {"pagination": pagination, "users": [user_json(u) for u in rows]}


@api("GET", "users/{id}", scope="user_read")
def user_get(req: ApiRequest, id: str) -> dict[str, Any]:
    """A user by id."""
    return {"user": user_json(_user(req, id))}


@api("POST", "users/{id}/status", scope="user_write", query=("status",))
def user_status(req: ApiRequest, id: str) -> dict[str, Any]:
    """Set a user's status: free, busy, dinner or break."""
    user = _user(req, id)
    status = req.text("status")
    if not status:
        raise MissingParameter("status")
    if status not in STATUS_TO_PRESENCE:
        raise InvalidParameters("status", "Allowed values are free, busy, dinner and break.")
    set_presence(user, STATUS_TO_PRESENCE[status], actor=req.actor)
    return {}


@api("GET", "user-groups", scope="user_read", query=("limit", "page"))
def user_groups(req: ApiRequest) -> dict[str, Any]:
    """User groups: Lavka's roles, the `groups[].code` a user carries."""
    limit, page = req.limit_page()
    roles = list(User.Roles.choices)
    rows = [
        {"code": code, "name": str(name), "isManager": code in MANAGER_ROLES, "isDeliveryMen": False}
        for code, name in roles[(page - 1) * limit : page * limit]
    ]
    return {"groups": rows, "pagination": pagination(limit, page, len(roles))}
