"""Two controllers, one Nube (issue 13): each with its own instance folder, web server and
queue consumer, sharing one PostgreSQL, one Redis, the repository and CLUSTER_KEY, all
started here and stopped by pid. Operations sent to both web servers all run, each once; the
monitor makes one pass per interval whichever consumer holds its lease; a consumer killed in
the middle of an operation is recovered by the other one."""

import json
import os
import signal
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app.db import STAMP_FORMAT, get_db
from app.repositories import operations as ops_repo
from app.services import tokens, users
from tests import pg_server
from tests.conftest import make_image
from tests.processes import Consumer, Server, app_for
from tests.redis_server import RedisServer
from tests.redis_server import unavailable_reason as redis_unavailable
from tests.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INTERVAL = 2.0  # MONITOR_INTERVAL: short, so a minute holds many passes
VMS = 100  # each created and removed: 200 operations
IMAGE = "base.qcow2"
TERMINAL = ("succeeded", "failed", "canceled", "interrupted")


class Controller:
    """One controller: a consumer (monitor included) and a web server on a shared env."""

    def __init__(self, env, logs, name):
        self.env, self.logs, self.name = env, logs, name
        self.consumer = self._consumer()
        self.server = Server(env, workers=1, threads=4, log=open(logs / f"{name}-web.log", "ab"))  # noqa: SIM115

    def _consumer(self):
        """Start this controller's consumer (its periodic monitor too)."""
        return Consumer(self.env, workers=2, periodic=True, log=self.logs / f"{self.name}.log")

    def restart_consumer(self):
        """A new consumer after the old one was killed."""
        self.consumer = self._consumer()

    def stop(self):
        """Stop the web server and the consumer by pid."""
        self.server.stop()
        self.consumer.stop()


class Api:
    """JSON requests with a Bearer token."""

    def __init__(self, token):
        self.token = token

    def call(self, url, method="GET", body=None):
        """One request; (status, JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def act(self, base, method, path, body=None):
        """An action; the id of the operation it started."""
        status, answer = self.call(f"{base}/api/v1{path}", method, body)
        assert status == 202, (path, status, answer)
        return answer["operation"]["id"]

    def operation(self, base, op_id):
        """An operation as the API shows it."""
        return self.call(f"{base}/api/v1/operations/{op_id}")[1]


@pytest.fixture(scope="module")
def cluster(lab_hosts):
    """PostgreSQL, Redis and two controllers (c1, c2) on them; everything stopped by pid."""
    for reason in (pg_server.unavailable_reason(), redis_unavailable()):
        if reason:
            pytest.fail(reason)
    top = Path(tempfile.mkdtemp(prefix="nube-two-"))
    top.chmod(0o755)  # QEMU traverses every folder above the disks
    postgres, redis = pg_server.PostgresServer(), RedisServer()
    controllers = []
    try:
        postgres.start()
        redis.start()
        base = {
            **os.environ,
            "NUBE_DATABASE": postgres.new_database(migrated=False),
            "NUBE_QUEUE": redis.url,
            "NUBE_CLUSTER_KEY": Fernet.generate_key().decode(),
            "NUBE_REPOSITORY": str(top / "export" / "iaas"),
            "NUBE_EXPORT": "none",
            "NUBE_MONITOR_INTERVAL": str(INTERVAL),
            # 100 never-started VMs of 1 vCPU on two 2-CPU lab hosts: this test is about the
            # queue, not about how many vCPUs a host may be given
            "NUBE_CPU_OVERCOMMIT": "64",
        }
        base.pop("NUBE_SECRET_KEY", None)
        (top / "export" / "iaas" / "images").mkdir(parents=True)
        make_image(top / "export" / "iaas" / "images" / IMAGE, size="64M", fmt="qcow2").chmod(0o644)
        (top / "export" / "iaas" / "vms").mkdir(exist_ok=True)
        logs = top / "logs"
        logs.mkdir()
        envs = [{**base, "NUBE_INSTANCE_PATH": str(top / name)} for name in ("c1", "c2")]
        token = _admin_token(envs[0])
        controllers = [Controller(env, logs, f"c{n}") for n, env in enumerate(envs, 1)]
        yield {
            "controllers": controllers,
            "api": Api(token),
            "env": envs[0],
            "hosts": lab_hosts[:2],
        }
    finally:
        for controller in controllers:
            controller.stop()
        redis.stop()
        postgres.stop()
        subprocess.run(["rm", "-rf", str(top)], check=False)


def _admin_token(env):
    """An admin and an API token of theirs, written through the services."""
    app = app_for(env)
    with app.app_context():
        user = users.create("admin", "two-controllers-pw", "admin", "test")
        return tokens.create(user, "two-controllers", None, "test")[1]


def finished(api, base, op_id, timeout=600):
    """Wait for an operation to end; its final view."""
    return wait_for(
        lambda: (op := api.operation(base, op_id))["status"] in TERMINAL and op,
        timeout=timeout,
        interval=0.5,
        message=f"operation {op_id} did not end",
    )


def test_two_controllers_share_the_work_and_recover_each_other(cluster):
    c1, c2 = cluster["controllers"]
    api, (lab1, lab2) = cluster["api"], cluster["hosts"]
    host = {"user": lab1["user"], "share": "bind", "network": "none"}

    op = api.act(c1.server.url, "POST", "/hosts", {**host, "address": lab1["address"],
                 "password": lab1["password"], "name": "lab1"})  # fmt: skip
    assert finished(api, c2.server.url, op)["status"] == "succeeded"

    # a consumer killed in the middle of an operation: the other interrupts and undoes it
    op = api.act(c2.server.url, "POST", "/hosts", {**host, "address": lab2["address"],
                 "password": lab2["password"], "name": "lab2"})  # fmt: skip
    running = wait_for(
        lambda: (view := api.operation(c1.server.url, op))["status"] == "running" and view,
        timeout=60, interval=0.2, message="the second host add never started",
    )  # fmt: skip
    pid = int(running["worker"].rpartition(":")[2])
    victim = next(c for c in (c1, c2) if c.consumer.process.pid == pid)
    os.kill(pid, signal.SIGKILL)
    victim.consumer.process.wait()
    ended = finished(api, c1.server.url, op, timeout=180)  # a monitor pass of the survivor
    assert ended["status"] == "interrupted", ended
    log = api.call(f"{c1.server.url}/api/v1/operations/{op}")[1]["log"]
    assert any("is gone: interrupted" in line["message"] for line in log)
    victim.restart_consumer()

    # 200 operations from both web servers: every one runs, and runs once
    bases = [c1.server.url, c2.server.url]
    creates = [
        api.act(bases[n % 2], "POST", "/vms", {"id": f"two{n}", "image": IMAGE, "mem": 16,
                                               "host": "lab1"})
        for n in range(VMS)
    ]  # fmt: skip
    assert Counter(finished(api, bases[0], o)["status"] for o in creates) == {"succeeded": VMS}
    removes = [api.act(bases[n % 2], "DELETE", f"/vms/two{n}") for n in range(VMS)]
    assert Counter(finished(api, bases[1], o)["status"] for o in removes) == {"succeeded": VMS}

    app = app_for(cluster["env"])
    with app.app_context():
        conn = get_db()
        workers = set()
        for op_id in creates + removes:
            starts = [
                line
                for line in ops_repo.log_lines(conn, op_id)
                if " started by " in line["message"]
            ]
            assert len(starts) == 1, (op_id, starts)  # claimed once, run once
            workers.add(ops_repo.get(conn, op_id)["worker"])
    assert len({worker.rpartition(":")[2] for worker in workers}) >= 2  # both consumers worked
    # the monitor's passes: one sample of lab1 each; a minute of them at least
    samples = wait_for(lambda: len(rows := _samples(app, "lab1")) >= 20 and rows, timeout=150,
                       interval=1, message="20 monitor passes")  # fmt: skip
    stamps = [datetime.strptime(row[0], STAMP_FORMAT) for row in samples]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    # one pass per interval, whichever consumer makes it: never two passes close together
    assert min(gaps) >= INTERVAL * 0.75, gaps

    _quotas_hold_across_controllers(api, bases)

    op = api.act(c2.server.url, "DELETE", "/hosts/lab1")
    assert finished(api, c1.server.url, op)["status"] == "succeeded"


def _create_at_once(api, bases, sizes):
    """One VM creation per size, all at once from threads, alternating between controllers;
    the answers in order."""
    answers, start = [None] * len(sizes), threading.Barrier(len(sizes))

    def create(n):
        body = {"id": f"q{n}", "image": IMAGE, "mem": sizes[n], "project": "q", "host": "lab1"}
        start.wait()
        answers[n] = api.call(f"{bases[n % 2]}/api/v1/vms", "POST", body)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(len(sizes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _quotas_hold_across_controllers(api, bases):
    """40 creations at once, half to each controller, into a project with room for 5 VMs
    (then for 1,000 MiB of mixed sizes): exactly the room is taken, the rest are refused with
    the quota's message, and the usage shown equals the rows."""
    for quota, sizes in (({"vms": 5}, [16] * 40), ({"mem": 1000}, [64, 128, 256, 512] * 10)):
        status, _ = api.call(f"{bases[0]}/api/v1/projects", "POST", {"name": "q", "quota": quota})
        assert status == 201
        answers = _create_at_once(api, bases, sizes)
        made = [n for n, (status, _) in enumerate(answers) if status == 202]
        for status, body in answers:
            assert status == 202 or (
                status == 409 and "project q's quota is reached" in body["detail"]
            )
        for n in made:
            op_id = answers[n][1]["operation"]["id"]
            assert finished(api, bases[0], op_id)["status"] == "succeeded"
        project = api.call(f"{bases[1]}/api/v1/projects/q")[1]
        rows = api.call(f"{bases[1]}/api/v1/vms?q=project%20%3D%20q&limit=100")[1]["items"]
        assert sorted(vm["id"] for vm in rows) == sorted(f"q{n}" for n in made)
        assert project["usage"]["vms"] == len(rows)
        assert project["usage"]["mem"] == sum(vm["mem"] for vm in rows)
        if "vms" in quota:
            assert len(made) == 5
        else:
            assert project["usage"]["mem"] <= 1000
            refused = min(sizes[n] for n in range(len(sizes)) if n not in made)
            assert 1000 - project["usage"]["mem"] < refused
        removes = [api.act(bases[n % 2], "DELETE", f"/vms/q{n}") for n in made]
        assert all(finished(api, bases[0], o)["status"] == "succeeded" for o in removes)
        assert api.call(f"{bases[0]}/api/v1/projects/q", "DELETE")[0] == 204


def _samples(app, host_name):
    """The monitor's samples of one host, oldest first (one per pass)."""
    with app.app_context():
        return (
            get_db()
            .execute(
                "SELECT ts FROM host_samples WHERE host_id = (SELECT id FROM hosts WHERE name = ?)"
                " ORDER BY id",
                (host_name,),
            )
            .fetchall()
        )
