"""The versioned HTTP API (/api/v1): the same services as the pages, Bearer tokens, problem
details, and an OpenAPI 3.1 document generated from the schemas that validate requests."""

from http import HTTPStatus

import flask_smorest
from flask_smorest.utils import prepare_response

from . import (
    auth,
    hosts,
    images,
    meta,
    networks,
    operations,
    projects,
    snapshots,
    tokens,
    users,
    vms,
    volumes,
)
from .problems import MEDIA_TYPE
from .schemas import Problem

RESOURCES = (
    meta,
    hosts,
    vms,
    snapshots,
    volumes,
    networks,
    images,
    operations,
    projects,
    users,
    tokens,
)
# Reachable without a token: the API's description is no secret (tools read it first).
PUBLIC_ENDPOINTS = {"api-docs.openapi_json", "api_v1_meta.docs"}


class NubeApi(flask_smorest.Api):
    """flask-smorest's Api, minus its app-wide JSON error handler: the HTML pages keep theirs,
    and each API blueprint answers with problem details."""

    ERROR_SCHEMA = Problem

    def _register_error_handlers(self):
        """Register nothing on the app (problems.register does it per blueprint)."""

    def _register_responses(self):
        """Document every error answer as what is sent: problem details, in their own media
        type (flask-smorest would say application/json)."""
        for status in HTTPStatus:
            if status >= 400:
                self._register_problem(status.name, status.phrase)
        self._register_problem(self.DEFAULT_ERROR_RESPONSE_NAME, "Default error response")

    def _register_problem(self, name, description):
        """A reusable response component: a Problem body as application/problem+json."""
        response = {"description": description, "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, MEDIA_TYPE)
        self.spec.components.response(name, response, lazy=True)


api = NubeApi()


def init_app(app, csrf):
    """Register the API's blueprints and document them."""
    app.config.update(
        API_TITLE="Nube",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": "Hosts, VMs, snapshots, volumes, networks, images and operations of a Nube"
                " controller. "
                "Send an API token (dashboard: API tokens) as `Authorization: Bearer <token>`."
            },
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    app.url_map.converters["image"] = images.ImageNameConverter  # before the rules use it
    api.init_app(app)
    api.register_converter(images.ImageNameConverter, images.image_name_schema)
    for resource in RESOURCES:
        csrf.exempt(resource.bp)  # auth.authenticate checks CSRF for cookie sessions itself
        api.register_blueprint(resource.bp)


def before_request(csrf, request_endpoint):
    """Authenticate an API request (see auth.authenticate); None to go on."""
    if request_endpoint in PUBLIC_ENDPOINTS:
        return None
    return auth.authenticate(csrf)
