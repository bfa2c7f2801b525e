"""The filter language's grammar: a recursive-descent parser that turns tokens into SQL
text over whitelisted columns and a list of parameters."""

import math
import re
from dataclasses import dataclass
from typing import NoReturn

from app.errors import InvalidInput

from .tokens import NUMBER, Token, show

MAX_DEPTH = 50
MAX_VALUES = 500

KINDS = ("text", "int", "bool")
# Words with a meaning in the grammar; they cannot be bare-word values (quote them instead).
RESERVED = frozenset({"AND", "OR", "NOT", "LIKE", "IN", "IS", "NULL"})
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})
# SQLite integers are signed 64-bit; a bigger Python int would fail at bind time.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Column:
    """A filterable column: the trusted SQL expression to emit and its value kind."""

    sql: str
    kind: str = "text"
    # for an int column that also takes a name (host = lab1): the SQL of that name
    by_name: str | None = None

    def __post_init__(self):
        """Reject an unknown kind early; this is a programming error, not user input."""
        if self.kind not in KINDS:
            raise ValueError(f"Column kind must be one of {KINDS}, not {self.kind!r}")


def _is_keyword(token: Token, word: str) -> bool:
    """Tell whether the token is the given keyword, in any letter case."""
    return token.kind == "word" and token.text.upper() == word


class Parser:
    """Recursive-descent parser that emits SQL and collects parameters as it goes."""

    def __init__(self, tokens: list[Token], columns: dict[str, Column], search: tuple = ()):
        self.tokens = tokens
        self.columns = columns
        self.search = search
        self.index = 0
        self.params: list = []

    def parse(self) -> tuple[str, list]:
        """Parse the whole token list; anything left over is an error."""
        sql, _ = self._expr(0)
        token = self._peek()
        if token.kind != "end":
            raise InvalidInput(f"unexpected {show(token.text)} at position {token.pos}")
        return sql, self.params

    def _peek(self) -> Token:
        """Return the next token without consuming it."""
        return self.tokens[self.index]

    def _take(self) -> Token:
        """Consume and return the next token (the final 'end' token is never passed)."""
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    # Each rule returns (sql, grouped): grouped means the SQL is already wrapped in
    # parentheses, so it can sit next to any operator without changing meaning.

    def _expr(self, depth: int) -> tuple[str, bool]:
        """expr := and_expr (OR and_expr)*"""
        return self._chain("OR", self._and_expr, depth)

    def _and_expr(self, depth: int) -> tuple[str, bool]:
        """and_expr := not_expr (AND not_expr)*"""
        return self._chain("AND", self._not_expr, depth)

    def _chain(self, keyword: str, operand, depth: int) -> tuple[str, bool]:
        """Parse operands joined by ``keyword``; two or more are wrapped in parentheses."""
        first = operand(depth)
        parts = [first[0]]
        while _is_keyword(self._peek(), keyword):
            self._take()
            parts.append(operand(depth)[0])
        if len(parts) == 1:
            return first
        return "(" + f" {keyword} ".join(parts) + ")", True

    def _not_expr(self, depth: int) -> tuple[str, bool]:
        """not_expr := NOT not_expr | primary"""
        token = self._peek()
        if not _is_keyword(token, "NOT"):
            return self._primary(depth)
        self._take()
        self._check_depth(depth + 1, token)
        sql, grouped = self._not_expr(depth + 1)
        return (f"NOT {sql}" if grouped else f"NOT ({sql})"), False

    def _primary(self, depth: int) -> tuple[str, bool]:
        """primary := '(' expr ')' | comparison"""
        token = self._peek()
        if self._is_term():
            return self._term(), True
        if token.kind != "(":
            return self._comparison(), False
        self._take()
        self._check_depth(depth + 1, token)
        result = self._expr(depth + 1)
        self._expect(")")
        return result

    def _is_term(self) -> bool:
        """Whether a search term comes next: a word or string standing alone (followed by
        AND, OR, ')' or the end), where the table has search columns."""
        token, after = (
            self.tokens[self.index],
            self.tokens[min(self.index + 1, len(self.tokens) - 1)],
        )
        alone = after.kind in (")", "end") or _is_keyword(after, "AND") or _is_keyword(after, "OR")
        return (
            bool(self.search)
            and alone
            and token.kind in ("word", "string", "number")
            and not (token.kind == "word" and token.text.upper() in RESERVED)
        )

    def _term(self) -> str:
        """A search term: any search column contains it, ignoring case ('%' and '_' are
        matched as themselves)."""
        token = self._take()
        if len(self.params) + len(self.search) > MAX_VALUES:
            raise InvalidInput(f"too many values (more than {MAX_VALUES}) at position {token.pos}")
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", token.value) + "%"
        self.params.extend([pattern] * len(self.search))
        return (
            "("
            + " OR ".join(f"lower({sql}) LIKE lower(?) ESCAPE '\\'" for sql in self.search)
            + ")"
        )

    def _check_depth(self, depth: int, token: Token) -> None:
        """Refuse deep nesting so a hostile filter can never exhaust the Python stack."""
        if depth > MAX_DEPTH:
            raise InvalidInput(
                f"filter nests deeper than {MAX_DEPTH} levels at position {token.pos}"
            )

    def _expect(self, kind: str) -> Token:
        """Consume a token of the given kind or explain what was found instead."""
        token = self._take()
        if token.kind == kind:
            return token
        if token.kind == "end":
            raise InvalidInput(f"unexpected end of filter: expected {kind!r}")
        raise InvalidInput(f"expected {kind!r} at position {token.pos}, got {show(token.text)}")

    def _comparison(self) -> str:
        """comparison := column (op literal | [NOT] LIKE literal | [NOT] IN (...) | IS [NOT] NULL)"""
        name_token, column = self._column()
        name = name_token.text.lower()
        column = self._named(column)
        token = self._take()
        if token.kind == "op":
            self._literal(name, column, after=token)
            op = "<>" if token.text == "!=" else token.text
            return f"{column.sql} {op} ?"
        negated = _is_keyword(token, "NOT")
        before = token if negated else name_token
        if negated:
            token = self._take()
        not_ = "NOT " if negated else ""
        if _is_keyword(token, "LIKE"):
            return self._like(name, column, token, not_)
        if _is_keyword(token, "IN"):
            return f"{column.sql} {not_}IN ({self._in_list(name, column, token)})"
        if _is_keyword(token, "IS") and not negated:
            is_not = _is_keyword(self._peek(), "NOT")
            if is_not:
                self._take()
            null = self._take()
            if not _is_keyword(null, "NULL"):
                self._fail_expected("NULL", after=token, got=null)
            return f"{column.sql} IS {'NOT ' if is_not else ''}NULL"
        wanted = "LIKE or IN" if negated else "an operator"
        self._fail_expected(wanted, after=before, got=token)

    def _like(self, name: str, column: Column, token: Token, not_: str) -> str:
        """The rest of `column [NOT] LIKE literal`, after LIKE."""
        if column.kind != "text":
            raise InvalidInput(
                f"LIKE at position {token.pos} needs a text column; {name} is {column.kind}"
            )
        pattern = self._literal(name, column, after=token)
        text = str(self.params[-1])
        if (len(text) - len(text.rstrip("\\"))) % 2:
            raise InvalidInput(
                f"the LIKE pattern at position {pattern.pos} ends with a lone '\\'"
                " (write '\\\\' for a backslash)"
            )
        # lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not;
        # one escape character on both ('\\%' is a literal %; PostgreSQL's default)
        return f"lower({column.sql}) {not_}LIKE lower(?) ESCAPE '\\'"

    def _named(self, column: Column) -> Column:
        """The column to compare: an id column's name instead (host = lab1) when the value
        that follows is not a number (after an operator, or the first one of an IN list)."""
        if column.by_name is None:
            return column
        ahead = self.tokens[self.index : self.index + 4]
        kinds = [t.kind for t in ahead]
        words = [t.text.upper() for t in ahead]
        value = None
        if kinds[:1] == ["op"] and len(ahead) > 1:
            value = ahead[1]
        elif words[:1] == ["LIKE"] or words[:2] == ["NOT", "LIKE"]:
            return Column(column.by_name)
        elif "IN" in words[:2]:
            at = words.index("IN") + 2
            value = ahead[at] if at < len(ahead) else None
        if value is not None and value.kind in ("word", "string"):
            return Column(column.by_name)
        return column

    def _column(self) -> tuple[Token, Column]:
        """Read a column name and look it up in the whitelist."""
        token = self._take()
        if token.kind == "end":
            raise InvalidInput("unexpected end of filter: expected a column name")
        if token.kind != "word" or token.text.upper() in RESERVED:
            raise InvalidInput(
                f"expected a column name at position {token.pos}, got {show(token.text)}"
            )
        if self._peek().kind == "(":
            raise InvalidInput(
                f"function calls are not allowed: {show(token.text)} at position {token.pos}"
            )
        column = self.columns.get(token.text.lower())
        if column is None:
            known = ", ".join(sorted(self.columns))
            raise InvalidInput(
                f"unknown column {show(token.text)} at position {token.pos} (known: {known})"
            )
        return token, column

    def _in_list(self, name: str, column: Column, in_token: Token) -> str:
        """Read '(' literal (',' literal)* ')' and return the matching placeholders."""
        opening = self._expect("(")
        if self._peek().kind == ")":
            raise InvalidInput(f"IN at position {in_token.pos} needs at least one value")
        count = 1
        last = self._literal(name, column, after=opening)
        while (token := self._take()).kind == ",":
            last = self._literal(name, column, after=token)
            count += 1
        if token.kind != ")":
            self._fail_expected("',' or ')'", after=last, got=token)
        return ", ".join("?" * count)

    def _literal(self, name: str, column: Column, after: Token) -> Token:
        """Read one literal, convert it for the column's kind and add it to the params."""
        token = self._take()
        if token.kind not in ("string", "number", "word") or (
            token.kind == "word" and token.text.upper() in RESERVED
        ):
            hint = " (use IS NULL or IS NOT NULL)" if _is_keyword(token, "NULL") else ""
            self._fail_expected("a value", after=after, got=token, hint=hint)
        if len(self.params) >= MAX_VALUES:
            raise InvalidInput(f"too many values (more than {MAX_VALUES}) at position {token.pos}")
        try:
            value = _convert(name, column, token)
        except InvalidInput as exc:
            # 'mem > vcpus' reads like a column comparison; say why it is refused.
            if token.kind == "word" and token.text.lower() in self.columns:
                raise InvalidInput(f"{exc} (comparing two columns is not supported)") from None
            raise
        self.params.append(value)
        return token

    def _fail_expected(self, wanted: str, after: Token, got: Token, hint: str = "") -> NoReturn:
        """Raise the 'expected X after Y' error, pointing at the token actually found."""
        if got.kind == "end":
            raise InvalidInput(
                f"unexpected end of filter: expected {wanted} after {show(after.text)}"
            )
        raise InvalidInput(
            f"expected {wanted} after {show(after.text)} at position {got.pos}, "
            f"got {show(got.text)}{hint}"
        )


def _convert(name: str, column: Column, token: Token):
    """Turn a literal token into the Python value bound for this column's kind."""
    value = token.value
    if column.kind == "text":
        # Numbers stay as typed ('007' is not 7) so text columns compare text with text.
        return value
    if column.kind == "bool":
        if value.lower() in TRUE_WORDS:
            return 1
        if value.lower() in FALSE_WORDS:
            return 0
        raise InvalidInput(
            f"{name} expects true or false, got {show(value)} at position {token.pos}"
        )
    if not NUMBER.fullmatch(value):
        raise InvalidInput(f"{name} expects a number, got {show(value)} at position {token.pos}")
    number = float(value) if "." in value else int(value)
    if not (math.isfinite(number) and INT_MIN <= number <= INT_MAX):
        raise InvalidInput(f"{name}: number out of range at position {token.pos}")
    return number
