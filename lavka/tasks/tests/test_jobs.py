"""The periodic sweeps: a reminder, an overdue report and an escalation each happen once per task, also
when the sweep runs again, runs in a new worker, or failed half-way; the reminder's e-mail goes through a
real SMTP server once."""

import datetime

import pytest
from django.utils import timezone

from lavka.accounts.models import Team
from lavka.core import jobs as core_jobs
from lavka.core.actor import Actor
from lavka.core.models import Job, OutboxEvent
from lavka.tasks import actions, jobs
from lavka.tasks.actions import TaskData, complete_task, create_task, update_task
from lavka.tasks.models import Notification, Task

SYSTEM = Actor.system("tests")


def minutes(n: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(minutes=n)


def new_task(shop, performer=None, **fields) -> Task:
    data = TaskData(text="Перезвонить", performer=performer or shop.alice)
    for name, value in fields.items():
        setattr(data, name, value)
        setattr(data, f"{name}_set", True)
    return create_task(data, actor=SYSTEM, site=shop.site)


def events(kind: str) -> list[dict]:
    return [e.payload for e in OutboxEvent.objects.filter(type=kind).order_by("id")]


def sweep() -> tuple[int, int, int]:
    return jobs.send_reminders(), jobs.mark_overdue(), jobs.escalate_overdue()


def test_the_sweeps_are_periodic_jobs():
    names = set(core_jobs.periodic_jobs)
    assert {
        "lavka.tasks.jobs.send_reminders",
        "lavka.tasks.jobs.mark_overdue",
        "lavka.tasks.jobs.escalate_overdue",
    } <= names


def test_a_reminder_once(shop):
    due = new_task(shop, remind_at=minutes(-1))
    new_task(shop, remind_at=minutes(30))  # not yet
    done = new_task(shop, remind_at=minutes(-5))
    complete_task(done, actor=SYSTEM)

    assert jobs.send_reminders() == 1
    assert jobs.send_reminders() == 0
    note = Notification.objects.get()
    assert (note.user, note.task, note.kind) == (shop.alice, due, Notification.Kind.REMINDER)
    assert [e["task_id"] for e in events("tasks.reminded")] == [due.pk]
    assert Task.objects.get(pk=due.pk).reminded_at is not None
    assert not Job.objects.exists()  # e-mail is off by default


def test_a_moved_reminder_reminds_again(shop):
    task = new_task(shop, remind_at=minutes(-1))
    jobs.send_reminders()
    update_task(task, TaskData(remind_at=minutes(-0.5), remind_at_set=True), actor=SYSTEM)
    assert jobs.send_reminders() == 1
    assert Notification.objects.filter(kind="reminder").count() == 2


def test_overdue_once_and_a_notice_for_the_performer(shop):
    late = new_task(shop, due_at=minutes(-1))
    new_task(shop, due_at=minutes(10))
    new_task(shop)  # no due time, never overdue

    assert sweep() == (0, 1, 0)
    assert sweep() == (0, 0, 0)
    [payload] = events("tasks.overdue")
    assert payload["task_id"] == late.pk and payload["performer_id"] == shop.alice.pk
    assert Notification.objects.get().kind == Notification.Kind.OVERDUE
    late.refresh_from_db()
    assert late.is_overdue and late.overdue_at is not None


def test_escalation_to_the_team_supervisor_once(shop, settings):
    settings.LAVKA_TASK_ESCALATION_MINUTES = 60
    team = Team.objects.create(name="Продажи", supervisor=shop.supervisor)
    shop.alice.team = team
    shop.alice.save()
    task = new_task(shop, due_at=minutes(-61))
    recent = new_task(shop, due_at=minutes(-30))

    assert sweep() == (0, 2, 1)
    assert sweep() == (0, 0, 0)
    [payload] = events("tasks.escalated")
    assert payload["task_id"] == task.pk and payload["supervisor_id"] == shop.supervisor.pk
    note = Notification.objects.get(kind=Notification.Kind.ESCALATION)
    assert note.user == shop.supervisor and note.task == task
    # A shorter delay escalates the other one too, still once each.
    settings.LAVKA_TASK_ESCALATION_MINUTES = 10
    assert jobs.escalate_overdue() == 1 and jobs.escalate_overdue() == 0
    assert [e["task_id"] for e in events("tasks.escalated")] == [task.pk, recent.pk]


def test_without_a_team_the_sites_supervisor_hears_of_it(shop, settings):
    settings.LAVKA_TASK_ESCALATION_MINUTES = 0
    new_task(shop, due_at=minutes(-1))
    sweep()
    assert Notification.objects.get(kind="escalation").user == shop.supervisor
    # Nobody above a supervisor on their own site: the event still says so, once.
    new_task(shop, performer=shop.supervisor, due_at=minutes(-1))
    sweep()
    assert events("tasks.escalated")[-1]["supervisor_id"] is None
    assert Notification.objects.filter(kind="escalation").count() == 1


def test_a_closed_task_is_neither_reminded_nor_overdue(shop, settings):
    settings.LAVKA_TASK_ESCALATION_MINUTES = 0
    task = new_task(shop, due_at=minutes(-90), remind_at=minutes(-100))
    actions.cancel_task(task, actor=SYSTEM)
    assert sweep() == (0, 0, 0)


def test_a_failure_half_way_loses_nothing_and_doubles_nothing(shop, monkeypatch):
    """The mark commits with the notice and the event: a crash before the commit leaves the task due,
    and the next sweep (in this worker or a new one) does it once."""
    new_task(shop, due_at=minutes(-1), remind_at=minutes(-1))
    real_emit = actions.events.emit

    def crash(*args, **kwargs):
        raise RuntimeError("the worker dies here")

    monkeypatch.setattr(actions.events, "emit", crash)
    with pytest.raises(RuntimeError):
        jobs.send_reminders()
    with pytest.raises(RuntimeError):
        jobs.mark_overdue()
    assert not Notification.objects.exists()
    assert Task.objects.filter(reminded_at__isnull=True, overdue_at__isnull=True).count() == 1
    monkeypatch.setattr(actions.events, "emit", real_emit)
    assert sweep() == (1, 1, 0)
    assert sweep() == (0, 0, 0)
    assert Notification.objects.count() == 2
    assert len(events("tasks.reminded")) == len(events("tasks.overdue")) == 1


def test_the_actions_claim_once_even_when_called_twice_for_one_id(shop):
    """Two workers that picked the same id: the conditional update lets one through."""
    task = new_task(shop, due_at=minutes(-1), remind_at=minutes(-1))
    assert actions.send_reminder(task.pk) is True and actions.send_reminder(task.pk) is False
    assert actions.mark_overdue(task.pk) is True and actions.mark_overdue(task.pk) is False
    assert actions.escalate(task.pk, now=minutes(120)) is True
    assert actions.escalate(task.pk, now=minutes(120)) is False


def test_reminder_e_mail_through_a_real_smtp_server_once(shop, settings, smtp_server):
    settings.LAVKA_TASK_REMINDER_EMAIL = True
    shop.alice.email = "alice@example.com"
    shop.alice.language = "ru"
    shop.alice.save()
    new_task(shop, remind_at=minutes(-1), due_at=minutes(15))
    new_task(shop, performer=shop.bob, remind_at=minutes(-1))  # Bob has no e-mail

    assert jobs.send_reminders() == 2
    assert Job.objects.count() == 1
    assert core_jobs.run_due("worker-1") == 1
    assert core_jobs.run_due("worker-2") == 0
    [mail] = smtp_server.received
    assert mail.recipients == ["alice@example.com"]
    message = mail.message
    assert message["Subject"].strip() == "Напоминание: Перезвонить"  # the header may be folded
    assert "Перезвонить" in message.get_content()
    note = Notification.objects.get(user=shop.alice)
    assert note.emailed_at is not None
    # The job run again (a retry after a lost lease) sends nothing more.
    assert jobs.email_notification(note.pk) is False
    assert len(smtp_server.received) == 1


def test_a_failed_send_is_retried_by_the_job(shop, settings, smtp_server):
    settings.LAVKA_TASK_REMINDER_EMAIL = True
    shop.alice.email = "alice@example.com"
    shop.alice.save()
    new_task(shop, remind_at=minutes(-1))
    jobs.send_reminders()
    good_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = 1  # nothing listens there
    core_jobs.run_due("w")
    job = Job.objects.get()
    assert job.done_at is None and job.attempts == 1 and job.last_error
    settings.EMAIL_PORT = good_port
    Job.objects.update(run_after=timezone.now())
    core_jobs.run_due("w")
    assert len(smtp_server.received) == 1
    assert Notification.objects.get().emailed_at is not None
