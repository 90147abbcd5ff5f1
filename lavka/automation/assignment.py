"""How work finds a manager (issue 4, item 7): assignment rules, the queue of unassigned orders and the
return of an absent manager's untouched work.

Who may get an order: the applicable rule's team, else its users, else the active managers of the
order's site; of them only those working now (presence "working" and inside their working hours in the
site's time zone) and below the rule's capacity. The rule's strategy picks one: in turn (round robin),
the least loaded (open orders + open tasks), or the customer's own manager (sticky).

The rule's row is locked while a turn is taken, so concurrent assignments never hand out the same
turn twice. Locks go order (with the rows `orders.actions` locks with it) first, then the rule, the
order every path here keeps. Writes go through `orders.actions.assign_manager` only.

A person's choice always wins: assignment fills empty seats only, and only assignments this machinery
made (history source "rule" or "system") are ever taken back when a manager goes absent.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.utils import timezone

from lavka.accounts.hours import DAYS
from lavka.accounts.models import User
from lavka.automation.models import AssignmentRule
from lavka.core.actor import Actor, Source
from lavka.core.models import HistoryRecord, Site
from lavka.customers.models import Customer
from lavka.orders import actions as order_actions
from lavka.orders.choices import Group
from lavka.orders.models import Order, Status
from lavka.tasks.models import Task

ENTITY = "order"
# Assignments the machinery made: only these may be taken back (a person's or a client's never are).
AUTOMATIC_SOURCES = (Source.RULE, Source.SYSTEM)
QUEUE_CHUNK = 200


# --- who is working now -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> datetime.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return datetime.UTC


def within_working_hours(hours: dict[str, Any] | None, site: Site, now: datetime.datetime) -> bool:
    """Inside `hours` ({"mon": ["09:00", "18:00"], …}) at `now`, in the site's time zone.

    No hours at all: always on duty. A day not listed is a day off. The end is exclusive.
    """
    if not hours:
        return True
    local = now.astimezone(_zone(site.time_zone))
    span = hours.get(DAYS[local.weekday()])
    try:
        start, end = (datetime.time.fromisoformat(part) for part in span)
    except (TypeError, ValueError):  # a missing day, or hours nobody could have typed in the form
        return False
    return start <= local.time() < end


def is_working_now(user: User, site: Site, now: datetime.datetime | None = None) -> bool:
    """Presence "working" and inside the working hours."""
    return user.presence == User.Presence.WORKING and within_working_hours(
        user.working_hours, site, now or timezone.now()
    )


# --- which rule ------------------------------------------------------------------------------------------


def active_rules() -> list[AssignmentRule]:
    """Enabled rules in the order they are tried, with what matching needs loaded."""
    return list(
        AssignmentRule.objects.filter(is_active=True).order_by("position", "id").prefetch_related("sites")
    )


def rule_matches(rule: AssignmentRule, order: Order) -> bool:
    """The rule's filters (empty: any) accept the order's site, type and method."""
    site_ids = {site.pk for site in rule.sites.all()}
    if site_ids and order.site_id not in site_ids:
        return False
    if rule.order_types and order.order_type.code not in rule.order_types:
        return False
    return not (rule.order_methods and order.order_method.code not in rule.order_methods)


def rule_for(order: Order, rules: Sequence[AssignmentRule] | None = None) -> AssignmentRule | None:
    """The first enabled rule (by position) whose filters match the order, else the default rule.

    The default rule is the fallback for any order: its filters are not consulted.
    """
    rules = active_rules() if rules is None else rules
    for rule in rules:
        if not rule.is_default and rule_matches(rule, order):
            return rule
    return next((rule for rule in rules if rule.is_default), None)


# --- among whom ------------------------------------------------------------------------------------------


def pool(rule: AssignmentRule, site: Site) -> list[User]:
    """Everyone the rule may give the site's orders to, working or not, ordered by id (the turn order):
    the rule's team, else its users, else the site's active managers; only those who may be responsible
    on the site (`customers.actions.check_manager`)."""
    on_site = Q(role=User.Roles.ADMIN) | Q(pk__in=site.users.values("pk"))
    active = User.objects.filter(on_site, is_active=True).order_by("pk")
    if rule.team_id:
        return list(active.filter(team_id=rule.team_id))
    chosen = list(active.filter(pk__in=rule.users.values("pk")))
    if chosen or rule.users.exists():  # chosen, though none of them may work on this site
        return chosen
    return list(active.filter(role=User.Roles.MANAGER))


def open_status_ids() -> list[int]:
    """The statuses of open orders. Queries name them by id, so that the database reads the few open
    orders through the status index instead of a manager's (or the unassigned) whole history."""
    return list(Status.objects.exclude(group__code__in=Group.CLOSED).values_list("pk", flat=True))


def open_orders(user_ids: Iterable[int]) -> dict[int, int]:
    """Open orders (status group not closed) held by each of these users."""
    rows = (
        Order.objects.filter(status_id__in=open_status_ids(), manager_id__in=list(user_ids))
        .values("manager_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["manager_id"]: row["n"] for row in rows}


def open_tasks(user_ids: Iterable[int]) -> dict[int, int]:
    rows = (
        Task.objects.filter(performer_id__in=list(user_ids), complete=False)
        .values("performer_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["performer_id"]: row["n"] for row in rows}


def candidates(
    rule: AssignmentRule, site: Site, now: datetime.datetime | None = None
) -> tuple[list[User], dict[int, int]]:
    """Who in the rule's pool may take an order now (working, below capacity), in turn order, with
    the open orders each holds (counted only when the rule needs them: capacity or least loaded)."""
    now = now or timezone.now()
    working = [u for u in pool(rule, site) if is_working_now(u, site, now)]
    if not working or (rule.max_open is None and rule.strategy != AssignmentRule.Strategy.LEAST_LOADED):
        return working, {}
    held = open_orders(u.pk for u in working)
    if rule.max_open is not None:
        working = [u for u in working if held.get(u.pk, 0) < rule.max_open]
    return working, held


# --- choosing -------------------------------------------------------------------------------------------


def _in_turn(people: Sequence[User], last_user_id: int | None) -> list[User]:
    """`people` (by id) rotated so that the one after the last to get work comes first."""
    if last_user_id is None:
        return list(people)
    split = next((i for i, u in enumerate(people) if u.pk > last_user_id), 0)
    return [*people[split:], *people[:split]]


def _customer_manager_id(order: Order) -> int | None:
    """The customer's responsible manager, else whoever had their latest earlier order."""
    manager_id = Customer.objects.filter(pk=order.customer_id).values_list("manager_id", flat=True).first()
    if manager_id:
        return manager_id
    return (
        Order.objects.filter(customer_id=order.customer_id, manager__isnull=False)
        .exclude(pk=order.pk)
        .order_by("-created_at", "-id")
        .values_list("manager_id", flat=True)
        .first()
    )


@transaction.atomic(savepoint=False)  # a failure here fails the caller's assignment anyway
def choose_manager(
    order: Order, rule: AssignmentRule | None = None, *, now: datetime.datetime | None = None
) -> User | None:
    """The manager `order` should go to now, or None (nobody is available: it waits in the queue).

    `rule`: use this one; by default the applicable rule (`rule_for`). Taking a turn moves the rule on:
    its row stays locked until the caller's transaction ends, so that a concurrent choice waits and
    then takes the next turn. To assign, call `assign_order`, which locks the order first (the lock
    order every path keeps); call this alone only inside a transaction that holds the order's lock.
    """
    rule = rule or rule_for(order)
    if rule is None:
        return None
    # Fresh from the locked row: a concurrent chooser waits here and then sees the turn we take.
    locked = AssignmentRule.objects.select_for_update(no_key=True).get(pk=rule.pk)
    people, held = candidates(locked, order.site, now)
    if not people:
        return None
    turn = _in_turn(people, locked.last_user_id)
    if locked.strategy == AssignmentRule.Strategy.STICKY:
        own = _customer_manager_id(order) if order.customer_id else None
        chosen = next((u for u in people if u.pk == own), None)
        if chosen is not None:
            return chosen  # the customer's manager is not a turn: the rotation stays as it is
        chosen = turn[0]
    elif locked.strategy == AssignmentRule.Strategy.LEAST_LOADED:
        tasks = open_tasks(u.pk for u in people)
        load = {u.pk: held.get(u.pk, 0) + tasks.get(u.pk, 0) for u in people}
        chosen = min(turn, key=lambda u: load[u.pk])  # min keeps the first of equals: turn order
    else:
        chosen = turn[0]
    AssignmentRule.objects.filter(pk=locked.pk).update(last_user=chosen)
    return chosen


# --- assigning -------------------------------------------------------------------------------------------


def _locked_order(order: Order | int) -> Order:
    # The same rows `orders.actions.assign_manager` locks, taken before the rule's row (see the module doc).
    pk = order if isinstance(order, int) else order.pk
    return (
        Order.objects.select_for_update(of=("self",), no_key=True)
        .select_related("site", "status__group", "order_type")
        .get(pk=pk)
    )


@transaction.atomic
def assign_order(
    order: Order,
    *,
    actor: Actor,
    rule: AssignmentRule | None = None,
    now: datetime.datetime | None = None,
) -> User | None:
    """Give an unassigned open order to the manager its rule chooses; that manager, or None.

    An order that has a manager keeps them (assignment fills empty seats only, so a person's choice is
    never undone) and that manager is returned; a closed order is left alone. Nobody available: the
    order stays unassigned, in the queue that `fill_queue` works through.
    """
    return _assign(order, actor=actor, rule=rule, now=now)[0]


def _assign(
    order: Order, *, actor: Actor, rule: AssignmentRule | None, now: datetime.datetime | None
) -> tuple[User | None, str]:
    """`assign_order`'s work, and what happened: "assigned", "kept" (it has a manager), "closed", or
    "nobody" (nobody is available)."""
    order = _locked_order(order)
    if order.manager_id is not None:
        return order.manager, "kept"
    if order.status.group.code in Group.CLOSED:
        return None, "closed"
    manager = choose_manager(order, rule, now=now)
    if manager is None:
        return None, "nobody"
    order_actions.assign_manager(order, manager, actor=actor)
    return manager, "assigned"


def fill_queue(*, actor: Actor, now: datetime.datetime | None = None, limit: int | None = None) -> int:
    """Assign unassigned open orders, oldest first, while someone can take them; how many were assigned.

    Each order is assigned in its own transaction (a savepoint when called inside one). Once a rule has
    nobody left for a site, the rest of that rule's orders on that site are not tried again this pass.
    """
    now = now or timezone.now()
    rules: list[AssignmentRule] | None = None  # read once there is a queue (mostly there is none)
    possible: set[tuple[int, int]] = set()
    assigned = 0
    exhausted: set[tuple[int, int]] = set()
    after: tuple[datetime.datetime, int] | None = None
    statuses = open_status_ids()
    while limit is None or assigned < limit:
        queue = (
            Order.objects.filter(status_id__in=statuses, manager__isnull=True)
            .select_related("site", "order_type", "order_method")
            .order_by("created_at", "id")
        )
        if after is not None:
            queue = queue.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], id__gt=after[1]))
        chunk = list(queue[:QUEUE_CHUNK])
        if not chunk:
            break
        if rules is None:
            rules = active_rules()
            if not rules:
                return 0
            possible = _rule_sites(rules)
        after = (chunk[-1].created_at, chunk[-1].pk)
        for order in chunk:
            rule = rule_for(order, rules)
            if rule is None or (rule.pk, order.site_id) in exhausted:
                continue
            try:
                with transaction.atomic():
                    _manager, outcome = _assign(order, actor=actor, rule=rule, now=now)
            except ValidationError:
                continue  # an order the action refuses (e.g. changed meanwhile) waits for the next pass
            if outcome == "nobody":
                exhausted.add((rule.pk, order.site_id))
                if exhausted >= possible:
                    return assigned
            elif outcome == "assigned":
                assigned += 1
                if limit is not None and assigned >= limit:
                    break
    return assigned


def _rule_sites(rules: Sequence[AssignmentRule]) -> set[tuple[int, int]]:
    """Every (rule, site) pair that could take an order: once all have nobody left, a pass is over."""
    site_ids = list(Site.objects.values_list("pk", flat=True))
    pairs = set()
    for rule in rules:
        limited = {site.pk for site in rule.sites.all()}
        pairs.update(
            (rule.pk, site_id) for site_id in site_ids if rule.is_default or not limited or site_id in limited
        )
    return pairs


# --- absence ---------------------------------------------------------------------------------------------


def untouched_orders(user: User | int, ids: Iterable[int] | None = None) -> list[int]:
    """Ids of the user's orders still in a "new"-group status that the machinery gave them and that they
    have not changed since (no history record of theirs after the assignment), oldest first.

    `ids`: look at these orders only.
    """
    user_id = user if isinstance(user, int) else user.pk
    last_assignment = HistoryRecord.objects.filter(
        entity=ENTITY, entity_id=OuterRef("pk"), field="manager"
    ).order_by("-id")
    new_statuses = Status.objects.filter(group__code=Group.NEW).values_list("pk", flat=True)
    orders = Order.objects.filter(manager_id=user_id, status_id__in=list(new_statuses))
    if ids is not None:
        orders = orders.filter(pk__in=list(ids))
    rows = (
        orders.annotate(
            assigned_id=Subquery(last_assignment.values("id")[:1]),
            assigned_source=Subquery(last_assignment.values("source")[:1]),
            assigned_to=Subquery(last_assignment.values("new_value")[:1]),
        )
        .order_by("created_at", "id")
        .values_list("pk", "assigned_id", "assigned_source", "assigned_to")
    )
    given = {
        pk: record_id
        for pk, record_id, source, to in rows
        if source in AUTOMATIC_SOURCES and to == {"id": user_id}
    }
    if not given:
        return []
    touched = dict(
        HistoryRecord.objects.filter(entity=ENTITY, entity_id__in=list(given), user_id=user_id)
        .values("entity_id")
        .annotate(last=Max("id"))
        .order_by()
        .values_list("entity_id", "last")
    )
    return [pk for pk, record_id in given.items() if touched.get(pk, 0) < record_id]


def release_untouched(user: User | int, *, actor: Actor) -> list[int]:
    """Return the user's new, untouched work to the queue (unassign it); the ids released.

    Each order is checked again under its lock, so work the manager picks up meanwhile stays theirs.
    The caller then fills the queue (`fill_queue`) to hand the work to whoever is working.
    """
    user_id = user if isinstance(user, int) else user.pk
    released = []
    for pk in untouched_orders(user_id):
        with transaction.atomic():
            order = _locked_order(pk)
            if order.manager_id != user_id or not untouched_orders(user_id, [pk]):
                continue
            order_actions.assign_manager(order, None, actor=actor)
            released.append(pk)
    return released
