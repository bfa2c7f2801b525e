"""The HTTP API (/api/v1): tokens, sessions and CSRF, problem details, and the OpenAPI
document and reference page."""

import re

import pytest
from openapi_spec_validator import validate

from app.db import get_db
from app.services import audit, users
from tests.api_client import API, Api, assert_problem, make_token
from tests.conftest import csrf_token
from tests.html import page

# --- authentication ---------------------------------------------------------------------


def test_no_token_is_401_with_a_bearer_challenge(app):
    response = app.test_client().get(f"{API}/vms")
    assert_problem(response, 401, "send an API token")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="nube"'


@pytest.mark.parametrize(
    "header",
    ["Bearer nube_not-a-real-token-at-all-0000000000000000000", "Bearer", "Basic YWRtaW46eA=="],
)
def test_a_bad_authorization_header_is_401(app, header):
    response = app.test_client().get(f"{API}/vms", headers={"Authorization": header})
    assert_problem(response, 401)
    assert "error=" in response.headers["WWW-Authenticate"]


def test_a_revoked_token_is_401_at_once(app, admin_api):
    assert admin_api.get("/me").status_code == 200
    token_id = admin_api.get("/me").get_json()["token"]["id"]
    assert admin_api.call("DELETE", f"/tokens/{token_id}").status_code == 204
    assert_problem(admin_api.get("/me"), 401, "revoked")


def test_an_expired_token_is_401(app):
    api = Api(app, make_token(app, "admin", expires_at="2027-06-01"))
    assert api.get("/vms").status_code == 200
    with app.app_context():
        get_db().execute("UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00Z'")
    assert_problem(api.get("/vms"), 401, "expired")


def test_a_token_never_opens_an_html_page(app, admin_api):
    response = admin_api.client.get("/vms/", headers=admin_api.headers)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_token_request_gets_no_cookie(admin_api):
    response = admin_api.get("/me")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    body = response.get_json()
    assert body["username"] == "admin" and body["role"] == "admin"
    assert body["token"]["name"] == "t"
    assert admin_api.get("/").get_json() == body


def test_a_token_acts_with_its_users_role_now(app, operator_api):
    assert_problem(operator_api.get("/users"), 403, "only admins")
    with app.app_context():
        oper = next(u for u in users.all_users() if u.username == "oper")
        users.set_role(oper.id, "admin", "test")
    assert operator_api.get("/users").status_code == 200


def test_a_cookie_session_needs_its_csrf_token_to_change_anything(app, admin_client, host, image):
    assert admin_client.get(f"{API}/vms").status_code == 200
    body = {"id": "vm1", "image": image, "mem": 64}
    assert_problem(admin_client.post(f"{API}/vms", json=body), 403, "CSRF")
    token = csrf_token(admin_client, "/vms/new")
    response = admin_client.post(f"{API}/vms", json=body, headers={"X-CSRFToken": token})
    assert response.status_code == 202


def test_token_changes_are_audited_with_the_token(app, admin_api, host, image):
    admin_api.post("/vms", {"id": "vm1", "image": image, "mem": 64})
    with app.app_context():
        records, _ = audit.page("action = 'vm.create'")
    assert records and "with API token" in records[0]["detail"]
    assert records[0]["detail"].endswith("with API token 1 't'")


def test_an_unknown_route_and_method_are_problems(admin_api):
    assert_problem(admin_api.get("/nothing"), 404)
    response = admin_api.call("PUT", "/vms")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


# --- the OpenAPI document ---------------------------------------------------------------


def test_the_openapi_document_validates_and_has_every_route(app):
    client = app.test_client()
    response = client.get(f"{API}/openapi.json")  # no token needed to read it
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API) or rule.endpoint == "api-docs.openapi_json":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routes |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes and routes <= documented, routes - documented
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def _answers(spec):
    """(path, method, status, media types) of every documented answer, references resolved."""
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method == "parameters":  # the path's parameters, not an operation
                continue
            for status, answer in op["responses"].items():
                if "$ref" in answer:
                    answer = spec["components"]["responses"][answer["$ref"].split("/")[-1]]
                yield path, method, status, set(answer.get("content", {}))


def test_the_openapi_document_gives_each_answer_the_media_type_sent(app):
    spec = app.test_client().get(f"{API}/openapi.json").get_json()
    answers = list(_answers(spec))
    errors = [a for a in answers if a[2] == "default" or int(a[2]) >= 400]
    assert {a[:3] for a in errors} >= {
        ("/api/v1/vms", "post", "422"),
        ("/api/v1/vms", "post", "default"),
    }
    for path, method, status, media in answers:
        if status == "default" or int(status) >= 400:
            assert media == {"application/problem+json"}, (path, method, status)
        elif status == "204":
            assert media == set(), (path, method, status)
        elif path == f"{API}/docs":
            assert media == {"text/html"}
        else:
            assert media == {"application/json"}, (path, method, status)
    every_op = {(path, method) for path, method, *_ in answers}
    assert every_op == {(path, method) for path, method, status, _ in errors if status == "default"}


def test_the_documentation_page_is_served_locally(app):
    response = app.test_client().get(f"{API}/docs")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "/api/v1/vms/{vm_id}/start" in html and "VmCreate" in html
    answers = page(response).find_all("span", class_="answer")
    errors = [a for a in answers if a["data-status"] in ("default", "422")]
    assert errors and all(a.one("code").text == "application/problem+json" for a in errors)
    created = [a for a in answers if a["data-status"] == "202"]
    assert created and all(a.one("code").text == "application/json" for a in created)
    addresses = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert addresses and all(a.startswith(("/", "#")) for a in addresses), addresses
