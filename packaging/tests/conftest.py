"""Fixtures for the packaging checks, the skip policy, and the per-check result lines.

packaging/check.sh sets the environment these read:
  AMLPROBE_BIN, AMLPROBE_BIN_AARCH64   the static binaries (x86_64, aarch64)
  AMLPKG_NETNS                         a network namespace with only loopback up (as root)
  AMLPKG_CLOUD_INIT_SCHEMA             cloud-init's JSON schema, from Debian's package

Every check prints one TAP-like line (`ok N - name`, `not ok N - name`, `ok N - name # SKIP
why`) and the run ends with `packaging: N ok, M failed: <names>`.
"""

import os
import re
import shutil
import subprocess
import tarfile

import pytest

import pkglib


def unavailable(reason):
    """Skips a check whose tool or privilege is missing; under CI=true, fails it instead, since
    CI has everything and a check that ran before must not vanish silently."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: every packaging check must run)", pytrace=False)
    pytest.skip(reason)


def tool(name):
    """The path of an external tool, or unavailable()."""
    return shutil.which(name) or unavailable(f"{name} is not installed")


def sh_syntax(shell, path):
    """`shell -n path`: the script parses."""
    got = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr


@pytest.fixture(scope="session")
def amlprobe():
    """The x86_64 static binary."""
    path = os.environ.get("AMLPROBE_BIN") or unavailable("AMLPROBE_BIN is not set")
    assert os.access(path, os.X_OK), f"AMLPROBE_BIN={path} is not an executable"
    return path


@pytest.fixture(scope="session")
def amlprobe_arm64():
    """The aarch64 static binary, for the arm64 image."""
    return (os.environ.get("AMLPROBE_BIN_AARCH64")
            or unavailable("the aarch64 cross toolchain cannot be installed here, so no arm64 binary"))


@pytest.fixture(scope="session")
def version(amlprobe):
    """The binary's version: the image tag and the release archive's name."""
    return subprocess.run([amlprobe, "--version"], capture_output=True, text=True,
                          check=True).stdout.split()[1]


@pytest.fixture(scope="session")
def netns():
    """The namespace packaging/check.sh made: loopback only, a resolver that answers nothing."""
    return (os.environ.get("AMLPKG_NETNS")
            or unavailable("the runs need root for a network namespace (packaging/check.sh makes it)"))


def in_ns(ns, env, *cmd, timeout=120):
    """Runs cmd in the namespace with only `env` in its environment; a CompletedProcess."""
    argv = ["ip", "netns", "exec", ns, "env", "-i", *(f"{k}={v}" for k, v in env.items()), *cmd]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def cloud_config(tmp_path_factory):
    """The cloud-config's write_files written under a directory, and its runcmd scripts:
    {"files": dir, "runcmd": [path, ...]}."""
    (doc,) = pkglib.load_all(pkglib.CLOUD_INIT)
    out = tmp_path_factory.mktemp("cloud-init")
    for entry in doc["write_files"]:
        dest = out / "files" / entry["path"].lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(entry["content"], encoding="utf-8")
        dest.chmod(int(entry["permissions"], 8))
    scripts = []
    for i, cmd in enumerate(doc["runcmd"]):
        scripts.append(out / f"runcmd-{i}.sh")
        scripts[-1].write_text(cmd, encoding="utf-8")
    return {"files": out / "files", "runcmd": scripts}


@pytest.fixture(scope="session")
def release(amlprobe, version, tmp_path_factory):
    """This machine's release archive (named as packaging/release.sh names it) in a directory
    the installer fetches from over file://: (directory, sha256)."""
    import hashlib

    rel = tmp_path_factory.mktemp("rel")
    archive = rel / f"amlprobe-{version}-{os.uname().machine}-unknown-linux-musl.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(amlprobe, arcname="amlprobe")
    return rel, hashlib.sha256(archive.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def make_installer(cloud_config, release, tmp_path_factory):
    """make_installer(sha256, dest): the cloud-config's installer, fetching this machine's
    archive from file:// with a SAS whose signature is SECRETSIG, checked against sha256,
    installing to dest. Returns its path."""
    text = (cloud_config["files"] / "usr/local/sbin/amlprobe-install").read_text(encoding="utf-8")
    rel, _ = release

    def make(sha, dest):
        s = text.replace("https://CHANGE-ME.blob.core.windows.net/tools/", f"file://{rel}/")
        s = s.replace("?CHANGE-ME-SAS", "?sv=2024&sig=SECRETSIG")
        s = re.sub(rf"^  {os.uname().machine}\) sha256=[^;]*", f"  {os.uname().machine}) sha256='{sha}' ",
                   s, flags=re.M)
        s = re.sub(r"^dest=.*", f"dest={dest}", s, flags=re.M)
        path = tmp_path_factory.mktemp("installer") / "amlprobe-install"
        path.write_text(s, encoding="utf-8")
        return path

    return make


@pytest.fixture(scope="session")
def containerfile_user():
    """The numeric uid the Containerfile's USER names."""
    m = re.search(r"^USER ([0-9]+):([0-9]+)$", pkglib.CONTAINERFILE.read_text(), re.M)
    assert m, "the Containerfile has no numeric USER uid:gid"
    return m.group(1)


@pytest.fixture(scope="session")
def oci_layout(amlprobe, amlprobe_arm64, version, tmp_path_factory):
    """packaging/container/build.sh's OCI image layout: (directory, tag)."""
    out = tmp_path_factory.mktemp("oci") / "layout"
    env = dict(os.environ, AMLPROBE_BIN=amlprobe, AMLPROBE_BIN_AARCH64=amlprobe_arm64)
    got = subprocess.run(["bash", str(pkglib.PKG / "container/build.sh"), str(out)], env=env,
                         capture_output=True, text=True, cwd=pkglib.ROOT)
    assert got.returncode == 0, f"build.sh: {got.stderr}"
    return out, version


# ---------------------------------------------------------------- the results, one line each

def pytest_runtest_setup(item):
    marker = item.get_closest_marker("enumerate_failed")
    if marker:
        pytest.fail(f"the packaged files could not be read into checks: {marker.args[0]}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_report_teststatus(report, config):
    # The TAP-like lines replace pytest's progress dots.
    category, _letter, word = yield
    return category, "", word


_outcome = {}  # nodeid: [ok | failed | skipped, skip reason], over setup, call and teardown
_results = []  # (outcome, nodeid) in the order the checks finished
_reporter = None


def pytest_runtest_logreport(report):
    state = _outcome.setdefault(report.nodeid, ["ok", ""])
    if report.failed:
        state[0] = "failed"
    elif report.skipped and state[0] == "ok":
        state[0] = "skipped"
        state[1] = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)


def pytest_runtest_logfinish(nodeid, location):
    outcome, why = _outcome.pop(nodeid)
    _results.append((outcome, nodeid))
    line = f"{'not ok' if outcome == 'failed' else 'ok'} {len(_results)} - {nodeid}"
    if outcome == "skipped":
        line += f" # SKIP {why.removeprefix('Skipped: ')}"
    _reporter.write_line(line)


def pytest_sessionstart(session):
    global _reporter
    _reporter = session.config.pluginmanager.get_plugin("terminalreporter")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    ok = sum(1 for o, _ in _results if o == "ok")
    failed = [n for o, n in _results if o == "failed"]
    skipped = [n for o, n in _results if o == "skipped"]
    line = f"packaging: {ok} ok, {len(failed)} failed"
    if failed:
        line += ": " + ", ".join(failed)
    if skipped:
        line += f"; {len(skipped)} skipped: " + ", ".join(skipped)
    terminalreporter.write_line(line)
