"""Host pages: list, add (prepared and not), edit, remove with typed confirmation."""

from app import core
from tests.conftest import csrf_token
from tests.factories import gen_host
from tests.html import page


def add_ready_host(app, name="h1"):
    """A host registered without preparation (libvirt's test driver answers)."""
    return gen_host(app, name=name)


def test_empty_state_says_what_to_do(admin_client):
    empty = page(admin_client.get("/hosts/")).by_id("empty-state")
    assert empty.text.startswith("No hosts yet") and empty.link("/hosts/new")


def test_add_host_through_the_form(app, admin_client, provisioner):
    token = csrf_token(admin_client, "/hosts/new")
    response = admin_client.post(
        "/hosts/new",
        data={
            "address": "127.0.0.1",
            "name": "lab1",
            "user": "nube",
            "password": "pw-secret",
            "share": "bind",
            "network": "none",
            "prepare": "y",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302 and "/operations/" in response.location
    assert provisioner.runs[0].playbook == "host_add.yaml"
    row = page(admin_client.get("/hosts/")).one("tr", data_host_id="1")
    assert row.link("/hosts/1").text == "lab1"
    assert row.has_element("span", class_="status-ready", text="ready")
    # a secret must appear nowhere in the markup, attributes and scripts included
    assert "pw-secret" not in admin_client.get("/hosts/1").get_data(as_text=True)


def test_add_host_error_is_shown_and_nothing_added(app, admin_client):
    token = csrf_token(admin_client, "/hosts/new")
    response = admin_client.post(
        "/hosts/new",
        data={
            "address": "bad address!",
            "user": "nube",
            "share": "nfs",
            "network": "default",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert page(response).alert("not a host name or IP address", "danger")
    with app.app_context():
        assert core.listHosts() == []


def test_host_detail_and_edit(app, admin_client):
    host = add_ready_host(app)
    doc = page(admin_client.get(f"/hosts/{host['id']}"))
    assert doc.one("h1").text.startswith("h1 ")
    assert doc.details()["Memory"].one(data_field="mem").text == "3.0 GiB"
    token = csrf_token(admin_client, f"/hosts/{host['id']}/edit")
    response = admin_client.post(
        f"/hosts/{host['id']}/edit",
        data={
            "name": "renamed",
            "user": "root",
            "network": "default",
            "address": "127.0.0.1",
            "share": "nfs",
            "state": "disabled",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    with app.app_context():
        [updated] = core.listHosts()
    assert updated["name"] == "renamed" and updated["state"] == "disabled"


def test_remove_needs_the_typed_name(app, admin_client):
    host = add_ready_host(app)
    token = csrf_token(admin_client, f"/hosts/{host['id']}")
    response = admin_client.post(
        f"/hosts/{host['id']}/remove", data={"confirm": "wrong", "csrf_token": token}
    )
    assert response.status_code == 302
    with app.app_context():
        assert len(core.listHosts()) == 1
    response = admin_client.post(
        f"/hosts/{host['id']}/remove", data={"confirm": "h1", "csrf_token": token}
    )
    assert response.status_code == 302 and "/operations/" in response.location
    with app.app_context():
        assert core.listHosts() == []


def test_remove_without_csrf_is_refused(app, admin_client):
    host = add_ready_host(app)
    response = admin_client.post(f"/hosts/{host['id']}/remove", data={"confirm": "h1"})
    assert response.status_code == 400
    with app.app_context():
        assert len(core.listHosts()) == 1


def listed(response):
    """The host names a list page shows, in order (its rows' name links)."""
    rows = page(response).rows(data_host_id=True)
    return [row.link(f"/hosts/{row['data-host-id']}").text for row in rows]


def test_list_filter_sort_and_paging(app, admin_client):
    app.config["PAGE_SIZE"] = 2
    for n in range(3):
        gen_host(app, address=f"127.0.0.{n + 1}", name=f"n{n}")
    first = admin_client.get("/hosts/?sort=name")
    assert listed(first) == ["n0", "n1"]
    assert page(first).pager().one("span", class_="page-link").text.startswith("Page 1 of 2")
    assert listed(admin_client.get("/hosts/?sort=name&page=2")) == ["n2"]
    assert listed(admin_client.get("/hosts/?sort=name&dir=desc")) == ["n2", "n1"]
    assert listed(admin_client.get("/hosts/?q=name+%3D+n1")) == ["n1"]
    bad = admin_client.get("/hosts/?q=name+%3D%3D+x")
    assert bad.status_code == 200 and "position" in page(bad).by_id("filter-error").text


def test_unknown_host_is_404(admin_client):
    assert admin_client.get("/hosts/999").status_code == 404
