"""Each user's SSH keys (Account > SSH keys): kept once, checked, picked when creating a VM,
never usable by anyone else."""

from app import core
from app.db import get_db
from app.repositories import user_keys as keys_repo
from app.repositories import users as users_repo
from app.services import vms
from tests.conftest import csrf_token

ANN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMICYu7XmD8R1JIGCgRTwFjgABdHK2wsbcLtFXfTSb1z ann@laptop"
BOB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAvVEIN+LQImSRA/piX7141WtOYKT44oEG/bcGFPU0ty bob@desk"


def add_key(client, name, key):
    """Post the add-key form; the page it leads to, as text."""
    token = csrf_token(client, "/account/keys")
    answer = client.post(
        "/account/keys",
        data={"name": name, "public_key": key, "csrf_token": token},
        follow_redirects=True,
    )
    return answer.get_data(as_text=True)


def key_ids(app, username):
    """The ids of a user's kept keys."""
    with app.app_context():
        user = users_repo.by_username(get_db(), username)
        return [row["id"] for row in keys_repo.of_user(get_db(), user["id"])]


def test_keys_are_kept_checked_and_listed(app, operator_client):
    page = add_key(operator_client, "laptop", ANN)
    assert "Key laptop added." in page and 'data-key="laptop"' in page and "ann@laptop" in page
    assert "this key is already kept as laptop" in add_key(operator_client, "again", ANN)
    assert "you already have a key named laptop" in add_key(operator_client, "laptop", BOB)
    assert "not a public key" in add_key(operator_client, "bad", "-----BEGIN OPENSSH PRIVATE KEY")
    assert "one public key (one line)" in add_key(operator_client, "two", f"{ANN}\n{BOB}")
    assert len(key_ids(app, "oper")) == 1


def test_a_vm_takes_the_keys_its_creator_picks(app, operator_client, admin_client, host, image):
    add_key(operator_client, "laptop", ANN)
    add_key(admin_client, "desk", BOB)
    [mine] = key_ids(app, "oper")
    [theirs] = key_ids(app, "admin")
    token = csrf_token(operator_client, "/vms/new")
    form = {
        "id": "web1",
        "image": image,
        "mem": "64",
        "vcpus": "1",
        "host": "",
        "csrf_token": token,
    }
    # another user's key id is no choice of this user's: refused, nothing made
    refused = operator_client.post("/vms/new", data={**form, "saved_keys": str(theirs)})
    assert refused.status_code == 200
    with app.app_context():
        assert core.listVms() == []
    made = operator_client.post("/vms/new", data={**form, "saved_keys": str(mine)})
    assert made.status_code == 302
    with app.app_context():
        assert vms.first_boot("web1")["ssh_keys"] == [ANN]


def test_removing_a_key(app, operator_client):
    add_key(operator_client, "laptop", ANN)
    [key_id] = key_ids(app, "oper")
    token = csrf_token(operator_client, "/account/keys")
    operator_client.post(f"/account/keys/{key_id}/remove", data={"csrf_token": token})
    assert key_ids(app, "oper") == []
    page = operator_client.post(
        f"/account/keys/{key_id}/remove", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert f"key {key_id} not found" in page
