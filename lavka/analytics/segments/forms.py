"""The segment builder's form: the segment's own fields, and the condition tree posted as flat fields.

Every node of the tree is posted as `node=c:<path>` (a condition) or `node=g:<path>` (a group), in
order, where the path is the node's path in the definition (`items.1.items.0`). A condition's parts
are `field@<path>`, `operator@<path>`, `value@<path>` (repeated for a list), `value2@<path>` (the upper
end of "between") and, for order history, `period@<path>` with `days@`, `from@`, `to@`; a group's is
`op@<path>` (the root's path is empty). The page renders the tree back the same way, so it works
with plain form posts; htmx only swaps the builder instead of the page.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lavka.analytics.models import Segment
from lavka.analytics.segments.compiler import GROUP_OPS, MAX_CONDITIONS, MAX_DEPTH
from lavka.analytics.segments.fields import FIELDS, NO_VALUE, OPERATOR_LABELS, Field
from lavka.core.models import Site
from lavka.core.permissions import is_admin

MAX_NODES = MAX_CONDITIONS + 20
PATH = re.compile(r"^(?:(?P<parent>.+)\.)?items\.(?P<index>\d{1,3})$")
LIST_KINDS = ("choice", "tags", "set")


class SegmentForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=255)
    code = forms.SlugField(
        label=gettext_lazy("Code"),
        max_length=64,
        required=False,
        help_text=gettext_lazy(
            'For automation rules: "code" in customer.segments. Empty: made from the name.'
        ),
    )
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    site = forms.ModelChoiceField(label=gettext_lazy("Site"), queryset=Site.objects.none(), required=False)
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        choices=Segment.Kind.choices,
        initial=Segment.Kind.DYNAMIC,
        widget=forms.RadioSelect,
        help_text=gettext_lazy(
            "Dynamic: always the customers who match now. Frozen: the customers who matched when saved."
        ),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sites = Site.objects.filter(is_active=True).order_by("ordering", "code")
        site = self.fields["site"]
        if is_admin(user):
            site.queryset = sites
            site.empty_label = _("All sites")
        else:  # a supervisor's segment belongs to one of their sites
            site.queryset = sites.filter(pk__in=user.site_ids)
            site.required = True
            site.empty_label = None
            if not self.is_bound and not self.initial.get("site"):
                self.initial["site"] = site.queryset.values_list("pk", flat=True).first()


# --- the tree as posted ----------------------------------------------------------------------------


def _parent(path: str) -> str | None:
    found = PATH.match(path)
    return None if found is None else (found["parent"] or "")


def _condition(data: QueryDict, path: str) -> dict[str, Any]:
    name = data.get(f"field@{path}", "")
    node: dict[str, Any] = {"field": name, "operator": data.get(f"operator@{path}", "")}
    f = FIELDS.get(name)
    if f is None:
        return node
    op = node["operator"]
    if op in NO_VALUE:
        pass
    elif f.kind in LIST_KINDS:
        values = [v for v in data.getlist(f"value@{path}") if v.strip()]
        if f.choices is None:  # free values typed in one box, separated by commas
            values = [part.strip() for v in values for part in v.split(",") if part.strip()]
        node["value"] = values
    elif op == "between":
        node["value"] = [data.get(f"value@{path}", ""), data.get(f"value2@{path}", "")]
    elif f.kind == "bool":
        raw = data.get(f"value@{path}", "")
        node["value"] = {"true": True, "false": False}.get(raw, raw)
    else:
        node["value"] = data.get(f"value@{path}", "")
    if f.period:
        mode = data.get(f"period@{path}", "all")
        if mode == "days":
            node["period"] = {"last_days": data.get(f"days@{path}", "")}
        elif mode == "dates":
            dates = {"from": data.get(f"from@{path}", ""), "to": data.get(f"to@{path}", "")}
            node["period"] = {k: v for k, v in dates.items() if v} or {"from": ""}
    return node


def tree_from_post(data: QueryDict) -> dict[str, Any]:
    """The definition as posted, values still raw text (checking is the compiler's)."""
    root: dict[str, Any] = {"op": data.get("op@", "and"), "items": []}
    groups = {"": root}
    seen: set[str] = set()
    for entry in data.getlist("node")[:MAX_NODES]:
        kind, _sep, path = entry.partition(":")
        parent_path = _parent(path)
        parent = groups.get(parent_path) if parent_path is not None else None
        if parent is None or path in seen:
            continue
        seen.add(path)
        if kind == "g":
            group = {"op": data.get(f"op@{path}", "and"), "items": []}
            parent["items"].append(group)
            groups[path] = group
        elif kind == "c":
            parent["items"].append(_condition(data, path))
    return root


def empty_condition() -> dict[str, Any]:
    return {"field": "", "operator": ""}


def _find(tree: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, int]:
    """The group holding the node at `path`, and its index there (the root: None)."""
    node, parent, index = tree, None, -1
    parts = path.split(".") if path else []
    if len(parts) % 2:
        return None, -1
    for name, number in zip(parts[::2], parts[1::2], strict=True):
        items = node.get("items") if isinstance(node, dict) else None
        if (
            name != "items"
            or not number.isdigit()
            or not isinstance(items, list)
            or int(number) >= len(items)
        ):
            return None, -1
        parent, index, node = node, int(number), items[int(number)]
    return parent, index


def _node(tree: dict[str, Any], path: str) -> Any:
    parent, index = _find(tree, path)
    return tree if not path else (parent["items"][index] if parent is not None else None)


def _depth(path: str) -> int:
    return path.count("items")


def apply(tree: dict[str, Any], do: str) -> dict[str, Any]:
    """One edit of the tree from a builder button: `add:<group>`, `group:<group>`, `remove:<node>`."""
    action, _sep, path = do.partition(":")
    target = _node(tree, path)
    if action in ("add", "group") and isinstance(target, dict) and "items" in target:
        if action == "add":
            target["items"].append(empty_condition())
        elif _depth(path) < MAX_DEPTH:
            op = "or" if target.get("op") == "and" else "and"
            target["items"].append({"op": op, "items": [empty_condition()]})
    elif action == "remove" and path:
        parent, index = _find(tree, path)
        if parent is not None:
            del parent["items"][index]
    return tree


def tidy(tree: dict[str, Any]) -> dict[str, Any]:
    """After the field of a condition changed: an operator it has, and no value meant for another."""
    for item in tree.get("items", []):
        if "items" in item:
            tidy(item)
            continue
        f = FIELDS.get(item.get("field", ""))
        if f is None:
            item["operator"] = ""
            item.pop("value", None)
        elif item.get("operator") not in f.operators:
            item["operator"] = f.operators[0]
            item.pop("value", None)
        if f is not None and not f.period:
            item.pop("period", None)
    if tree.get("op") not in GROUP_OPS:
        tree["op"] = "and"
    return tree


# --- the tree as shown -----------------------------------------------------------------------------


@dataclass
class NodeView:
    path: str
    group: bool
    depth: int
    op: str = "and"
    children: list[NodeView] = dataclasses.field(default_factory=list)
    field: Field | None = None
    field_name: str = ""
    operator: str = ""
    operators: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    widget: str = "none"
    value: str = ""
    value2: str = ""
    values: list[str] = dataclasses.field(default_factory=list)
    choices: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    period: str = "all"
    days: str = ""
    date_from: str = ""
    date_to: str = ""
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def can_nest(self) -> bool:
        return self.depth < MAX_DEPTH


def _widget(f: Field, op: str) -> str:
    if op in NO_VALUE or not op:
        return "none"
    if f.kind == "bool":
        return "bool"
    if f.kind in LIST_KINDS:
        return "multi" if f.choices is not None else "csv"
    if f.kind == "date":
        if op in ("in_last_days", "not_in_last_days"):
            return "days"
        return "date2" if op == "between" else "date"
    if f.kind in ("number", "amount"):
        return "number2" if op == "between" else "number"
    return "text"


def _text(value: Any) -> str:
    if value is None or isinstance(value, (list, dict)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def view_tree(tree: dict[str, Any], errors: dict[str, list[str]], site_ids: Any, path: str = "") -> NodeView:
    """What the template renders: each node with its widgets, choices and own errors."""
    node = NodeView(path=path, group=True, depth=_depth(path), op=tree.get("op", "and"))
    node.errors = errors.get(f"{path}.op" if path else "op", []) + errors.get(
        f"{path}.items" if path else "items", []
    )
    for index, item in enumerate(tree.get("items", [])):
        child_path = f"{path}.items.{index}" if path else f"items.{index}"
        if isinstance(item, dict) and "items" in item:
            node.children.append(view_tree(item, errors, site_ids, child_path))
        else:
            node.children.append(
                _view_condition(item if isinstance(item, dict) else {}, errors, site_ids, child_path)
            )
    return node


def _view_condition(item: dict[str, Any], errors: dict[str, list[str]], site_ids: Any, path: str) -> NodeView:
    node = NodeView(path=path, group=False, depth=_depth(path))
    node.field_name = str(item.get("field", ""))
    node.errors = [
        m for key, messages in errors.items() if key == path or key.startswith(path + ".") for m in messages
    ]
    f = FIELDS.get(node.field_name)
    if f is None:
        return node
    node.field = f
    node.operator = str(item.get("operator", ""))
    node.operators = [(op, str(OPERATOR_LABELS[op])) for op in f.operators]
    node.widget = _widget(f, node.operator)
    value = item.get("value")
    if isinstance(value, list):
        node.values = [str(v) for v in value]
        if node.operator == "between" and len(value) == 2:
            node.value, node.value2 = _text(value[0]), _text(value[1])
        else:
            node.value = ", ".join(node.values)
    else:
        node.value = _text(value)
    if node.widget == "multi" and f.choices is not None:
        node.choices = f.choices(site_ids)
        known = {v for v, _label in node.choices}
        node.choices += [(v, v) for v in node.values if v not in known]  # a value no longer offered
    period = item.get("period")
    if f.period and isinstance(period, dict):
        if "last_days" in period:
            node.period, node.days = "days", _text(period["last_days"])
        else:
            node.period = "dates"
            node.date_from, node.date_to = _text(period.get("from")), _text(period.get("to"))
    return node


def field_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """The field picker's options, grouped as in the catalogue."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for f in FIELDS.values():
        groups.setdefault(str(f.group), []).append((f.name, str(f.label)))
    return list(groups.items())


def check(tree: dict[str, Any]) -> dict[str, list[str]]:
    """The tree's mistakes by path (none: it can be counted and saved)."""
    from lavka.analytics.segments import compiler

    try:
        compiler.parse(tree)
    except ValidationError as exc:
        return exc.message_dict
    return {}
