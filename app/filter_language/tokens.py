"""The filter language's tokens: words, numbers, quoted strings, operators and brackets, with
their positions; comments, ';' and any other stray character are refused."""

import re
from typing import NamedTuple

from app.errors import InvalidInput

MAX_LENGTH = 2000
OPERATORS = ("<=", ">=", "<>", "!=", "=", "<", ">")  # two-character ones first

WORD = re.compile(r"[\w.:@%-]+")
NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class Token(NamedTuple):
    """One token of a filter."""

    kind: str  # "word", "number", "string", "op", "(", ")", ",", "end"
    text: str  # the source text, used in error messages
    value: str  # the literal's value (unescaped for strings)
    pos: int  # 1-based character position in the filter


def show(text: str) -> str:
    """Quote a piece of user text for an error message, shortened so errors stay readable."""
    if len(text) > 40:
        text = text[:37] + "..."
    return repr(text)


def tokenize(text: str) -> list[Token]:
    """Split the filter into tokens, refusing comments, ';' and any other stray character."""
    tokens = []
    i = 0
    while i < len(text):
        ch = text[i]
        pos = i + 1
        if ch.isspace():
            i += 1
        elif text.startswith(("--", "/*"), i):
            raise InvalidInput(f"unexpected {show(text[i : i + 2])} at position {pos}")
        elif ch in "'\"":
            value, end = scan_string(text, i)
            tokens.append(Token("string", text[i:end], value, pos))
            i = end
        elif ch in "(),":
            tokens.append(Token(ch, ch, ch, pos))
            i += 1
        elif op := next((op for op in OPERATORS if text.startswith(op, i)), None):
            tokens.append(Token("op", op, op, pos))
            i += len(op)
        elif match := WORD.match(text, i):
            word = match.group()
            # '-' is a word character, so a comment could hide inside a bare word.
            if "--" in word:
                at = i + word.index("--") + 1
                raise InvalidInput(f"unexpected '--' at position {at}")
            kind = "number" if NUMBER.fullmatch(word) else "word"
            tokens.append(Token(kind, word, word, pos))
            i = match.end()
        else:
            raise InvalidInput(f"unexpected {show(ch)} at position {pos}")
    tokens.append(Token("end", "", "", len(text) + 1))
    return tokens


def scan_string(text: str, start: int) -> tuple[str, int]:
    """Read a quoted string starting at ``start``; a doubled quote is an escaped quote."""
    quote = text[start]
    parts = []
    i = start + 1
    while True:
        end = text.find(quote, i)
        if end == -1:
            raise InvalidInput(f"unterminated string at position {start + 1}")
        parts.append(text[i:end])
        if text.startswith(quote, end + 1):
            parts.append(quote)
            i = end + 2
        else:
            return "".join(parts), end + 1
