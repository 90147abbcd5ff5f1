"""Task forms: create/edit, and the comment that closes a task. The actions check everything again."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from lavka.core.forms import responsible_candidates, user_sites
from lavka.core.models import Site
from lavka.core.permissions import Role, is_admin
from lavka.tasks.actions import TaskData
from lavka.tasks.models import Task

MOMENT_FORMAT = "%Y-%m-%dT%H:%M"


def moment_field(label: Any, help_text: Any = "") -> forms.DateTimeField:
    """A date and time typed in the browser's picker, read in the current time zone."""
    return forms.DateTimeField(
        label=label,
        required=False,
        help_text=help_text,
        input_formats=[MOMENT_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(format=MOMENT_FORMAT, attrs={"type": "datetime-local"}),
    )


def performer_choices(user: Any, site: Site | None, current: Any = None) -> QuerySet:
    """Who a task may be given to: the active staff of the task's site, else of the user's sites."""
    if site is not None:
        return responsible_candidates(site, current).order_by("last_name", "first_name", "username")
    users = get_user_model().objects.filter(is_active=True)
    if not is_admin(user):
        users = users.filter(Q(sites__in=user.site_ids) | Q(role=Role.ADMIN) | Q(pk=user.pk))
    if current is not None:
        users = users | get_user_model().objects.filter(pk=current.pk)
    return users.distinct().order_by("last_name", "first_name", "username")


class TaskForm(forms.Form):
    text = forms.CharField(label=_("Title"), max_length=255)
    commentary = forms.CharField(
        label=_("Description"), max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    performer = forms.ModelChoiceField(label=_("Performer"), queryset=get_user_model().objects.none())
    due_at = moment_field(_("Due"))
    remind_at = moment_field(_("Remind at"), _("The performer gets a notice at this time."))

    def __init__(self, *args: Any, user: Any, site: Site | None, task: Task | None = None, **kwargs: Any):
        if task is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "text": task.text,
                "commentary": task.commentary,
                "performer": task.performer_id,
                "due_at": task.due_at,
                "remind_at": task.remind_at,
            }
        super().__init__(*args, **kwargs)
        self.fields["performer"].queryset = performer_choices(user, site, task.performer if task else None)
        if task is None and not self.is_bound:
            self.initial.setdefault("performer", user.pk)

    def task_data(self) -> TaskData:
        data = self.cleaned_data
        return TaskData(
            text=data["text"],
            commentary=data["commentary"],
            performer=data["performer"],
            due_at=data["due_at"],
            due_at_set=True,
            remind_at=data["remind_at"],
            remind_at_set=True,
        )


class SiteForm(forms.Form):
    """The site of a task about no order or customer (asked only when the user has several)."""

    site = forms.ModelChoiceField(label=_("Site"), queryset=Site.objects.none(), to_field_name="code")

    def __init__(self, *args: Any, user: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = user_sites(user)


class CloseForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment"),
        max_length=5000,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("What came of it")}),
    )
