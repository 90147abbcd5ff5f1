"""Working hours as staff type them: one line per day, "mon 09:00-18:00". A day not listed is a day off;
no lines at all means the hours are not set (the manager is treated as always on duty)."""

from __future__ import annotations

import datetime

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_working_hours(text: str) -> dict[str, list[str]]:
    hours: dict[str, list[str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().lower()
        if not line:
            continue
        day, _space, span = line.partition(" ")
        start, _dash, end = span.strip().partition("-")
        if day not in DAYS:
            raise ValueError(f"line {number}: the day must be one of {', '.join(DAYS)}")
        try:
            opens, closes = (
                datetime.time.fromisoformat(start.strip()),
                datetime.time.fromisoformat(end.strip()),
            )
        except ValueError as exc:
            raise ValueError(f"line {number}: write the hours as 09:00-18:00") from exc
        if opens >= closes:
            raise ValueError(f"line {number}: the day must end after it starts")
        if day in hours:
            raise ValueError(f"line {number}: {day} is given twice")
        hours[day] = [opens.strftime("%H:%M"), closes.strftime("%H:%M")]
    return hours


def format_working_hours(hours: dict[str, list[str]]) -> str:
    return "\n".join(f"{day} {hours[day][0]}-{hours[day][1]}" for day in DAYS if day in hours)
