"""Page-or-partial rendering: the same view answers a full page, or only its fragment to htmx."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render `template`; for an htmx request that targets a fragment, render `partial` instead."""
    htmx = getattr(request, "htmx", None)
    if partial and htmx and not htmx.boosted and htmx.target:
        return render(request, partial, context, status=status)
    return render(request, template, context, status=status)
