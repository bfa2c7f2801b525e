"""Turn an operator's filter text (a safe subset of SQL WHERE) into parameterized SQL.

Nothing the user types reaches SQL as text: column names are looked up in a
whitelist that maps them to trusted SQL expressions, and every literal becomes a
``?`` parameter. Anything outside the grammar is refused with ``InvalidInput``.

    expr      := and_expr (OR and_expr)*
    and_expr  := not_expr (AND not_expr)*
    not_expr  := NOT not_expr | primary
    primary   := '(' expr ')' | comparison | term
    comparison:= column op literal | column [NOT] LIKE literal
               | column [NOT] IN '(' literal (',' literal)* ')' | column IS [NOT] NULL
    term      := word | string   (alone: a search of the table's search columns)

A term is what a search box user types: ``web1`` or ``running`` finds the rows whose search
columns (names, states) contain it, ignoring case.
"""

from app.errors import InvalidInput

from .parser import MAX_DEPTH, MAX_VALUES, Column, Parser
from .tokens import MAX_LENGTH, tokenize

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "MAX_VALUES", "Column", "compile_filter"]


def compile_filter(
    text: str, columns: dict[str, Column], search: tuple[str, ...] = ()
) -> tuple[str, list]:
    """Parse a filter expression into (sql, params); ('', []) for empty/blank text. search
    names the columns a bare term looks in; without any, a term is an error."""
    if text is None:
        return "", []
    if not isinstance(text, str):
        raise InvalidInput("filter must be a string")
    if len(text) > MAX_LENGTH:
        raise InvalidInput(f"filter is too long ({len(text)} characters, at most {MAX_LENGTH})")
    if not text.strip():
        return "", []
    if "\x00" in text:
        raise InvalidInput(f"filter has a NUL character at position {text.index(chr(0)) + 1}")
    parser = Parser(
        tokenize(text),
        {name.lower(): col for name, col in columns.items()},
        tuple(columns[name].sql for name in search),
    )
    return parser.parse()
