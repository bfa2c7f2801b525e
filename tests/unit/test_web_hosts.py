"""Host pages: list, add (prepared and not), edit, remove with typed confirmation."""

import re

from app import core
from tests.conftest import csrf_token


def add_ready_host(app, name="h1"):
    """A host registered without preparation (libvirt's test driver answers)."""
    with app.app_context():
        return core.addHost(
            {"address": "127.0.0.1", "user": "root", "prepare": False, "name": name}
        )


def test_empty_state_says_what_to_do(admin_client):
    page = admin_client.get("/hosts/").get_data(as_text=True)
    assert "No hosts yet" in page and 'href="/hosts/new"' in page


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
    page = admin_client.get("/hosts/").get_data(as_text=True)
    assert "lab1" in page and "ready" in page
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
    assert "not a host name or IP address" in response.get_data(as_text=True)
    with app.app_context():
        assert core.listHosts() == []


def test_host_detail_and_edit(app, admin_client):
    host = add_ready_host(app)
    page = admin_client.get(f"/hosts/{host['id']}").get_data(as_text=True)
    assert "h1" in page and "3.0 GiB" in page
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


def listed(page):
    """The host names a list page shows, in order (link texts, never tokens or scripts)."""
    return re.findall(r'<a href="/hosts/\d+">([^<]+)</a>', page)


def test_list_filter_sort_and_paging(app, admin_client):
    app.config["PAGE_SIZE"] = 2
    with app.app_context():
        for n in range(3):
            core.addHost(
                {"address": f"127.0.0.{n + 1}", "user": "root", "prepare": False, "name": f"n{n}"}
            )
    first = admin_client.get("/hosts/?sort=name").get_data(as_text=True)
    assert listed(first) == ["n0", "n1"] and "Page 1 of 2" in first
    assert listed(admin_client.get("/hosts/?sort=name&page=2").get_data(as_text=True)) == ["n2"]
    newest = admin_client.get("/hosts/?sort=name&dir=desc").get_data(as_text=True)
    assert listed(newest) == ["n2", "n1"]
    filtered = admin_client.get("/hosts/?q=name+%3D+n1").get_data(as_text=True)
    assert listed(filtered) == ["n1"]
    bad = admin_client.get("/hosts/?q=name+%3D%3D+x")
    assert bad.status_code == 200 and "position" in bad.get_data(as_text=True)


def test_unknown_host_is_404(admin_client):
    assert admin_client.get("/hosts/999").status_code == 404
