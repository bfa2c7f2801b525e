"""Ordered schema migrations, one set for SQLite and PostgreSQL: each runs in one write
transaction that first re-reads the schema version, so two processes starting on an old
database never run a migration twice. SQLite records the version in `PRAGMA user_version`,
PostgreSQL in the table `schema_version`.

The scripts are written for SQLite; `postgresql_script` translates the little that differs
(row ids, REAL), and POSTGRESQL_INSTEAD / POSTGRESQL_AFTER hold what cannot be translated.
"""

REBUILDS = "-- rebuilds a table"  # the first line of a migration _rebuild must run

MIGRATIONS = [
    # 1: the first schema.
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
        created_at TEXT NOT NULL,
        last_login TEXT
    );

    CREATE TABLE hosts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        address TEXT NOT NULL UNIQUE,
        "user" TEXT NOT NULL,
        password_enc TEXT,
        state TEXT NOT NULL CHECK (state IN
            ('preparing', 'ready', 'error', 'unreachable', 'disabled', 'removing')),
        share TEXT NOT NULL DEFAULT 'nfs' CHECK (share IN ('nfs', 'bind')),
        network TEXT NOT NULL DEFAULT 'default',
        cpus INTEGER,
        mem INTEGER,
        free_mem INTEGER,
        kvm INTEGER NOT NULL DEFAULT 0,
        host_key TEXT,
        task TEXT,
        task_op INTEGER,
        error TEXT,
        last_seen TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX hosts_state ON hosts (state);

    CREATE TABLE images (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        uploaded_by TEXT,
        created_at TEXT NOT NULL
    );

    CREATE TABLE vms (
        id TEXT PRIMARY KEY,
        host_id INTEGER NOT NULL REFERENCES hosts (id),
        image TEXT NOT NULL,
        mem INTEGER NOT NULL,
        vcpus INTEGER NOT NULL DEFAULT 1,
        state TEXT NOT NULL CHECK (state IN ('stopped', 'running', 'error', 'unknown')),
        task TEXT,
        task_op INTEGER,
        last_seen TEXT,
        created_by TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX vms_host ON vms (host_id);
    CREATE INDEX vms_state ON vms (state, id);
    CREATE INDEX vms_image ON vms (image);

    CREATE TABLE operations (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target_id TEXT,
        target_name TEXT,
        status TEXT NOT NULL CHECK (status IN
            ('pending', 'running', 'succeeded', 'failed', 'canceled', 'interrupted')),
        requested_by TEXT,
        input TEXT NOT NULL DEFAULT '{}',
        result TEXT,
        error TEXT,
        worker TEXT,
        heartbeat TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        progress_done INTEGER NOT NULL DEFAULT 0,
        progress_total INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    );
    CREATE INDEX operations_status ON operations (status);
    CREATE INDEX operations_target ON operations (target_type, target_id);

    CREATE TABLE operation_log (
        id INTEGER PRIMARY KEY,
        operation_id INTEGER NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
        ts TEXT NOT NULL,
        level TEXT NOT NULL DEFAULT 'info',
        message TEXT NOT NULL
    );
    CREATE INDEX operation_log_op ON operation_log (operation_id, id);

    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        actor TEXT,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT,
        remote_addr TEXT
    );
    CREATE INDEX audit_ts ON audit (ts);
    CREATE INDEX audit_actor ON audit (actor, ts);

    CREATE TABLE login_failures (
        id INTEGER PRIMARY KEY,
        remote_addr TEXT NOT NULL,
        ts REAL NOT NULL
    );
    CREATE INDEX login_failures_addr ON login_failures (remote_addr, ts);
    """,
    # 2: what the monitor finds: drift between libvirt and the database, and capacity samples.
    """
    CREATE TABLE drift (
        id INTEGER PRIMARY KEY,
        host_id INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('unknown_domain', 'missing_domain')),
        name TEXT NOT NULL,
        detected_at TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        UNIQUE (host_id, kind, name)
    );

    CREATE TABLE host_samples (
        id INTEGER PRIMARY KEY,
        host_id INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
        ts TEXT NOT NULL,
        free_mem INTEGER,
        vm_count INTEGER NOT NULL,
        running INTEGER NOT NULL
    );
    CREATE INDEX host_samples_host ON host_samples (host_id, id);
    """,
    # 3: console links: single-use, short-lived, bound to a user and a VM; only a hash is kept.
    """
    CREATE TABLE console_tokens (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        vm_id TEXT NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT,
        used_from TEXT
    );
    CREATE INDEX console_tokens_expires ON console_tokens (expires_at);
    CREATE INDEX console_tokens_vm ON console_tokens (vm_id);
    CREATE INDEX console_tokens_user ON console_tokens (user_id);
    """,
    # 4: whether Nube prepared the host (ran host_add.yaml), so removal undoes only its own work.
    """
    ALTER TABLE hosts ADD COLUMN prepared INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: releasing the tasks an operation holds looks them up by operation.
    """
    CREATE INDEX vms_task_op ON vms (task_op) WHERE task_op IS NOT NULL;
    CREATE INDEX hosts_task_op ON hosts (task_op) WHERE task_op IS NOT NULL;
    """,
    # 6: a host's stored password only goes to the address it was given for; server-side
    # sessions that logout, a password change or a removal end; login attempts throttled per
    # account and per address, each attempt reserved before its password is checked.
    """
    ALTER TABLE hosts ADD COLUMN password_address TEXT;
    UPDATE hosts SET password_address = address WHERE password_enc IS NOT NULL;
    CREATE TABLE user_sessions (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        remote_addr TEXT
    );
    CREATE INDEX user_sessions_user ON user_sessions (user_id);
    DROP TABLE login_failures;
    CREATE TABLE login_attempts (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL,
        remote_addr TEXT NOT NULL,
        ts REAL NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'failed'))
    );
    CREATE INDEX login_attempts_user ON login_attempts (username, ts);
    CREATE INDEX login_attempts_addr ON login_attempts (remote_addr, ts);
    """,
    # 7: the monitor counts a host's missed readings in a row, and since when (epoch seconds),
    # before it calls the host unreachable.
    """
    ALTER TABLE hosts ADD COLUMN misses INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE hosts ADD COLUMN missing_since REAL;
    """,
    # 8: a VM's first-boot configuration (cloud-init NoCloud seed); NULL hostname for VMs made
    # before seeds existed.
    """
    ALTER TABLE vms ADD COLUMN hostname TEXT;
    ALTER TABLE vms ADD COLUMN ssh_keys TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE vms ADD COLUMN user_data TEXT NOT NULL DEFAULT '';
    """,
    # 9: host state 'maintenance' (placement skips it, its VMs keep running). SQLite cannot
    # change a CHECK in place: the table is rebuilt (same columns, same ids; see _rebuild).
    """
    -- rebuilds a table
    CREATE TABLE hosts_new (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        address TEXT NOT NULL UNIQUE,
        "user" TEXT NOT NULL,
        password_enc TEXT,
        state TEXT NOT NULL CHECK (state IN ('preparing', 'ready', 'error', 'unreachable',
            'disabled', 'removing', 'maintenance')),
        share TEXT NOT NULL DEFAULT 'nfs' CHECK (share IN ('nfs', 'bind')),
        network TEXT NOT NULL DEFAULT 'default',
        cpus INTEGER,
        mem INTEGER,
        free_mem INTEGER,
        kvm INTEGER NOT NULL DEFAULT 0,
        host_key TEXT,
        task TEXT,
        task_op INTEGER,
        error TEXT,
        last_seen TEXT,
        created_at TEXT NOT NULL,
        prepared INTEGER NOT NULL DEFAULT 0,
        password_address TEXT,
        misses INTEGER NOT NULL DEFAULT 0,
        missing_since REAL
    );
    INSERT INTO hosts_new SELECT id, name, address, "user", password_enc, state, share, network,
        cpus, mem, free_mem, kvm, host_key, task, task_op, error, last_seen, created_at,
        prepared, password_address, misses, missing_since FROM hosts;
    DROP TABLE hosts;
    ALTER TABLE hosts_new RENAME TO hosts;
    CREATE INDEX hosts_state ON hosts (state);
    CREATE INDEX hosts_task_op ON hosts (task_op) WHERE task_op IS NOT NULL;
    """,
    # 10: API tokens (issue 12): a user's named bearer tokens for /api/v1. Only a hash is kept
    # (the table authenticates nobody), the prefix tells them apart on a page, and a revoked
    # token keeps its row for the record; removing the user removes them.
    """
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        last_used_at TEXT,
        revoked_at TEXT,
        revoked_by TEXT
    );
    CREATE INDEX api_tokens_user ON api_tokens (user_id);
    """,
    # 11: what every controller of one Nube shares (issue 13): session signing, the host
    # passwords' key, the SSH key pair; each value encrypted with CLUSTER_KEY.
    """
    CREATE TABLE controller_secrets (
        name TEXT PRIMARY KEY,
        value_enc TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 12: a host's recorded SSH keys carry the controller's MAC (issue 20): known_hosts is
    # rebuilt only from rows a controller wrote, never from one planted in the database.
    """
    ALTER TABLE hosts ADD COLUMN host_key_mac TEXT;
    """,
    # 13: the other targets an operation touches (a drain's VMs, a host removal's VMs), so
    # that each target's history lists it too.
    """
    CREATE TABLE operation_targets (
        operation_id INTEGER NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
        target_type TEXT NOT NULL,
        target_id TEXT NOT NULL,
        PRIMARY KEY (operation_id, target_type, target_id)
    );
    CREATE INDEX operation_targets_target ON operation_targets (target_type, target_id);
    """,
    # 14: a host's data address, where live migrations reach it (QEMU listens there only);
    # NULL: its address.
    """
    ALTER TABLE hosts ADD COLUMN data_address TEXT;
    """,
    # 15: projects (issue 21): every VM belongs to one; quotas are limits only (NULL: none),
    # usage is always counted from the rows. Existing VMs move into the project `default`.
    # A VM's disk records its virtual size in GiB (NULL until measured: older rows).
    """
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL DEFAULT '',
        quota_vms INTEGER,
        quota_vcpus INTEGER,
        quota_mem INTEGER,
        quota_disk INTEGER,
        created_at TEXT
    );
    CREATE TABLE project_members (
        project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        PRIMARY KEY (project_id, user_id)
    );
    CREATE INDEX project_members_user ON project_members (user_id);
    INSERT INTO projects (name, description)
        VALUES ('default', 'What was made before projects existed');
    ALTER TABLE vms ADD COLUMN project_id INTEGER REFERENCES projects (id);
    ALTER TABLE vms ADD COLUMN disk INTEGER;
    UPDATE vms SET project_id = (SELECT id FROM projects WHERE name = 'default');
    CREATE INDEX vms_project ON vms (project_id, id);
    """,
    # 16: the role `member` (issue 21): a project's member, who sees only their projects.
    """
    -- rebuilds a table
    CREATE TABLE users_new (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'member')),
        created_at TEXT NOT NULL,
        last_login TEXT
    );
    INSERT INTO users_new SELECT id, username, password_hash, role, created_at, last_login
        FROM users;
    DROP TABLE users;
    ALTER TABLE users_new RENAME TO users;
    """,
    # 17: each user's SSH public keys (Account > SSH keys), picked from when creating a VM.
    """
    CREATE TABLE user_keys (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (user_id, name),
        UNIQUE (user_id, fingerprint)
    );
    """,
    # 18: the project an operation is about (a VM's), so that a member sees their projects'
    # operations and no other; operations on hosts, images and the controller have none. Past
    # operations go to the project of the VM they were about only when that VM exists and is
    # not younger than them: a removed VM's history, or an earlier VM's of the same name, stays
    # with the operators and admins.
    """
    ALTER TABLE operations ADD COLUMN project_id INTEGER;
    UPDATE operations SET project_id = (SELECT v.project_id FROM vms v
        WHERE v.id = operations.target_id AND v.created_at <= operations.created_at)
        WHERE target_type = 'vm';
    CREATE INDEX operations_project ON operations (project_id, id);
    """,
    # 19: volumes, files in the repository's volumes/ (id is the volume's name, also the serial
    # the guest sees); each attached to at most one VM, at one target of that VM.
    """
    CREATE TABLE volumes (
        id TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        format TEXT NOT NULL DEFAULT 'qcow2',
        image TEXT,
        vm_id TEXT REFERENCES vms (id),
        target TEXT,
        state TEXT NOT NULL CHECK (state IN ('available', 'in-use', 'missing', 'error')),
        task TEXT,
        task_op INTEGER,
        project_id INTEGER REFERENCES projects (id),
        created_by TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (vm_id, target)
    );
    CREATE INDEX volumes_vm ON volumes (vm_id);
    CREATE INDEX volumes_project ON volumes (project_id, id);
    """,
    # 20: what an image is, beside who added it: its OS (e.g. debian-12), the SHA-256 of the
    # file Nube wrote (build, upload, import, save; none for a file found in images/), where it
    # came from (build, upload, import, vm) and, for an import, the URL it was fetched from.
    # Format and virtual size stay the file's own (qemu-img info), never copied here.
    """
    ALTER TABLE images ADD COLUMN os TEXT;
    ALTER TABLE images ADD COLUMN sha256 TEXT;
    ALTER TABLE images ADD COLUMN source TEXT;
    ALTER TABLE images ADD COLUMN source_url TEXT;
    """,
    # 21: VM snapshots. Each is a qcow2 internal snapshot ("nube-<name>") in the VM's disk and
    # in each volume attached when it was taken (snapshot_volumes), so it lives in the files
    # the repository shares and moves with them; these rows are Nube's record of them (libvirt
    # keeps none: see app/services/snapshot_work.py). size: the bytes the files held when it
    # was taken (what it keeps from being freed, at most), counted in the project's disk.
    """
    CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY,
        vm_id TEXT NOT NULL REFERENCES vms (id),
        name TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'removing', 'error')),
        frozen INTEGER,
        size INTEGER NOT NULL DEFAULT 0,
        created_by TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (vm_id, name)
    );
    CREATE TABLE snapshot_volumes (
        snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
        volume TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, volume)
    );
    CREATE INDEX snapshot_volumes_volume ON snapshot_volumes (volume);
    """,
    # 22: virtual networks (issue 24). A vxlan network is an overlay with its VNI; a bridge
    # network an existing host bridge. Addresses are handed out from [pool_first, pool_last]
    # (as integers, so the next free one is found in order); vm_nics holds each VM's NICs, one
    # address per NIC, unique in its network by constraint as well as by the request's write
    # lock (BIGINT: an IPv4 address passes PostgreSQL's INTEGER). host_networks records which
    # networks Nube made on which host; hosts.networks_state
    # the last state applied there (NULL: never given a network; empty: apply again).
    """
    CREATE TABLE networks (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL CHECK (type IN ('vxlan', 'bridge')),
        vni INTEGER UNIQUE,
        bridge TEXT,
        cidr TEXT NOT NULL,
        gateway TEXT,
        dns TEXT NOT NULL DEFAULT '',
        pool_first BIGINT NOT NULL,
        pool_last BIGINT NOT NULL,
        mtu INTEGER,
        project_id INTEGER REFERENCES projects (id),
        created_by TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX networks_project ON networks (project_id, name);
    CREATE TABLE vm_nics (
        id INTEGER PRIMARY KEY,
        vm_id TEXT NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        network_id INTEGER NOT NULL REFERENCES networks (id),
        ip TEXT NOT NULL,
        ip_number BIGINT NOT NULL,
        mac TEXT NOT NULL UNIQUE,
        UNIQUE (vm_id, idx),
        UNIQUE (network_id, ip_number)
    );
    CREATE INDEX vm_nics_ip ON vm_nics (ip);
    CREATE TABLE host_networks (
        host_id INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
        network_id INTEGER NOT NULL,
        PRIMARY KEY (host_id, network_id)
    );
    ALTER TABLE hosts ADD COLUMN networks_state TEXT;
    """,
    # 23: each network's security group (JSON rules; app/net_rules.py). Networks made before
    # it let everything in, and keep doing so until someone gives them rules. Every VNI ever
    # handed out is kept, so that a removed network's is never given to another (a host may
    # still hold its devices, with a VM plugged in). A VM being moved names its destination,
    # whose network state then lets its ports in before it arrives, whoever syncs that host.
    """
    ALTER TABLE networks ADD COLUMN rules TEXT;
    UPDATE networks SET rules = '[{"protocol":"any","source":"any"}]';
    CREATE TABLE network_vnis (vni INTEGER PRIMARY KEY);
    INSERT INTO network_vnis (vni) SELECT vni FROM networks WHERE vni IS NOT NULL;
    ALTER TABLE vms ADD COLUMN moving_to INTEGER;
    """,
]


# PostgreSQL's own version of a migration SQLite does its own way (by number).
POSTGRESQL_INSTEAD = {
    # 9: PostgreSQL changes a CHECK in place (SQLite rebuilt the table)
    9: """
    ALTER TABLE hosts DROP CONSTRAINT hosts_state_check;
    ALTER TABLE hosts ADD CONSTRAINT hosts_state_check CHECK (state IN ('preparing', 'ready',
        'error', 'unreachable', 'disabled', 'removing', 'maintenance'));
    """,
    # 16: the same for users' roles
    16: """
    ALTER TABLE users DROP CONSTRAINT users_role_check;
    ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'operator',
        'member'));
    """,
}
# What PostgreSQL needs beside a migration (by number).
POSTGRESQL_AFTER = {
    # 1: user names are unique whatever their case (SQLite: the column's COLLATE NOCASE)
    1: "CREATE UNIQUE INDEX users_username_nocase ON users (lower(username));",
}
