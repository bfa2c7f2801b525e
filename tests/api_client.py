"""The HTTP API as tests call it: tokens made through the service, a Bearer test client,
problem-details checks, and 202s followed to their operation."""

from app.services import tokens, users

API = "/api/v1"


def make_token(app, username="admin", name="t", expires_at=None):
    """A raw API token of a user, made through the tokens service."""
    with app.app_context():
        user = next(u for u in users.all_users() if u.username == username)
        return tokens.create(user, name, expires_at, "test")[1]


class Api:
    """A test client that sends a Bearer token and JSON."""

    def __init__(self, app, token):
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method, path, body=None, **kwargs):
        """One request; the response."""
        return self.client.open(
            API + path, method=method, json=body, headers=self.headers, **kwargs
        )

    def get(self, path, **kwargs):
        """GET."""
        return self.call("GET", path, **kwargs)

    def post(self, path, body=None):
        """POST with a JSON body."""
        return self.call("POST", path, {} if body is None else body)


def assert_problem(response, status, detail=None):
    """A problem-details answer with this status (and detail, when given)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"]
    if detail is not None:
        assert detail in body["detail"], body
    return body


def finished(api, response):
    """Follow a 202's operation (the unit tier's queue runs it at once); its final state."""
    assert response.status_code == 202, response.get_data(as_text=True)
    url = response.get_json()["operation"]["url"]
    assert response.headers["Location"] == url
    op = api.client.get(url, headers=api.headers).get_json()
    assert op["done"], op
    return op
