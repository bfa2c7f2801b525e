"""Numbers in a request (issue 9, finding 8): huge page numbers, ids and log offsets, and
digits that are not ASCII, never crash a page."""

import pytest

from app import core
from tests.factories import gen_prepared_host as _host


@pytest.mark.parametrize(
    "path",
    [
        "/vms/?page=" + "1" + "0" * 30,
        "/hosts/?page=" + "9" * 400,
        "/operations/?page=" + "1" + "0" * 30,
        "/users/audit?page=" + "1" + "0" * 30,
        "/operations/" + "1" + "0" * 30,
        "/hosts/" + "1" + "0" * 30,
        "/vms/?page=-5",
    ],
)
def test_huge_numbers_never_crash_a_page(admin_client, path):
    assert admin_client.get(path).status_code in (200, 404)


def test_a_huge_after_on_an_operation_log_is_bounded(app, admin_client, image):
    _host(app)
    with app.app_context():
        core.addVm({"id": "vm1", "image": image, "mem": 64})
    response = admin_client.get("/operations/1/log.json?after=" + "1" + "0" * 30)
    assert response.status_code == 200 and response.get_json()["log"] == []


# Found by the second review.


@pytest.mark.parametrize(
    "path", ["/hosts/?page=%C2%B2", "/live/hosts?ids=%C2%B2", "/operations/1/log.json?after=%C2%B2"]
)
def test_unicode_digits_are_not_numbers(admin_client, path):
    assert admin_client.get(path).status_code in (200, 400, 404)
