"""The one error every stage of the expression language raises."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class ExpressionError(ValidationError):
    """A bad expression: what is wrong and where.

    `position` is the 0-based character offset in the text (`len(text)` for "it ends too early");
    `line` and `column` (1-based) are for display. A ValidationError, so that forms and the API show it
    as they show any other invalid field.
    """

    def __init__(self, message: str, position: int, *, hint: str = "", text: str | None = None) -> None:
        self.reason = message
        self.position = position
        self.hint = hint
        self.text = text
        full = f"{message} at {position}" + (f"; {hint}" if hint else "")
        super().__init__(full, code="invalid_expression")

    @property
    def line(self) -> int:
        if not self.text:
            return 1
        return self.text.count("\n", 0, self.position) + 1

    @property
    def column(self) -> int:
        if not self.text:
            return self.position + 1
        return self.position - (self.text.rfind("\n", 0, self.position) + 1) + 1

    def __str__(self) -> str:
        return str(self.message)

    def __repr__(self) -> str:
        return f"ExpressionError({self.reason!r}, {self.position})"
