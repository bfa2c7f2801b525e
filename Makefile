# Nube: `make run` serves the dashboard, `make test` runs every test tier.
# Both install what is missing first (Debian packages, the virtualenv).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= $(or $(NUBE_WORKERS),4)

# Debian packages: the controller's tools, libvirt/QEMU for hosts (lab hosts share this
# machine's packages; iproute2 and nftables for their namespaces and the isolation test),
# sshpass/sudo for Ansible, what libvirt-python builds against, and the
# image builder's tools (image.build: mmdebstrap, GRUB's BIOS images, mkfs.ext4 -d, sfdisk),
# virt-sysprep and a kernel for its appliance (image.save; containers have none in /boot), and
# the servers the tests start themselves for QUEUE=redis:// and DATABASE=postgresql:// (their
# system services are not used).
SYSTEM_PACKAGES := libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils \
	libvirt-dev pkg-config gcc python3-dev openssh-server openssh-client sshpass sudo \
	nfs-common util-linux procps iproute2 nftables chromium libnfs-utils \
	mmdebstrap grub-pc-bin e2fsprogs fdisk redis-server postgresql \
	libguestfs-tools linux-image-cloud-amd64

.PHONY: run test lint unit unit-postgresql integration browser screenshots bench lab lab-down system venv clean help

help:
	@echo "make run    install what is missing, initialise, serve http://$(HOST):$(PORT)"
	@echo "make test   install what is missing, then lint and every test tier"
	@echo "make bench  benchmarks; figures in bench-results.json"
	@echo "make lab    start two lab hosts (make lab-down stops them)"

system:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The pins, then this project itself, editable and with no dependencies of its own (the pins
# stay as they are): that installs the `nube` console script into $(BIN).
$(BIN)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# noVNC for the VM console, from its npm package, and ESLint for `make lint` (devDependencies,
# included even where npm is told to omit them): installed, never committed.
NOVNC := static/node_modules/@novnc/novnc/core/rfb.js
$(NOVNC): static/package.json static/package-lock.json
	npm ci --prefix static --include=dev --no-audit --no-fund --loglevel=error
	touch $@

venv: system $(BIN)/.installed $(NOVNC)

run: venv
	@set -euo pipefail; \
	export PATH="$(CURDIR)/$(BIN):$$PATH"; \
	if [ "$${NUBE_NFS_SERVER:-kernel}" = kernel ] && [ -z "$${NUBE_EXPORT:-}" ] \
		&& ! grep -qw nfsd /proc/filesystems && ! modprobe -q nfsd 2>/dev/null; then \
		echo "No kernel NFS server on this machine: using NUBE_EXPORT=none (hosts must use share=bind;"; \
		echo "set NUBE_NFS_SERVER=ganesha for a userspace NFS export)."; \
		export NUBE_EXPORT=none; \
	fi; \
	$(BIN)/python -m app.localdaemons; \
	$(BIN)/flask --app wsgi nube ensure-admin; \
	$(BIN)/flask --app wsgi nube recover; \
	$(BIN)/flask --app wsgi nube init || echo "Controller initialisation failed: see the overview page."; \
	$(BIN)/huey_consumer app.worker.huey -k thread -w $(WORKERS) -q & consumer=$$!; \
	$(BIN)/python -m app.console & console=$$!; \
	trap 'kill $$consumer $$console 2>/dev/null; wait $$consumer $$console 2>/dev/null' EXIT INT TERM; \
	echo "Nube dashboard: http://$(HOST):$(PORT)/"; \
	$(BIN)/gunicorn --workers 2 --threads 4 --bind $(HOST):$(PORT) --access-logfile - wsgi:app

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pylint --disable=all --enable=cyclic-import,duplicate-code --min-similarity-lines=6 \
		--score=n app
	$(BIN)/python -m tests.complexity app 15
	cd plays && for play in *.yaml; do ../$(BIN)/ansible-playbook --syntax-check -i localhost, $$play || exit 1; done
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ansible-lint --offline -q plays/
	cd static && ./node_modules/.bin/eslint --max-warnings 0 .

# The unit tier runs on every core (pytest-xdist: each worker its own temp databases, test
# driver and servers); the lab tiers share one set of lab hosts, so they run in one process.
UNIT_WORKERS ?= $(shell nproc)

unit: venv
	$(BIN)/pytest -q -n $(UNIT_WORKERS) tests/unit
	NUBE_TEST_DATABASE=postgresql $(BIN)/pytest -q -n $(UNIT_WORKERS) tests/unit

# The unit tier again on a PostgreSQL server the fixtures start (tests/pg_server.py).
unit-postgresql: venv
	NUBE_TEST_DATABASE=postgresql $(BIN)/pytest -q -n $(UNIT_WORKERS) tests/unit

integration: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q tests/integration

browser: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q tests/browser

# make test's PostgreSQL run repeats a statement-covering set of the unit tests the SQLite run
# traced (every distinct SQL statement at least once, every racing test: tests/sql_coverage.py);
# `make unit-postgresql` runs them all.
SQL_TRACE = build/sql-trace/unit

# The linters and the unit tier (SQLite, then PostgreSQL) run beside the lab tiers, the unit
# tier with one worker: the lab tiers spend most of their time waiting on guests, plays and
# migrations. Their output is printed once the lab tiers end; make test fails when either does.
UNIT_BESIDE_WORKERS ?= 1
UNIT_LOG = build/unit-tier.log

test: venv
	@mkdir -p build; \
	( $(MAKE) --no-print-directory lint \
	  && NUBE_SQL_TRACE=$(SQL_TRACE) $(BIN)/pytest -q -n $(UNIT_BESIDE_WORKERS) --durations=5 tests/unit \
	  && NUBE_TEST_DATABASE=postgresql NUBE_SQL_COVER=$(SQL_TRACE) \
	     $(BIN)/pytest -q -n $(UNIT_BESIDE_WORKERS) tests/unit ) > $(UNIT_LOG) 2>&1 & unit=$$!; \
	echo "lint and unit tier running beside the lab tiers (pid $$unit, output in $(UNIT_LOG))"; \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q --durations=15 tests/browser tests/integration; \
	lab=$$?; \
	wait $$unit; unit_status=$$?; \
	echo "--- lint, then the unit tier (SQLite, then PostgreSQL) ---"; cat $(UNIT_LOG); \
	echo "lab tiers: exit $$lab; lint and unit tier: exit $$unit_status"; \
	test $$lab -eq 0 && test $$unit_status -eq 0

# The README's pictures: the browser tier, writing into tests/screenshots (tracked).
screenshots: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" NUBE_SCREENSHOTS="$(CURDIR)/tests/screenshots" $(BIN)/pytest -q tests/browser

bench: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m tests.bench.run

lab: venv
	$(BIN)/python tests/lab/lab.py up 2
	@echo "Each line above is a lab host: its own network namespace 'netns' (run a command in it"
	@echo "with: ip netns exec nube-lab1 ip addr), whose sshd you reach at 'address' port 22 as"
	@echo "'user' with 'password', and whose 'data_address' is on the lab's underlay (198.18.0.0/24,"
	@echo "only inside the lab's namespaces). Add each host in the dashboard (Hosts > Add host) with"
	@echo "the address, user, password and data address above, 'VM network' set to none and"
	@echo "'Repository mount' set to bind (proposed when the controller exports nothing)."
	@echo "Stop them with: make lab-down"

lab-down:
	$(BIN)/python tests/lab/lab.py down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache bench-results.json build
