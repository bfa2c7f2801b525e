"""JSON request bodies, for the pages (Flask's get_json, which Flask-WTF forms read) and the
API (webargs) alike: a body nested deeper than any Nube takes is a bad request (400) before
the parser sees it. Python's parser recurses once per level, and a thousand levels would end
in a RecursionError, which nothing catches: a 500 on every route with a body."""

import json
import re

from flask import abort
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

MAX_DEPTH = 32  # no body Nube takes nests more than three levels
# a string (whatever brackets it holds are text) or one bracket; possessive, so an
# unterminated string costs one scan, never a backtracking storm
_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.DOTALL)
_TOKENS_BYTES = re.compile(_TOKENS.pattern.encode(), re.DOTALL)


def check_depth(data):
    """Raise json.JSONDecodeError (a ValueError) when a JSON text (str or bytes) opens more
    than MAX_DEPTH arrays or objects inside each other."""
    pattern = _TOKENS_BYTES if isinstance(data, (bytes, bytearray)) else _TOKENS
    depth = 0
    for match in pattern.finditer(data):
        token = match.group()
        if token in ("[", "{", b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                binary = isinstance(data, (bytes, bytearray))
                doc = data.decode("utf-8", "replace") if binary else data
                message = f"the JSON body nests deeper than {MAX_DEPTH} levels"
                raise json.JSONDecodeError(message, doc, match.start())
        elif token in ("]", "}", b"]", b"}"):
            depth -= 1


def as_text(data, encoding=None):
    """A JSON body as text, decoded with encoding or as json.loads would (UTF-8, or UTF-16/32
    by their byte patterns): the depth is counted on what the parser will read, never on raw
    bytes whose '"' or ']' may be half of another character."""
    if isinstance(data, (bytes, bytearray)):
        try:
            return bytes(data).decode(encoding or json.detect_encoding(data), "surrogatepass")
        except (UnicodeDecodeError, LookupError) as error:
            raise json.JSONDecodeError(f"not text: {error}", "", 0) from None
    return data


def parse(data, loads=json.loads, encoding=None, **kwargs):
    """JSON text or bytes parsed once its depth is checked; ValueError (never RecursionError)
    when it is not JSON or nests too deeply."""
    text = as_text(data, encoding)
    check_depth(text)
    try:
        return loads(text, **kwargs)
    except RecursionError:  # a depth check that missed a case must still be a bad request
        raise json.JSONDecodeError("the JSON body nests too deeply", "", 0) from None


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with request bodies checked for depth before they are parsed."""

    def loads(self, s, **kwargs):
        """Parse JSON text; ValueError when it is not JSON or nests too deeply."""
        return parse(s, super().loads, **kwargs)


class ApiParser(FlaskParser):
    """webargs' parser for the API's bodies, with the same depth check and a 400 that says
    what is wrong with the JSON."""

    def _raw_load_json(self, req):
        """The request's JSON body, or missing when it is not JSON."""
        if not is_json_request(req):
            return core.missing
        return parse(req.get_data(cache=True), core.parse_json, encoding="utf-8")  # RFC 8259

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        """A body that is not JSON, or nests too deeply: 400."""
        abort(400, description=f"the request body is not valid JSON: {error}")


def init_app(app):
    """Parse every request's JSON with the depth check."""
    app.json = JSONProvider(app)
