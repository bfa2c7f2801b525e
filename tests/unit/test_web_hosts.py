"""Host pages: list, add (prepared and not), edit, remove with typed confirmation."""

import pytest

from app import core
from app.db import get_db
from app.errors import HostKeyChanged
from app.repositories import hosts as hosts_repo
from app.repositories import operations as ops_repo
from tests.conftest import csrf_token
from tests.factories import gen_host, gen_operation, gen_vm
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
    assert "not a host name or IP address" in " ".join(page(response).field_errors())
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


def _host_page(client, host):
    """A host's page, parsed."""
    return page(client.get(f"/hosts/{host['id']}"))


def _host_operation(conn, host):
    """A pending host.prepare operation row on host; its id."""
    return gen_operation(conn, "host.prepare", f"host:{host['id']}", host["name"])


def test_the_new_key_form_shows_only_after_a_key_change_was_refused(app, admin_client):
    host = add_ready_host(app)
    assert _host_page(admin_client, host).find(id="accept-key") is None
    refusal = str(HostKeyChanged("127.0.0.1", ["SHA256:old"], ["SHA256:new"]))
    with app.app_context():
        conn = get_db()
        op_id = _host_operation(conn, host)
        ops_repo.finish(conn, op_id, "failed", error=refusal)
    assert _host_page(admin_client, host).by_id("accept-key").has("open")
    with app.app_context():
        conn = get_db()
        hosts_repo.update(conn, host["id"], state="unreachable", error=refusal)
        ops_repo.finish(conn, _host_operation(conn, host), "succeeded")
    assert _host_page(admin_client, host).by_id("accept-key")  # the monitor's refusal
    with app.app_context():
        hosts_repo.update(get_db(), host["id"], state="ready", error=None)
    assert _host_page(admin_client, host).find(id="accept-key") is None


def test_virtualisation_says_what_the_domains_run_under(app, admin_client):
    host = add_ready_host(app)
    with app.app_context():
        hosts_repo.update(get_db(), host["id"], kvm=1)
    assert _host_page(admin_client, host).details()["Virtualisation"].text == "KVM"
    app.config["VIRT_TYPE"] = "qemu"
    text = _host_page(admin_client, host).details()["Virtualisation"].text
    assert text == "QEMU (TCG: VIRT_TYPE is qemu, though the host has KVM)"
    with app.app_context():
        hosts_repo.update(get_db(), host["id"], kvm=0)
    app.config["VIRT_TYPE"] = "auto"
    assert _host_page(admin_client, host).details()["Virtualisation"].text == "QEMU (TCG, no KVM)"


def test_the_removal_card_says_what_goes_and_the_name_field_is_empty(app, admin_client, image):
    host = add_ready_host(app)
    card = _host_page(admin_client, host).by_id("host-remove-form").ancestor(class_="card-body")
    assert card.one("p", class_="small").text.startswith("No VM runs here. Removing the host")
    confirm = card.field("confirm")
    assert confirm["placeholder"] == "host name" and not confirm.get("value")
    gen_vm(app, image, "vm1")
    card = _host_page(admin_client, host).by_id("host-remove-form").ancestor(class_="card-body")
    assert card.one("p", class_="small").text.startswith(
        "This forces off and removes 1 VM and its disk (vm1), then undoes"
    )


def test_the_repository_mount_follows_the_controllers_export(app, admin_client):
    form = page(admin_client.get("/hosts/new")).by_id("host-form")
    assert [o["value"] for o in form.field("share").options() if o.has("selected")] == ["nfs"]
    app.config["EXPORT"] = "none"
    form = page(admin_client.get("/hosts/new")).by_id("host-form")
    assert [o["value"] for o in form.field("share").options() if o.has("selected")] == ["bind"]
    fields = {"address": "127.0.0.1", "user": "root", "prepare": False, "network": "none"}
    with app.app_context():
        with pytest.raises(core.InvalidInput, match="EXPORT=none\\): use share bind"):
            core.addHost({**fields, "share": "nfs"})
        assert core.listHosts() == []
        host = core.addHost(fields)
        assert host["share"] == "bind"
        with pytest.raises(core.InvalidInput, match="use share bind"):
            core.updateHost(host["id"], {"share": "nfs"})
        assert core.listHosts()[0]["share"] == "bind"


def test_a_failed_add_offers_its_form_again_without_the_password(app, admin_client, provisioner):
    provisioner.fail["host_add.yaml"] = "host_add.yaml: 127.0.0.1 refused the sudo user's password"
    token = csrf_token(admin_client, "/hosts/new")
    fields = {"address": "127.0.0.1", "name": "lab1", "user": "nube", "share": "bind"}
    response = admin_client.post(
        "/hosts/new",
        data={
            **fields,
            "password": "pw-wrong",
            "network": "none",
            "prepare": "y",
            "csrf_token": token,
        },
    )
    op_page = page(admin_client.get(response.location))
    again = op_page.by_id("host-form-again")
    assert "pw-wrong" not in again["href"]
    form = page(admin_client.get(again["href"])).by_id("host-form")
    assert form.field("user")["value"] == "nube"
    assert form.field("address")["value"] == "127.0.0.1" and form.field("name")["value"] == "lab1"
    assert [o["value"] for o in form.field("share").options() if o.has("selected")] == ["bind"]
    assert form.field("network")["value"] == "none" and not form.field("password").get("value")
