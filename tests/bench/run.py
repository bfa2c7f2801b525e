"""`make bench`: server-side timings of the VM list, measured on a real gunicorn on loopback.

Each figure is written to bench-results.json at the repository root (merged with what other
benchmarks wrote there) and printed as a table.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.bench import cluster as cluster_bench
from tests.bench import databases as databases_bench
from tests.bench import guests as guests_bench
from tests.bench import images as images_bench
from tests.bench import load as load_bench
from tests.bench import migration as migration_bench
from tests.bench import monitor as monitor_bench
from tests.bench import networks as networks_bench
from tests.bench import ops as ops_bench
from tests.bench import projects as projects_bench
from tests.bench import snapshots as snapshots_bench
from tests.bench import storm as storm_bench
from tests.bench import volumes as volumes_bench
from tests.bench.http import Session
from tests.bench.populate import populate
from tests.processes import Server

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results.json"
RUNS = 40
WARMUP = 5
FILTER = "state = 'error' AND mem >= 512"


def environment(folder):
    """NUBE_* settings for a bench server on a temp instance."""
    return {
        **os.environ,
        "NUBE_INSTANCE_PATH": str(folder / "instance"),
        "NUBE_DATABASE": str(folder / "nube.sqlite"),
        "NUBE_REPOSITORY": str(folder / "iaas"),
        "NUBE_LIBVIRT_URI": "test:///default",
        "NUBE_PROVISIONER": "recording",
        "NUBE_QUEUE": "immediate",
        "NUBE_LOGIN_RATE_LIMIT": "1000",
    }


def server_times(session, path, runs=RUNS):
    """Median server time (ms, from Server-Timing) of a page over several requests."""
    for _ in range(WARMUP):
        session.get(path)
    times = [session.get(path).server_ms for _ in range(runs)]
    return statistics.median(times)


def api_times(env, runs=RUNS):
    """Median time (ms) of listVms with a filter, in a fresh process on the same database."""
    code = (
        "import statistics, time\n"
        "from app import core\n"
        f"for _ in range({WARMUP}): core.listVms({FILTER!r})\n"
        "times = []\n"
        f"for _ in range({runs}):\n"
        "    t = time.perf_counter(); rows = core.listVms(" + repr(FILTER) + ")\n"
        "    times.append((time.perf_counter() - t) * 1000)\n"
        "print(statistics.median(times), len(rows))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def measure(vms, hosts):
    """Figures for one database size."""
    with tempfile.TemporaryDirectory(prefix="nube-bench-") as tmp:
        folder = Path(tmp)
        env = environment(folder)
        populate(env, hosts=hosts, vms=vms)
        server = Server(env)
        try:
            session = Session(server.url)
            session.login("bench", "bench-password")
            page_ms = server_times(session, "/vms/")
            filtered_ms = server_times(session, "/vms/?" + session.encode({"q": FILTER}))
            rss = server.worker_rss_mb()
        finally:
            server.stop()
        api_ms, matches = api_times(env)
    return {
        "vm_list_page_ms": page_ms,
        "vm_list_page_filtered_ms": filtered_ms,
        "listVms_filter_ms": api_ms,
        "listVms_filter_matches": matches,
        "server_rss_mb": rss,
    }


def save(section, figures):
    """Merge figures into bench-results.json under a section name."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[section] = figures
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def vm_list():
    """The VM list benchmark: figures and its table."""
    small = measure(vms=100, hosts=2)
    large = measure(vms=10_000, hosts=200)
    figures = {"filter": FILTER, "vms_100": small, "vms_10000": large}
    for key in ("vm_list_page_ms", "listVms_filter_ms"):
        figures[f"{key}_ratio"] = round(large[key] / small[key], 2)
    save("vm_list", figures)
    print(f"{'figure':34} {'100 VMs':>10} {'10,000 VMs':>11} {'ratio':>6}")
    for key in ("vm_list_page_ms", "vm_list_page_filtered_ms", "listVms_filter_ms"):
        ratio = large[key] / small[key]
        print(f"{key:34} {small[key]:10.2f} {large[key]:11.2f} {ratio:6.2f}")
    print(
        f"{'server_rss_mb (after requests)':34} {small['server_rss_mb']:10.1f}"
        f" {large['server_rss_mb']:11.1f}"
    )


def operations():
    """The operations throughput benchmark."""
    figures = ops_bench.main()
    save("operations", figures)
    print(
        f"\n{'operations (200 queued, 20 hosts)':34} {'ops/s':>8} {'seconds':>8} {'lost':>5}"
        f" {'dup':>4}"
    )
    for key, row in figures.items():
        print(
            f"{key:34} {row['ops_per_second']:8.1f} {row['seconds']:8.2f} {row['lost']:5d}"
            f" {row['duplicated']:4d}"
        )


def monitoring():
    """The monitor pass benchmark."""
    figures = monitor_bench.main()
    save("monitor", figures)
    print(
        f"\nmonitor pass, {figures['hosts']} hosts x {figures['domains_per_host']} domains:"
        f" {figures['pass_ms_median']} ms (median); with one host hung:"
        f" {figures['pass_with_one_hung_host_ms']} ms (host timeout {figures['host_timeout_ms']}"
        f" ms, target <= {figures['target_ms']} ms: {'met' if figures['target_met'] else 'MISSED'})"
    )


def load():
    """The concurrent-clients benchmark and live-update bytes."""
    figures = load_bench.main(Server, environment)
    save("load", figures)
    print(
        f"\n{figures['clients']} concurrent clients, 10,000 VMs: {figures['requests']} requests,"
        f" {figures['errors']} errors"
    )
    for name in ("overview", "vm_list"):
        row = figures[name]
        print(f"  {name:10} median {row['median_ms']:7.1f} ms   p99 {row['p99_ms']:7.1f} ms")
    for name, row in figures["live"].items():
        print(
            f"  {name:10} page {row['page_bytes']} B; live polling"
            f" {row['live_bytes_per_minute']} B/min ({row['poll_bytes_unchanged']} B per"
            " unchanged poll)"
        )


def cluster():
    """Disk creation overlay vs copy, and the host_add.yaml re-run."""
    disks = cluster_bench.disk_modes()
    rerun = cluster_bench.host_add_rerun()
    save("cluster", {"vm_creation": disks, **rerun})
    print(
        f"\n{'VM creation (disk + domain)':28} {'overlay s':>10} {'copy s':>8} {'copy/overlay':>13}"
    )
    for size, row in disks.items():
        print(
            f"{size:28} {row['overlay_s']:10.4f} {row['copy_s']:8.3f} {row['copy_over_overlay']:13.1f}"
        )
    print(
        f"host_add.yaml re-run on a prepared host: {rerun['host_add_rerun_s']} s (median of"
        f" {rerun['runs']}; tasks changed per run: {rerun['tasks_changed_per_rerun']})"
    )


def deploy_storm():
    """100 VMs onto 8 lab hosts through the queue, beside libvirt alone."""
    figures = storm_bench.storm()
    save("deploy_storm", figures)
    print(
        f"\ndeploy storm: {figures['vms']} VMs on {figures['hosts']} lab hosts"
        f" ({figures['virt']}), {figures['workers']} workers: Nube {figures['seconds']} s,"
        f" floor {figures['floor_seconds']} s ({figures['over_floor']}x);"
        f" running {figures['running']}, failed {figures['failed_count']},"
        f" ever unknown {len(figures['ever_unknown'])},"
        f" ever unreachable {len(figures['ever_unreachable'])}"
    )


def guests():
    """Image build, the seed's cost in VM creation, boot to cloud-init finished."""
    figures = guests_bench.main()
    save("guests", figures)
    build, seed, boot = figures["image_build"], figures["seed"], figures["boot"]
    print(
        f"\nimage.build (bookworm, 4G): {build['seconds']} s, {build['image_mib']} MiB qcow2"
        f"\nVM creation with seed {seed['create_with_seed_ms']} ms, without"
        f" {seed['create_without_seed_ms']} ms: the seed adds {seed['seed_adds_ms']} ms"
        f" (target < {seed['target_ms']} ms, median of {seed['runs']})"
        f"\nboot under {boot['virt']}: cloud-init finished after"
        f" {boot['to_cloud_init_finished_s']} s, login prompt after {boot['to_login_prompt_s']} s;"
        f" shutdown through the agent {boot['agent_shutdown_s']} s"
    )


def migration():
    """Live migration beside libvirt alone, and a drain."""
    figures = migration_bench.main()
    save("migration", figures)
    print(
        f"\nlive migration of an idle {figures['vm_mem_mib']} MiB VM between two lab hosts"
        f" (median of {figures['runs']}): Nube {figures['live_migration_s']} s, libvirt alone"
        f" {figures['libvirt_alone_s']} s ({figures['over_floor']}x);"
        f" drain of {figures['drain_vms']} running VMs: {figures['drain_s']} s"
        f" ({figures['drain_moved']} moved, {figures['drain_stayed']} stayed)"
    )


def databases():
    """The VM list page at 10,000 VMs and the operations throughput, SQLite beside PostgreSQL."""
    figures = databases_bench.main(environment)
    save("databases", figures)
    sqlite, postgresql = figures["sqlite"], figures["postgresql"]
    print(
        f"\n{figures['vms']:,} VMs, {figures['runs']} requests each (ms){'SQLite':>16}"
        f" {'PostgreSQL':>11}"
    )
    for page in databases_bench.PAGES:
        for timing in ("server_ms", "wall_ms"):
            for stat in ("median", "p95"):
                label = f"{page} {timing} {stat}"
                print(
                    f"  {label:42} {sqlite['vm_list'][page][timing][stat]:9.2f}"
                    f" {postgresql['vm_list'][page][timing][stat]:11.2f}"
                )
    for key, label in (
        ("open_close_ms", "connection open + close"),
        ("queries_fresh_connection_ms", "list queries, fresh connection"),
        ("queries_reused_connection_ms", "list queries, reused connection"),
        ("per_request_cost_ms", "connection per request costs"),
    ):
        print(
            f"  {label:42} {sqlite['vm_list']['connection'][key]:9.3f}"
            f" {postgresql['vm_list']['connection'][key]:11.3f}"
        )
    for workers in databases_bench.WORKERS:
        key = f"operations_workers_{workers}"
        label = f"operations/s, {workers} worker{'s' if workers > 1 else ''} (lost, dup)"
        cells = [
            f"{row['ops_per_second']:6.1f} ({row['lost']}, {row['duplicated']})"
            for row in (sqlite[key], postgresql[key])
        ]
        print(f"  {label:42} {cells[0]:>9} {cells[1]:>11}")


def projects():
    """Listing VMs as a project member beside an admin, at 10,000 VMs in 200 projects."""
    figures = projects_bench.main(environment)
    save("projects", figures)
    viewers = figures["viewers"]
    print(
        f"\n{figures['vms']:,} VMs in {figures['projects']} projects on SQLite: median ms of"
        f" {figures['runs']} listings\n  {'':32}" + "".join(f"{name:>10}" for name in viewers)
    )
    print(f"  {'VMs visible':32}" + "".join(f"{r['visible_vms']:>10}" for r in viewers.values()))
    for key in projects_bench.TIMED:
        print(f"  {key:32}" + "".join(f"{row[key]:10.2f}" for row in viewers.values()))
    scans = sorted({line for lines in figures["member_full_scans"].values() for line in lines})
    print(
        f"  members within {figures['factor']}x the admin's (pages, API, live):"
        f" {'yes' if figures['member_within_factor'] else 'NO'}; full scans of vms on a"
        f" member's path: {', '.join(scans) if scans else 'none'}"
    )


def volumes():
    """Volume creation beside qemu-img alone, and hot-plug beside libvirt's attach alone."""
    figures = volumes_bench.main()
    save("volumes", figures)
    print(
        f"\n{'volume creation (ms, median/max)':32} {'core.addVolume':>16} {'qemu-img alone':>16}"
        f" {'Nube adds':>10}"
    )
    for key, row in figures["creation"].items():
        nube, alone = row["nube"], row["qemu_img_alone"]
        print(
            f"  {key:30} {nube['median_ms']:8.1f}/{nube['max_ms']:<7.1f}"
            f" {alone['median_ms']:8.1f}/{alone['max_ms']:<7.1f} {row['nube_adds_ms']:10.1f}"
        )
    plug, full = figures["hot_plug"], figures["hot_plug"]["up_to_last_target"]
    nube, alone = plug["nube_attach"], plug["libvirt_attach_alone"]
    print(
        f"hot-plug into a running VM ({plug['domain_type']}) on a lab host, {plug['rounds']}"
        f" rounds: core.attachVolume {nube['median_ms']} ms (max {nube['max_ms']}), libvirt"
        f" attachDeviceFlags alone {alone['median_ms']} ms (max {alone['max_ms']}):"
        f" {plug['nube_over_libvirt']}x ({'within' if plug['within_factor'] else 'NOT within'}"
        f" {plug['factor']}x; less its qemu-img info calls"
        f" {plug['nube_less_qemu_img_info_over_libvirt']}x)\n  Nube's attach by part (median ms): "
        + ", ".join(f"{k} {v}" for k, v in plug["nube_breakdown_ms"].items())
        + f"\n  with {full['already_attached'][-1]} volumes already attached: Nube"
        f" {full['nube_ms'][-1]} ms ({full['nube_qemu_img_info_calls'][-1]} qemu-img info"
        f" calls), libvirt alone {full['libvirt_alone_ms'][-1]} ms"
    )


def snapshots():
    """VM snapshots beside libvirt's own (running) and qemu-img's (stopped) on one lab host."""
    figures = snapshots_bench.main()
    save("snapshots", figures)
    for key, label in (
        ("running_vs_libvirt_internal_no_metadata", "running VM, libvirt snapshotCreateXML"),
        ("stopped_vs_qemu_img_snapshot", "stopped VM, qemu-img snapshot -c"),
    ):
        row = figures[key]
        nube, alone = row["nube"], row["alone"]
        print(
            f"snapshot of a {label} alone, {row['runs']} runs: core.snapshotVm"
            f" {nube['median_ms']} ms (max {nube['max_ms']}), alone {alone['median_ms']} ms"
            f" (max {alone['max_ms']}): {row['nube_over_alone']}x"
            f" ({'within' if row['within_factor'] else 'NOT within'} {figures['factor']}x)"
        )


def images():
    """Image import throughput from 127.0.0.1: Nube's fetch adapter beside curl -o."""
    figures = images_bench.main()
    save("images", figures)
    print(
        f"\nimage import of a {figures['file_mib']} MiB qcow2 from 127.0.0.1 (median of"
        f" {figures['runs']}): Nube's fetch adapter {figures['nube_fetch_mb_s']} MB/s, curl -o"
        f" {figures['curl_mb_s']} MB/s ({figures['nube_over_curl']}x);"
        f" core.importImage (fetch, checks, publish) {figures['core_import_mb_s']} MB/s"
    )


def networks():
    """A VXLAN network brought up on 8 lab hosts; guest-to-guest throughput over it."""
    figures = networks_bench.main()
    save("networks", figures)
    print(
        f"\nnetwork up on {figures['hosts']} lab hosts: {figures['network_up_on_8_hosts_s']} s"
        f" (8 VM creations at once {figures['create_8_vms_bringing_network_up_s']} s with it,"
        f" {figures['create_8_vms_no_network_s']} s on no network,"
        f" {figures['create_8_vms_network_already_up_s']} s once it is up)"
        f"\nTCP, one stream: VM to VM over the overlay (TCG)"
        f" {figures['vms_over_overlay_tcg_mbit_s']} Mbit/s; host namespace to host namespace"
        f" over the overlay {figures['namespaces_over_overlay_mbit_s']} Mbit/s, over a plain veth"
        f" (the floor) {figures['namespaces_over_veth_mbit_s']} Mbit/s"
    )


SECTIONS = {
    "vm_list": vm_list,
    "operations": operations,
    "monitor": monitoring,
    "load": load,
    "databases": databases,
    "cluster": cluster,
    "deploy_storm": deploy_storm,
    "guests": guests,
    "migration": migration,
    "projects": projects,
    "volumes": volumes,
    "snapshots": snapshots,
    "images": images,
    "networks": networks,
}


def main(names=()):
    """The named benchmarks (every one by default); figures to bench-results.json."""
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        sys.exit(f"unknown bench section(s): {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    for name in names or SECTIONS:
        SECTIONS[name]()
    print(f"\nresults written to {RESULTS}")


if __name__ == "__main__":
    main(sys.argv[1:])
