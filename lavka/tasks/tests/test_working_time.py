"""Deadlines in working time: nights, weekends, days off, DST, and the hours' time zone."""

import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from lavka.tasks.actions import due_in_working_minutes
from lavka.tasks.working_time import weekly_spans

MSK = ZoneInfo("Europe/Moscow")
WEEKDAYS = {day: ["09:00", "18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
# 2030-01-07 is a Monday.
MONDAY = datetime.date(2030, 1, 7)


def at(day: datetime.date, hh: int, mm: int = 0, *, days: int = 0, zone=MSK) -> datetime.datetime:
    return datetime.datetime.combine(day + datetime.timedelta(days=days), datetime.time(hh, mm), tzinfo=zone)


def person(hours=None):
    return SimpleNamespace(working_hours=WEEKDAYS if hours is None else hours)


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (at(MONDAY, 10), 15, at(MONDAY, 10, 15)),  # inside the day
        (at(MONDAY, 17, 50), 15, at(MONDAY, 9, 5, days=1)),  # across the night
        (at(MONDAY, 3), 15, at(MONDAY, 9, 15)),  # before opening
        (at(MONDAY, 18), 15, at(MONDAY, 9, 15, days=1)),  # exactly at closing
        (at(MONDAY, 17, 45), 15, at(MONDAY, 18)),  # ends exactly at closing
        (at(MONDAY, 17, 55, days=4), 15, at(MONDAY, 9, 10, days=7)),  # Friday evening → Monday
        (at(MONDAY, 12, days=5), 15, at(MONDAY, 9, 15, days=7)),  # Saturday → Monday
        (at(MONDAY, 9), 2 * 9 * 60 + 30, at(MONDAY, 9, 30, days=2)),  # two whole days and a bit
        (at(MONDAY, 9), 5 * 9 * 60 + 1, at(MONDAY, 9, 1, days=7)),  # a whole working week
        (at(MONDAY, 12, days=6), 0, at(MONDAY, 9, days=7)),  # 0 minutes: the next working moment
        (at(MONDAY, 11), 0, at(MONDAY, 11)),
    ],
)
def test_working_minutes(start, minutes, due):
    result = due_in_working_minutes(person(), minutes, start, tz=MSK)
    assert result == due and result.utcoffset() == datetime.timedelta(0)


def test_no_hours_means_every_minute_counts():
    start = at(MONDAY, 23, days=5)
    assert due_in_working_minutes(person({}), 15, start) == start + datetime.timedelta(minutes=15)


def test_a_missing_or_broken_day_is_a_day_off():
    hours = {"mon": ["09:00", "10:00"], "tue": ["bad", "10:00"], "wed": ["12:00", "11:00"], "thu": ["09:00"]}
    assert set(weekly_spans(hours)) == {0}
    # Monday 09:50 + 15 → 10 minutes on Monday, 5 on the next Monday.
    assert due_in_working_minutes(person(hours), 15, at(MONDAY, 9, 50), tz=MSK) == at(MONDAY, 9, 5, days=7)


def test_hours_are_read_in_the_given_time_zone():
    vladivostok = ZoneInfo("Asia/Vladivostok")  # UTC+10, Moscow is UTC+3
    start = at(MONDAY, 9, zone=MSK)  # 16:00 in Vladivostok: two working hours left there
    due = due_in_working_minutes(person(), 150, start, tz=vladivostok)
    assert due == at(MONDAY, 9, 30, days=1, zone=vladivostok)


def test_a_day_with_a_dst_jump_has_fewer_real_minutes():
    berlin = ZoneInfo("Europe/Berlin")
    # 2030-03-31 is a Sunday; clocks jump from 02:00 to 03:00, so 01:00-04:00 is two real hours.
    hours = {"sun": ["01:00", "04:00"], "mon": ["09:00", "10:00"]}
    start = datetime.datetime(2030, 3, 31, 0, 30, tzinfo=berlin)
    due = due_in_working_minutes(person(hours), 150, start, tz=berlin)
    assert due == datetime.datetime(2030, 4, 1, 9, 30, tzinfo=berlin)


def test_the_performers_site_gives_the_time_zone(shop):
    shop.site.time_zone = "Asia/Vladivostok"
    shop.site.save()
    shop.alice.working_hours = WEEKDAYS
    start = at(MONDAY, 9, zone=MSK)  # 16:00 in Vladivostok
    due = due_in_working_minutes(shop.alice, 150, start)
    assert due == at(MONDAY, 9, 30, days=1, zone=ZoneInfo("Asia/Vladivostok"))


def test_negative_minutes_are_refused():
    with pytest.raises(ValueError):
        due_in_working_minutes(person(), -1, at(MONDAY, 10), tz=MSK)
