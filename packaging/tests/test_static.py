"""Checks that only read the packaged files and run offline validators on them: YAML, the
cloud-config (shape, cloud-init's schema, its installer), the systemd units, the alert rules,
the Kubernetes manifests (schemas, pod lock-down) and the container image index.

The command lines themselves go through amlprobe's own parser in src/cli/packaged.rs.
"""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

import pkglib
from conftest import sh_syntax, tool, unavailable
from pkglib import params

# ---------------------------------------------------------------- YAML

YAML_FILES = sorted(pkglib.PKG.rglob("*.yaml"))


def test_packaging_has_yaml_files():
    assert YAML_FILES


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(pkglib.PKG)))
def test_yaml_parses(path):
    assert pkglib.load_all(path), "no document"


# ---------------------------------------------------------------- cloud-init


def cloud_doc():
    (doc,) = pkglib.load_all(pkglib.CLOUD_INIT)
    return doc


def test_cloud_config_starts_with_its_header():
    assert pkglib.CLOUD_INIT.read_text(encoding="utf-8").startswith("#cloud-config\n")


def test_cloud_config_uses_only_write_files_and_runcmd():
    assert set(cloud_doc()) <= {"write_files", "runcmd", "package_update", "packages"}


WRITE_FILES = params(lambda: [pytest.param(e, id=e.get("path")) for e in cloud_doc()["write_files"]])


@pytest.mark.parametrize("entry", WRITE_FILES)
def test_write_files_entry_has_path_content_and_permissions(entry):
    assert {"path", "content", "permissions"} <= set(entry)


@pytest.mark.parametrize("entry", WRITE_FILES)
def test_write_files_permissions_are_a_quoted_octal_mode(entry):
    assert isinstance(entry["permissions"], str) and re.fullmatch(r"0[0-7]{3}", entry["permissions"])


RUNCMD = params(lambda: [pytest.param(i, cmd, id=f"runcmd[{i}]") for i, cmd in enumerate(cloud_doc()["runcmd"])],
                width=2)


@pytest.mark.parametrize(("i", "cmd"), RUNCMD)
def test_runcmd_is_a_shell_script(i, cmd):
    assert isinstance(cmd, str)


def runcmd_uses():
    doc = cloud_doc()
    return [pytest.param(i, used, id=f"runcmd[{i}] {used}") for i, cmd in enumerate(doc["runcmd"])
            for used in re.findall(r"(/(?:etc|usr/local/sbin)/[\w./-]+)", cmd)]


@pytest.mark.parametrize(("i", "used"), params(runcmd_uses, width=2))
def test_runcmd_uses_only_files_write_files_provides(i, used):
    assert used in {e["path"] for e in cloud_doc()["write_files"]}


def test_cloud_config_matches_cloud_inits_schema():
    import jsonschema

    path = os.environ.get("AMLPKG_CLOUD_INIT_SCHEMA") or unavailable(
        "cloud-init's schema: Debian's cloud-init package could not be downloaded")
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(cloud_doc()), key=str)
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_amlprobe_suites_accepts_the_cloud_configs_config_toml(amlprobe, cloud_config):
    conf = cloud_config["files"] / "etc/amlprobe/config.toml"
    got = subprocess.run([amlprobe, "suites", "--config", str(conf)], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr


def test_installer_parses_as_sh(cloud_config):
    sh_syntax("sh", cloud_config["files"] / "usr/local/sbin/amlprobe-install")


def test_runcmd_parses_as_sh(cloud_config):
    for script in cloud_config["runcmd"]:
        sh_syntax("sh", script)


def install(installer):
    return subprocess.run(["sh", str(installer)], capture_output=True, text=True, timeout=60)


def test_installer_refuses_the_placeholder_sha256(make_installer, tmp_path):
    dest = tmp_path / "amlprobe"
    got = install(make_installer("CHANGE-ME", dest))
    assert got.returncode != 0 and "set sha256" in got.stderr and not dest.exists(), got.stderr


@pytest.fixture
def wrong_sha_install(make_installer, tmp_path):
    dest = tmp_path / "amlprobe"
    return install(make_installer("0" * 64, dest)), dest


def test_installer_refuses_a_wrong_sha256(wrong_sha_install):
    got, dest = wrong_sha_install
    assert got.returncode != 0 and "not installed" in got.stderr and not dest.exists(), got.stderr


def test_installer_never_prints_the_sas_when_refusing(wrong_sha_install):
    got, _ = wrong_sha_install
    assert "SECRETSIG" not in got.stdout + got.stderr


@pytest.fixture
def good_install(make_installer, release, tmp_path):
    dest = tmp_path / "amlprobe"
    return install(make_installer(release[1], dest)), dest


def test_installer_installs_the_archive_whose_sha256_matches(good_install, amlprobe):
    got, dest = good_install
    assert got.returncode == 0, got.stderr
    assert os.access(dest, os.X_OK) and dest.read_bytes() == open(amlprobe, "rb").read()


def test_installer_never_prints_the_sas_when_installing(good_install):
    got, _ = good_install
    assert "SECRETSIG" not in got.stdout + got.stderr


# ---------------------------------------------------------------- systemd and Prometheus


def exec_start():
    for line in pkglib.SERVICE.read_text(encoding="utf-8").splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line[len("ExecStart="):])
    raise AssertionError("amlprobe.service has no ExecStart=")


def test_exec_start_runs_the_installed_binary():
    assert exec_start()[0] == "/usr/local/bin/amlprobe"


def test_systemd_analyze_verify(amlprobe, tmp_path):
    analyze = tool("systemd-analyze")
    service = re.sub(r"^ExecStart=/usr/local/bin/amlprobe", f"ExecStart={amlprobe}",
                     pkglib.SERVICE.read_text(encoding="utf-8"), flags=re.M)
    (tmp_path / "amlprobe.service").write_text(service, encoding="utf-8")
    (tmp_path / "amlprobe.timer").write_text(pkglib.TIMER.read_text(encoding="utf-8"), encoding="utf-8")
    got = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / "amlprobe.service"),
                          str(tmp_path / "amlprobe.timer")], capture_output=True, text=True)
    assert got.returncode == 0, got.stdout + got.stderr
    # verify exits 0 on some warnings; any line about our units is a finding.
    findings = [l for l in (got.stdout + got.stderr).splitlines() if re.search(r"amlprobe\.(service|timer)", l)]
    assert not findings


def test_timer_is_enabled_by_timers_target():
    assert "WantedBy=timers.target" in pkglib.TIMER.read_text(encoding="utf-8").splitlines()


def test_timer_starts_amlprobe_service():
    # Without Unit=, a timer starts the service of its own name.
    assert not any(l.startswith("Unit=") for l in pkglib.TIMER.read_text(encoding="utf-8").splitlines())


def test_promtool_check_rules():
    # The testbed's scenarios 23 and 60 test these rules on real series.
    got = subprocess.run([tool("promtool"), "check", "rules", str(pkglib.ALERTS)], capture_output=True, text=True)
    assert got.returncode == 0, got.stdout + got.stderr


# ---------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("version", ["1.31.0", "1.37.0"])
def test_kubernetes_validate_strict(version):
    files = [str(p) for p in sorted(pkglib.K8S.glob("*.yaml"))]
    got = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", version, *files],
                         capture_output=True, text=True)
    assert got.returncode == 0, got.stdout + got.stderr


def test_namespace_enforces_the_restricted_pod_security_standard():
    (ns,) = pkglib.load_all(pkglib.K8S / "namespace.yaml")
    assert ns["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted"


DOCUMENTS = params(lambda: [pytest.param(d, id=f"{f} {d['kind']}")
                            for f, ds in pkglib.manifests().items() for d in ds])


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_document_is_in_namespace_amlprobe(doc):
    meta = doc["metadata"]
    assert (meta["name"] if doc["kind"] == "Namespace" else meta.get("namespace")) == "amlprobe"


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_document_is_labelled_amlprobe(doc):
    assert doc["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "amlprobe"


def pods_are_labelled(w, cm):
    assert w.template_meta.get("labels", {}).get("app.kubernetes.io/name") == "amlprobe"


def runs_as_non_root(w, cm):
    sec = w.spec.get("securityContext", {})
    assert sec.get("runAsNonRoot") is True and sec.get("runAsUser", 0) > 0, sec


def uses_runtime_default_seccomp(w, cm):
    assert w.spec.get("securityContext", {}).get("seccompProfile", {}).get("type") == "RuntimeDefault"


def mounts_no_service_account_token(w, cm):
    assert w.spec.get("automountServiceAccountToken") is False


def runs_on_amd64_and_arm64(w, cm):
    # The image is an amd64 + arm64 index: pinning an architecture would leave nodes out.
    pins = [k for k in ("nodeSelector", "affinity", "tolerations")
            if "kubernetes.io/arch" in json.dumps(w.spec.get(k, {}))]
    assert not pins


def has_a_read_only_root(w, cm):
    assert w.container.get("securityContext", {}).get("readOnlyRootFilesystem") is True


def forbids_privilege_escalation(w, cm):
    assert w.container.get("securityContext", {}).get("allowPrivilegeEscalation") is False


def drops_all_capabilities(w, cm):
    caps = w.container.get("securityContext", {}).get("capabilities", {})
    assert caps.get("drop") == ["ALL"] and not caps.get("add"), caps


def is_not_privileged(w, cm):
    assert "privileged" not in w.container.get("securityContext", {})


def has_cpu_and_memory_requests_and_limits(w, cm):
    res = w.container.get("resources", {})
    assert all(k in res.get(t, {}) for t in ("requests", "limits") for k in ("cpu", "memory")), res


def image_is_a_registry_amlprobe_version_name(w, cm):
    assert pkglib.IMAGE_RE.match(w.container["image"]), w.container["image"]


def takes_the_packaged_configmap(w, cm):
    names = [s["configMapRef"]["name"] for s in w.container.get("envFrom", [])]
    assert names == [cm["metadata"]["name"]]


def env_from_fields_are_the_node_name(w, cm):
    fields = [v["valueFrom"]["fieldRef"]["fieldPath"] for v in w.container.get("env", []) if "valueFrom" in v]
    assert fields and set(fields) == {"spec.nodeName"}, fields


def names_its_reports_after_the_node(w, cm):
    assert w.env(cm).get("AMLPROBE_HOST_NAME", "").startswith(pkglib.TEST_NODE)


def serve_names_its_listen_address(w, cm):
    assert "--listen" in w.args


def listens_beyond_loopback(w, cm):
    # serve listens on loopback unless told; the kubelet and Prometheus come from outside.
    listen = w.args[w.args.index("--listen") + 1]
    assert listen.rsplit(":", 1)[0].strip("[]") not in ("127.0.0.1", "::1", "localhost"), listen


def container_port_matches_listen(w, cm):
    assert {p["name"]: p["containerPort"] for p in w.container["ports"]}.get("metrics") == w.port


def prometheus_port_annotation_matches_listen(w, cm):
    assert w.template_meta.get("annotations", {}).get("prometheus.io/port") == str(w.port)


def liveness_probe_asks_healthz_on_the_metrics_port(w, cm):
    get = w.container["livenessProbe"]["httpGet"]
    assert (get["path"], get["port"]) == ("/healthz", "metrics")


def readiness_probe_asks_healthz_on_the_metrics_port(w, cm):
    get = w.container["readinessProbe"]["httpGet"]
    assert (get["path"], get["port"]) == ("/healthz", "metrics")


def never_restarts_a_finished_run(w, cm):
    assert w.spec.get("restartPolicy") == "Never"


def prints_the_json_report(w, cm):
    assert w.args[:3] == ["run", "--format", "json"]


def uses_the_nodes_resolver_with_host_network(w, cm):
    assert w.spec.get("dnsPolicy") == "Default"


def relabels_the_namespace_as_host_network_needs(w, cm):
    assert any(d["kind"] == "Namespace" and d["metadata"]["labels"].get("pod-security.kubernetes.io/enforce")
               == "privileged" for d in w.docs_in_file)


EVERY_POD = [pods_are_labelled, runs_as_non_root, uses_runtime_default_seccomp,
             mounts_no_service_account_token, runs_on_amd64_and_arm64, has_a_read_only_root,
             forbids_privilege_escalation, drops_all_capabilities, is_not_privileged,
             has_cpu_and_memory_requests_and_limits, image_is_a_registry_amlprobe_version_name,
             takes_the_packaged_configmap, env_from_fields_are_the_node_name,
             names_its_reports_after_the_node]
SERVE = [serve_names_its_listen_address, listens_beyond_loopback, container_port_matches_listen,
         prometheus_port_annotation_matches_listen, liveness_probe_asks_healthz_on_the_metrics_port,
         readiness_probe_asks_healthz_on_the_metrics_port]
RUN = [never_restarts_a_finished_run, prints_the_json_report]
HOST_NETWORK = [uses_the_nodes_resolver_with_host_network, relabels_the_namespace_as_host_network_needs]


def workload_rules():
    out = []
    for w in pkglib.workloads(pkglib.manifests()):
        rules = EVERY_POD + (SERVE if w.serve else RUN) + (HOST_NETWORK if w.spec.get("hostNetwork") else [])
        out += [pytest.param(w, rule, id=f"{w.where} {rule.__name__}") for rule in rules]
    return out


@pytest.mark.parametrize(("workload", "rule"), params(workload_rules, width=2))
def test_workload(workload, rule):
    rule(workload, pkglib.configmap(pkglib.manifests()))


def test_four_workloads_job_cronjob_and_two_daemonsets():
    kinds = sorted(w.kind for w in pkglib.workloads(pkglib.manifests()))
    assert kinds == ["CronJob", "DaemonSet", "DaemonSet", "Job"]


# ---------------------------------------------------------------- container image


def containerfile():
    return pkglib.CONTAINERFILE.read_text(encoding="utf-8").splitlines()


def test_containerfile_is_from_scratch():
    assert "FROM scratch" in containerfile()


def test_containerfile_runs_as_a_numeric_non_root_user(containerfile_user):
    assert containerfile_user != "0"


def test_containerfile_entrypoint_is_where_the_binary_is_copied():
    (entry,) = [m.group(1) for l in containerfile() if (m := re.fullmatch(r'ENTRYPOINT \["([^"]*)"\]', l))]
    assert f"COPY amlprobe {entry}" in containerfile()


def test_containerfile_exposes_the_daemonsets_port():
    (ds,) = [w for w in pkglib.workloads(pkglib.manifests()) if w.key == "daemonset-amlprobe"]
    assert f"EXPOSE {ds.port}" in containerfile()


def test_build_sh_parses_as_bash():
    sh_syntax("bash", pkglib.PKG / "container/build.sh")


@pytest.fixture(scope="module")
def build_context(amlprobe, amlprobe_arm64, tmp_path_factory):
    ctx = tmp_path_factory.mktemp("ctx")
    env = dict(os.environ, AMLPROBE_BIN=amlprobe, AMLPROBE_BIN_AARCH64=amlprobe_arm64)
    got = subprocess.run(["bash", str(pkglib.PKG / "container/build.sh"), "--context-only", str(ctx)],
                         env=env, capture_output=True, text=True, cwd=pkglib.ROOT)
    assert got.returncode == 0, got.stderr
    return ctx


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_build_sh_stages_the_binary_ca_bundle_and_containerfile(arch, build_context):
    ctx = build_context
    assert os.access(ctx / arch / "amlprobe", os.X_OK)
    assert (ctx / arch / "ca-certificates.crt").stat().st_size > 0
    assert (ctx / arch / "Containerfile").is_file()


def test_image_index_holds_exactly_amd64_and_arm64(oci_layout):
    assert sorted(pkglib.oci_images(*oci_layout)) == ["amd64", "arm64"]


def image(oci_layout, arch):
    images = pkglib.oci_images(*oci_layout)
    assert arch in images, sorted(images)
    return images[arch]


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_image_os_is_linux(oci_layout, arch):
    desc, _, config = image(oci_layout, arch)
    assert desc["platform"]["os"] == "linux" and config["os"] == "linux"


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_image_config_names_its_architecture(oci_layout, arch):
    assert image(oci_layout, arch)[2]["architecture"] == arch


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_image_runs_as_the_containerfiles_user(oci_layout, arch, containerfile_user):
    assert image(oci_layout, arch)[2]["config"]["User"] == f"{containerfile_user}:{containerfile_user}"


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_image_layers_match_their_digests(oci_layout, arch):
    _, manifest, _ = image(oci_layout, arch)
    assert manifest["layers"]
    for layer in manifest["layers"]:
        pkglib.oci_blob(oci_layout[0], layer)


# A second implementation reads the layout too: skopeo resolves each platform and checks digests.
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_skopeo_resolves_the_platform_in_the_index(oci_layout, arch):
    layout, tag = oci_layout
    got = subprocess.run([tool("skopeo"), "--override-os", "linux", "--override-arch", arch, "inspect",
                          "--config", f"oci:{layout}:{tag}"], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    config = json.loads(got.stdout)
    assert (config["os"], config["architecture"]) == ("linux", arch)


def test_skopeo_copies_the_whole_index(oci_layout, tmp_path):
    layout, tag = oci_layout
    got = subprocess.run([tool("skopeo"), "copy", "--quiet", "--all", f"oci:{layout}:{tag}",
                          f"oci:{tmp_path}/copy:{tag}"], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
