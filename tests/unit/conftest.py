"""Fixtures of the unit tier's API tests: clients that send an admin's or an operator's token."""

import pytest

from tests.api_client import Api, make_token


@pytest.fixture
def admin_api(app):
    """An admin's API client."""
    return Api(app, make_token(app, "admin"))


@pytest.fixture
def operator_api(app):
    """An operator's API client."""
    return Api(app, make_token(app, "oper", "oper-token"))
