"""The amlprobe command in each packaged file, run for real: cloud-init's runcmd with its
installer, systemd's ExecStart, the Job and CronJob, both DaemonSets' `serve` (scraped), all in
the network namespace packaging/check.sh made (loopback only, a resolver that answers nothing),
and the image's commands under runc (own network namespace). Nothing can work there, so each
must exit 1 and say every flow is blocked by DNS or TCP, with the packaged settings.
"""

import os
import re
import subprocess
import time

import pytest

import pkglib
from conftest import in_ns, tool, unavailable
from pkglib import Expected, params
from test_static import exec_start

# What the cloud-config's config.toml and the unit's command line ask for.
CLOUD_INIT_EXPECTED = Expected(None, ["workspace", "compute", "images"], "eastus",
                               "00000000-0000-0000-0000-000000000000")
PATH = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


class Run:
    """One packaged command's outcome: exit status, output, and its JSON report's path."""

    def __init__(self, got, report=None, expected=None, **extra):
        self.status, self.stdout, self.stderr = got.returncode, got.stdout, got.stderr
        self.report, self.expected = report, expected
        self.__dict__.update(extra)


# ---------------------------------------------------------------- cloud-init


@pytest.fixture(scope="module")
def runcmd(netns, cloud_config, make_installer, release, tmp_path_factory):
    """runcmd as cloud-init runs it (sh), with its paths moved under a temporary directory."""
    tmp = tmp_path_factory.mktemp("runcmd")
    dest, log = tmp / "root/usr/local/bin/amlprobe", tmp / "log"
    dest.parent.mkdir(parents=True)
    installer = make_installer(release[1], dest)
    script = cloud_config["runcmd"][0].read_text(encoding="utf-8")
    for packaged, here in (("/usr/local/sbin/amlprobe-install", f"sh {installer}"),
                           ("/usr/local/bin/amlprobe", str(dest)),
                           ("/etc/amlprobe/config.toml", str(cloud_config["files"] / "etc/amlprobe/config.toml")),
                           ("/var/log/amlprobe", str(log))):
        script = script.replace(packaged, here)
    (tmp / "runcmd.sh").write_text(script, encoding="utf-8")
    got = in_ns(netns, PATH, "sh", str(tmp / "runcmd.sh"))
    return Run(got, log / "latest.json", CLOUD_INIT_EXPECTED, log=log)


def test_runcmd_exits_0(runcmd):
    assert runcmd.status == 0, runcmd.stdout + runcmd.stderr


def test_runcmd_records_exit_status_1_blocked_in_first_boot_exit(runcmd):
    assert (runcmd.log / "first-boot.exit").read_text().strip() == "1"


def test_runcmd_prints_the_one_line_summary_to_the_console(runcmd):
    assert re.search(r"^amlprobe: [0-9]* flows: 0 works, [1-9][0-9]* blocked", runcmd.stdout, re.M), runcmd.stdout


def test_runcmd_prints_the_exit_status_to_the_console(runcmd):
    assert re.search(r"^amlprobe first boot: exit status 1", runcmd.stdout, re.M), runcmd.stdout


def test_runcmd_keeps_a_timestamped_report_beside_latest_json(runcmd):
    assert list(runcmd.log.glob("amlprobe-*.json"))


# ---------------------------------------------------------------- systemd


@pytest.fixture(scope="module")
def exec_start_run(netns, amlprobe, cloud_config, tmp_path_factory):
    """The unit's ExecStart with the environment systemd gives it (none), paths moved."""
    log = tmp_path_factory.mktemp("systemd")
    moved = {"/etc/amlprobe/config.toml": str(cloud_config["files"] / "etc/amlprobe/config.toml"),
             "/var/log/amlprobe": str(log)}
    args = [moved.get(a, a) for a in exec_start()[1:]]
    got = in_ns(netns, {"NO_COLOR": "1"}, amlprobe, *args)
    return Run(got, log / "latest.json", CLOUD_INIT_EXPECTED)


def test_exec_start_exits_1_on_a_blocked_network(exec_start_run):
    assert exec_start_run.status == 1, exec_start_run.stdout + exec_start_run.stderr


def test_exec_start_prints_the_root_causes_and_one_summary_line_for_the_journal(exec_start_run):
    # --quiet: the root causes (numbered, with their fix) and then the one summary line.
    lines = exec_start_run.stdout.splitlines()
    assert lines and lines[-1].startswith("amlprobe: "), exec_start_run.stdout
    assert len(lines) == 1 or lines[0].startswith("root causes"), exec_start_run.stdout


# ---------------------------------------------------------------- Kubernetes


def k8s_workloads():
    docs = pkglib.manifests()
    return docs, pkglib.workloads(docs)


def get(ns, url):
    """(status, body) of GET url from inside the namespace; status 0 if nothing answered."""
    got = subprocess.run(["ip", "netns", "exec", ns, "curl", "--silent", "--noproxy", "*", "--max-time", "5",
                          "--output", "-", "--write-out", "\n%{http_code}", url], capture_output=True, text=True)
    body, _, status = got.stdout.rpartition("\n")
    return int(status or 0), body


def serve(ns, amlprobe, w, env, tmp):
    """Starts the workload's `serve` in the namespace, scrapes it after its first run, stops it."""
    out, err = tmp / f"{w.key}.out", tmp / f"{w.key}.err"
    argv = ["ip", "netns", "exec", ns, "env", "-i", *(f"{k}={v}" for k, v in env.items()),
            # The first run starts after the jitter (up to 30 s for --interval 5m): none here.
            "AMLPROBE_JITTER=0", amlprobe, *w.args]
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(argv, stdout=o, stderr=e)
    base = f"http://127.0.0.1:{w.port}"
    scraped = {}
    try:
        metrics_only = "--metrics-only" in w.args
        deadline = time.monotonic() + 60
        while True:
            if metrics_only:
                # Wait for the first run's metrics; /report must stay closed.
                done = re.search(r"^amlprobe_exit_code ", get(ns, f"{base}/metrics")[1], re.M)
            else:
                status, body = get(ns, f"{base}/report")
                done = status == 200
            if done:
                break
            assert proc.poll() is None, f"serve exited: {err.read_text()}"
            assert time.monotonic() < deadline, f"serve never finished a first run: {err.read_text()}"
            time.sleep(0.5)
        scraped["report_status"] = get(ns, f"{base}/report")[0]
        if not metrics_only:
            (tmp / f"{w.key}.json").write_text(body, encoding="utf-8")
        scraped["healthz"] = get(ns, f"{base}/healthz")[0]
        scraped["metrics"] = get(ns, f"{base}/metrics")[1]
    finally:
        proc.kill()
        proc.wait()
    return scraped, out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def k8s_run(netns, amlprobe, tmp_path_factory):
    """k8s_run(key): the workload's command run once with the ConfigMap's environment."""
    tmp = tmp_path_factory.mktemp("k8s")
    done = {}

    def once(key):
        docs, ws = k8s_workloads()
        (w,) = [w for w in ws if w.key == key]
        env = w.env(pkglib.configmap(docs))
        if w.serve:
            scraped, stdout = serve(netns, amlprobe, w, env, tmp)
            return Run(subprocess.CompletedProcess([], 0, stdout, ""), tmp / f"{key}.json",
                       Expected.of(env), **scraped)
        got = in_ns(netns, env, amlprobe, *w.args)
        (tmp / f"{key}.json").write_text(got.stdout, encoding="utf-8")
        return Run(got, tmp / f"{key}.json", Expected.of(env))

    def run(key):
        # A failed run fails each of its checks without running again (a serve waits 60 s).
        if key not in done:
            try:
                done[key] = once(key)
            except Exception as e:  # noqa: BLE001 - reported by every check of this workload
                done[key] = e
        if isinstance(done[key], Exception):
            raise AssertionError(f"{key} did not run: {done[key]}")
        return done[key]

    return run


def keys(pick):
    return lambda: [pytest.param(w.key, id=w.key) for w in k8s_workloads()[1] if pick(w)]


@pytest.mark.parametrize("key", params(keys(lambda w: not w.serve)))
def test_workload_run_exits_1(k8s_run, key):
    got = k8s_run(key)
    assert got.status == 1, got.stderr


@pytest.mark.parametrize("key", params(keys(lambda w: w.serve and "--metrics-only" not in w.args)))
def test_serve_report_answers_200(k8s_run, key):
    assert k8s_run(key).report_status == 200


@pytest.mark.parametrize("key", params(keys(lambda w: w.serve and "--metrics-only" in w.args)))
def test_serve_metrics_only_report_answers_404(k8s_run, key):
    assert k8s_run(key).report_status == 404


SERVE_KEYS = params(keys(lambda w: w.serve))


@pytest.mark.parametrize("key", SERVE_KEYS)
def test_serve_healthz_answers_200_on_the_kubelet_probes_path_and_port(k8s_run, key):
    assert k8s_run(key).healthz == 200


@pytest.mark.parametrize("key", SERVE_KEYS)
def test_serve_metrics_has_per_flow_series_and_exit_code_1(k8s_run, key):
    metrics = k8s_run(key).metrics
    assert re.search(r"^amlprobe_flow_up\{", metrics, re.M) and "amlprobe_exit_code 1" in metrics.splitlines()


@pytest.mark.parametrize("key", SERVE_KEYS)
def test_serve_logs_a_listening_line_first(k8s_run, key):
    assert '"event":"listening"' in (k8s_run(key).stdout.splitlines() or [""])[0]


@pytest.mark.parametrize("key", SERVE_KEYS)
def test_serve_logs_a_json_line_per_run(k8s_run, key):
    assert '"event":"run"' in k8s_run(key).stdout


# ---------------------------------------------------------------- the image under runc


@pytest.fixture(scope="module")
def runc(oci_layout, tmp_path_factory):
    """runc(name, arch, env, args, qemu=None): a bundle of the image, run with runc (no docker
    daemon in CI), the way kubelet would start the pod. Returns a Run with the bundle and its spec."""
    if os.geteuid() != 0:
        unavailable("runc needs root (the index was checked statically)")
    runc_bin = tool("runc")
    tmp = tmp_path_factory.mktemp("runc")
    subprocess.run([runc_bin, "spec"], cwd=tmp, check=True)
    # check.sh removes containers named after its namespace if a run is cut short.
    prefix = os.environ.get("AMLPKG_NETNS") or f"amlpkg{os.getpid()}"
    resolv = tmp / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")

    def run(name, arch, env, args, qemu=None):
        bundle = tmp / name
        spec = pkglib.oci_bundle(*oci_layout, arch, bundle, tmp / "config.json", env, resolv, args, qemu)
        got = subprocess.run([runc_bin, "run", f"{prefix}-{name}"], cwd=bundle,
                             capture_output=True, text=True, timeout=120)
        return Run(got, spec=spec, bundle=bundle)

    return run


@pytest.fixture(scope="module")
def image_version(runc):
    got = runc("version", "amd64", {}, ["--version"])
    if got.status != 0:
        unavailable(f"runc cannot start containers here: {got.stderr.strip()}")
    return got


@pytest.fixture(scope="module")
def image_job(runc, image_version, tmp_path_factory):
    docs, ws = k8s_workloads()
    (w,) = [w for w in ws if w.key == "job-amlprobe"]
    env = w.env(pkglib.configmap(docs))
    got = runc("job", "amd64", env, w.args)
    got.report, got.expected = got.bundle / "report.json", Expected.of(env)
    got.report.write_text(got.stdout, encoding="utf-8")
    return got


@pytest.fixture(scope="module")
def image_arm64(runc, image_version):
    return runc("arm64", "arm64", {}, ["--version"], qemu=tool("qemu-aarch64-static"))


@pytest.mark.parametrize("run", ["image_version", "image_job", "image_arm64"])
def test_container_runs_as_non_root_read_only_without_capabilities_in_its_own_netns(run, request):
    spec = request.getfixturevalue(run).spec
    assert spec["process"]["user"]["uid"] != 0
    assert spec["root"]["readonly"] is True
    assert not any(spec["process"]["capabilities"].values())
    assert {"type": "network"} in spec["linux"]["namespaces"]


def test_amd64_image_prints_its_version(image_version):
    assert re.match(r"amlprobe [0-9]", image_version.stdout), image_version.stdout


def test_jobs_command_in_the_amd64_image_exits_1(image_job):
    assert image_job.status == 1, image_job.stderr[:400]


def test_arm64_image_holds_a_static_aarch64_binary(image_arm64):
    binary = image_arm64.bundle / "rootfs/usr/local/bin/amlprobe"
    got = subprocess.run(["file", str(binary)], capture_output=True, text=True)
    assert re.search(r"ARM aarch64.*static", got.stdout), got.stdout


def test_arm64_image_runs_version_under_qemu(image_arm64, amlprobe):
    want = subprocess.run([amlprobe, "--version"], capture_output=True, text=True).stdout
    assert image_arm64.status == 0 and image_arm64.stdout == want, image_arm64.stdout + image_arm64.stderr


# ---------------------------------------------------------------- every report


def report_params():
    sources = [("runcmd", None, CLOUD_INIT_EXPECTED.host), ("exec_start_run", None, CLOUD_INIT_EXPECTED.host)]
    docs, ws = k8s_workloads()
    sources += [("k8s_run", w.key, True) for w in ws if "--metrics-only" not in w.args]
    sources.append(("image_job", None, True))
    return [pytest.param(fixture, key, check, id=f"{key or fixture} {check}")
            for fixture, key, host in sources for check in pkglib.REPORT_CHECKS
            if host or check != "names_the_host"]


@pytest.mark.parametrize(("fixture", "key", "check"), params(report_params, width=3))
def test_report(fixture, key, check, request):
    run = request.getfixturevalue(fixture)
    run = run(key) if key else run
    pkglib.check_report(run.report, run.expected, check)
