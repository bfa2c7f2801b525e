"""SQL for the api_tokens table. No query returns token_hash: a hash is only ever looked up."""

from ..db import now
from ..filter_language import Column, compile_filter

# Every row carries its owner's name, for the pages and the API's lists.
COLUMNS = (
    "t.id, t.user_id, u.username, t.name, t.prefix, t.created_at, t.expires_at,"
    " t.last_used_at, t.revoked_at, t.revoked_by"
)
FROM = "api_tokens AS t JOIN users AS u ON u.id = t.user_id"

FILTER_COLUMNS = {
    "id": Column("t.id", "int"),
    "name": Column("t.name"),
    "username": Column("u.username"),
    "prefix": Column("t.prefix"),
}
# where a bare word in the filter looks (a search box's words: names, states)
SEARCH_COLUMNS = ("name", "username", "prefix")


def insert(conn, user_id, name, token_hash, prefix, expires_at):
    """Add a token; returns its id."""
    cur = conn.execute(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (user_id, name, token_hash, prefix, now(), expires_at),
    )
    return cur.fetchone()[0]


def get(conn, token_id):
    """The token with this id, or None."""
    return conn.execute(f"SELECT {COLUMNS} FROM {FROM} WHERE t.id = ?", (token_id,)).fetchone()


def by_hash(conn, token_hash):
    """The token whose raw secret hashes to this, or None."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM {FROM} WHERE t.token_hash = ?", (token_hash,)
    ).fetchone()


def page(conn, query, limit, offset, user_id=None):
    """(rows, total) of tokens matching a filter (one user's only, when given), newest first."""
    sql, params = compile_filter(query, FILTER_COLUMNS, SEARCH_COLUMNS)
    clauses = [f"({sql})"] if sql else []
    if user_id is not None:
        clauses.append("t.user_id = ?")
        params = [*params, user_id]
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    total = conn.execute(f"SELECT COUNT(*) FROM {FROM}{where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM {FROM}{where} ORDER BY t.id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return rows, total


def revoke(conn, token_id, revoked_by):
    """Compare-and-swap live → revoked; True when this call revoked it."""
    cur = conn.execute(
        "UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        (now(), revoked_by, token_id),
    )
    return cur.rowcount == 1


def revoke_all_for_user(conn, user_id, revoked_by):
    """Revoke every live token of a user; how many there were."""
    cur = conn.execute(
        "UPDATE api_tokens SET revoked_at = ?, revoked_by = ?"
        " WHERE user_id = ? AND revoked_at IS NULL",
        (now(), revoked_by, user_id),
    )
    return cur.rowcount


def touch_used(conn, token_id, used_at, unless_since):
    """Note a token's use, unless one was already noted since a time."""
    # the condition in SQL: parallel requests on one token write it once
    conn.execute(
        "UPDATE api_tokens SET last_used_at = ?"
        " WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
        (used_at, token_id, unless_since),
    )
