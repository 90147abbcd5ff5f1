"""Per-object scope: the one place that decides which rows a user may see (DESIGN.md §12).

Every list, card, edit, search and export filters through `scope_q`, usually via a model's
`QuerySet.visible_to(user)`. A row outside the scope is answered with 404, never 403, so its existence
does not leak.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q


class Role:
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    OPERATOR = "operator"


def is_admin(user: Any) -> bool:
    return bool(user.is_superuser or getattr(user, "role", None) == Role.ADMIN)


def scope_q(
    user: Any, *, manager_field: str = "manager", site_field: str = "site", creator_field: str | None = None
) -> Q:
    """Rows `user` may see.

    admin: everything. supervisor: everything in their sites. manager: rows they are responsible for,
    plus the unassigned queue of their sites. operator: the unassigned queue of their sites, plus rows
    they created themselves.
    """
    if not user or not user.is_authenticated or not user.is_active:
        return Q(pk__in=[])
    if is_admin(user):
        return Q()
    sites = Q(**{f"{site_field}__in": user.site_ids})
    unassigned = sites & Q(**{f"{manager_field}__isnull": True})
    if user.role == Role.SUPERVISOR:
        return sites
    if user.role == Role.MANAGER:
        return Q(**{manager_field: user.pk}) | unassigned
    if user.role == Role.OPERATOR:
        own = Q(**{creator_field: user.pk}) if creator_field else Q(pk__in=[])
        return unassigned | own
    return Q(pk__in=[])


def can_manage_settings(user: Any) -> bool:
    return is_admin(user)


def sees_all_in_sites(user: Any) -> bool:
    return is_admin(user) or getattr(user, "role", None) == Role.SUPERVISOR
