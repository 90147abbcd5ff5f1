"""Text → tokens, by hand: numbers, strings with escapes, names, keywords and operators."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lavka.automation.expressions.errors import ExpressionError

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
TWO_CHAR_OPS = frozenset({"==", "!=", "<=", ">="})
ONE_CHAR_OPS = frozenset("<>+-*/(),.[]")
ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}
# Operators from other languages, and what to write instead.
MISTAKES = {
    "=": ("'=' is not an operator", "use '==' to compare"),
    "!": ("'!' is not an operator", "use 'not'"),
    "&": ("'&' is not an operator", "use 'and'"),
    "|": ("'|' is not an operator", "use 'or'"),
}
HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, keyword, op, end
    value: Any
    start: int
    end: int

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the expression"
        if self.kind == "string":
            return "a string"
        if self.kind == "number":
            return f"number {self.value}"
        return f"'{self.value}'"


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _is_name_start(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ch == "_"


def _is_name_char(ch: str) -> bool:
    return _is_name_start(ch) or _is_digit(ch)


def show_char(ch: str) -> str:
    return f"'{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        after_dot = bool(tokens) and tokens[-1].kind == "op" and tokens[-1].value == "."
        if after_dot and _is_name_char(ch):
            # A field name: custom field codes may start with a digit (order.custom.1c_id).
            while i < n and _is_name_char(text[i]):
                i += 1
            tokens.append(Token("name", text[start:i], start, i))
        elif _is_digit(ch):
            while i < n and _is_digit(text[i]):
                i += 1
            if i + 1 < n and text[i] == "." and _is_digit(text[i + 1]):
                i += 1
                while i < n and _is_digit(text[i]):
                    i += 1
            tokens.append(Token("number", Decimal(text[start:i]), start, i))
        elif _is_name_start(ch):
            while i < n and _is_name_char(text[i]):
                i += 1
            word = text[start:i]
            tokens.append(Token("keyword" if word in KEYWORDS else "name", word, start, i))
        elif ch in "\"'":
            value, i = _string(text, i)
            tokens.append(Token("string", value, start, i))
        elif text[i : i + 2] in TWO_CHAR_OPS:
            tokens.append(Token("op", text[i : i + 2], start, i + 2))
            i += 2
        elif ch in ONE_CHAR_OPS:
            tokens.append(Token("op", ch, start, i + 1))
            i += 1
        elif ch in MISTAKES:
            message, hint = MISTAKES[ch]
            raise ExpressionError(message, start, hint=hint, text=text)
        else:
            raise ExpressionError(f"unexpected character {show_char(ch)}", start, text=text)
    tokens.append(Token("end", None, n, n))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    """The value of the string literal opening at `start`, and the offset just after it."""
    quote = text[start]
    parts: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            return "".join(parts), i + 1
        if ch == "\n":
            break
        if ch != "\\":
            parts.append(ch)
            i += 1
            continue
        escape = text[i + 1] if i + 1 < n else ""
        if escape and escape in ESCAPES:
            parts.append(ESCAPES[escape])
            i += 2
        elif escape == "u":
            digits = text[i + 2 : i + 6]
            if len(digits) != 4 or not set(digits) <= HEX:
                raise ExpressionError(
                    "'\\u' needs four hex digits", i, hint="e.g. '\\u00e9' for é", text=text
                )
            code = int(digits, 16)
            if 0xD800 <= code <= 0xDFFF:
                raise ExpressionError("'\\u' names a surrogate, not a character", i, text=text)
            parts.append(chr(code))
            i += 6
        elif not escape:
            break
        else:
            raise ExpressionError(
                f"unknown escape '\\{escape}' in a string",
                i,
                hint="write '\\\\' for a backslash; known escapes: \\\" \\' \\\\ \\n \\t \\r \\uXXXX",
                text=text,
            )
    raise ExpressionError("unterminated string", start, hint=f"close it with {quote}", text=text)
