"""What the packaging tests share: the packaged files parsed, the Kubernetes workloads with the
environment Kubernetes would give them, the checks every packaged command's report must pass,
and the OCI image layout read back."""

import gzip
import hashlib
import io
import json
import pathlib
import re
import tarfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PKG = ROOT / "packaging"
K8S = PKG / "kubernetes"
CLOUD_INIT = PKG / "cloud-init" / "amlprobe.yaml"
SERVICE = PKG / "systemd" / "amlprobe.service"
TIMER = PKG / "systemd" / "amlprobe.timer"
CONTAINERFILE = PKG / "container" / "Containerfile"
ALERTS = PKG / "prometheus" / "amlprobe-alerts.yml"

IMAGE_RE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/amlprobe:[0-9]+\.[0-9]+\.[0-9]+$")
# A node name for the downward API (spec.nodeName) when a manifest's command runs.
TEST_NODE = "aks-check-node-0"


def load_all(path):
    """The non-empty YAML documents of a file."""
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def manifests():
    """{file name: documents} of every Kubernetes manifest; a file that does not parse is left
    out (its YAML test fails)."""
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        try:
            docs[path.name] = load_all(path)
        except yaml.YAMLError:
            continue
    return docs


def configmap(docs):
    """The one packaged ConfigMap."""
    (cm,) = [d for ds in docs.values() for d in ds if d.get("kind") == "ConfigMap"]
    return cm


class Workload:
    """A Job, CronJob or DaemonSet with its pod template, its one container and the environment
    Kubernetes would give that container."""

    def __init__(self, file, doc, docs):
        self.file, self.doc, self.docs_in_file = file, doc, docs
        self.kind = doc["kind"]
        template = (doc["spec"]["jobTemplate"]["spec"]["template"] if self.kind == "CronJob"
                    else doc["spec"]["template"])
        self.name = doc["metadata"]["name"]
        self.template_meta = template["metadata"]
        self.spec = template["spec"]
        (self.container,) = self.spec["containers"]
        self.args = self.container["args"]
        self.where = f"{file} {self.kind}/{self.name}"
        self.key = f"{self.kind.lower()}-{self.name}"

    @property
    def serve(self):
        return self.args[0] == "serve"

    @property
    def port(self):
        return int(self.args[self.args.index("--listen") + 1].rsplit(":", 1)[1])

    def env(self, cm):
        """envFrom first, then env with $(VAR) expanded, spec.nodeName as TEST_NODE."""
        env = {}
        for source in self.container.get("envFrom", []):
            if source["configMapRef"]["name"] == cm["metadata"]["name"]:
                env.update(cm["data"])
        for var in self.container.get("env", []):
            if "valueFrom" in var:
                env[var["name"]] = TEST_NODE
            else:
                env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)),
                                          var["value"])
        return env


def workloads(docs):
    """Every workload of the manifests, in file order."""
    return [Workload(file, d, ds) for file, ds in docs.items() for d in ds
            if d.get("kind") in ("Job", "CronJob", "DaemonSet")]


def params(make, width=1):
    """`make()`'s pytest parameters; if the files are too broken to enumerate them, one parameter
    whose test fails with the reason (conftest.py), so the rest of the run still collects and runs."""
    try:
        return make()
    except Exception as e:  # noqa: BLE001 - any shape error in a packaged file lands here
        return [pytest.param(*[None] * width, marks=pytest.mark.enumerate_failed(repr(e)), id="enumerate")]


class Expected:
    """What a packaged command's report must say: the host (None: not checked), the suites, and
    the region and workspace id its settings name."""

    def __init__(self, host, suites, region, workspace_id):
        self.host, self.suites, self.region, self.workspace_id = host, suites, region, workspace_id

    @classmethod
    def of(cls, env):
        """What a Kubernetes workload with this environment must report."""
        return cls(env["AMLPROBE_HOST_NAME"], env["AMLPROBE_SUITE"].split(","),
                   env["AMLPROBE_REGION"], env["AMLPROBE_WORKSPACE_ID"])


def report_is_a_report(r, exp):
    assert r.get("schema_version") == 2 and r["tool"]["name"] == "amlprobe"


def report_names_the_host(r, exp):
    assert r["host"]["hostname"] == exp.host


def report_ran_the_packaged_suites(r, exp):
    assert r["settings"]["suites"] == exp.suites


def report_used_the_packaged_context(r, exp):
    assert (r["context"]["region"], r["context"]["workspace_id"]) == (exp.region, exp.workspace_id)


def report_nothing_works(r, exp):
    # No DNS and no route: nothing can work, and every required testable flow must say blocked.
    s = r["summary"]
    assert s["works"] == 0 and s["blocked"] > 0, s


def report_blocked_by_dns_or_tcp(r, exp):
    bad = [(f["id"], f["reason"]) for f in r["flows"]
           if f["status"] == "blocked" and not f["reason"].startswith(("dns_", "tcp_"))]
    assert not bad


REPORT_CHECKS = {f.__name__[len("report_"):]: f for f in (
    report_is_a_report, report_names_the_host, report_ran_the_packaged_suites,
    report_used_the_packaged_context, report_nothing_works, report_blocked_by_dns_or_tcp)}


def check_report(path, exp, check):
    """Runs one of REPORT_CHECKS on the JSON report at `path`."""
    text = pathlib.Path(path).read_text(encoding="utf-8")
    REPORT_CHECKS[check](json.loads(text), exp)


def oci_blob(layout, descriptor):
    """The bytes a descriptor points at, checked against its digest and size."""
    algo, digest = descriptor["digest"].split(":")
    data = (pathlib.Path(layout) / "blobs" / algo / digest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == digest and len(data) == descriptor["size"], \
        f"blob {descriptor['digest']} does not match its digest or size"
    return data


def oci_images(layout, tag):
    """{architecture: (descriptor, manifest, config)} of the image index tagged `tag`."""
    index = json.loads((pathlib.Path(layout) / "index.json").read_text(encoding="utf-8"))
    tops = [m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
    assert len(tops) == 1 and tops[0]["mediaType"] == "application/vnd.oci.image.index.v1+json", \
        f"index.json has no image index tagged {tag}: {index}"
    images = {}
    for desc in json.loads(oci_blob(layout, tops[0]))["manifests"]:
        manifest = json.loads(oci_blob(layout, desc))
        config = json.loads(oci_blob(layout, manifest["config"]))
        images[desc["platform"]["architecture"]] = (desc, manifest, config)
    return images


def oci_bundle(layout, tag, arch, bundle, base_spec, env, resolv_conf, args, qemu=None):
    """Unpacks the `arch` image of the index `tag` into an OCI runtime bundle; returns its spec.

    The process gets the image's user, entrypoint and environment plus `env`, `args` (or CMD), a
    read-only root, no capabilities, a network namespace of its own and the resolv.conf bind
    mount that kubelet adds, so runc runs it the way kubelet would start the pod. With `qemu`,
    the emulator is bind-mounted at /qemu and runs the entrypoint (no binfmt needed).
    """
    bundle = pathlib.Path(bundle)
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    _, manifest, config = oci_images(layout, tag)[arch]
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(oci_blob(layout, layer)))) as tar:
            # The "tar" filter (Python >= 3.11.4) refuses absolute paths and links out of rootfs.
            tar.extractall(rootfs, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
    image = config["config"]
    uid, gid = (int(x) for x in image["User"].split(":"))
    spec = json.loads(pathlib.Path(base_spec).read_text(encoding="utf-8"))
    process = spec["process"]
    process["args"] = ((["/qemu"] if qemu else []) + image["Entrypoint"]
                       + (list(args) or image.get("Cmd", [])))
    process["user"] = {"uid": uid, "gid": gid}
    process["env"] = image["Env"] + [f"{k}={v}" for k, v in env.items()]
    process["terminal"] = False
    process["noNewPrivileges"] = True
    process["capabilities"] = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
    spec["root"] = {"path": "rootfs", "readonly": True}
    spec["mounts"].append({"destination": "/etc/resolv.conf", "type": "bind", "source": str(resolv_conf),
                           "options": ["rbind", "ro"]})
    if qemu:
        spec["mounts"].append({"destination": "/qemu", "type": "bind", "source": qemu,
                               "options": ["rbind", "ro"]})
    # No cgroup settings: the check runs where cgroups may not be delegated.
    spec["linux"].pop("resources", None)
    spec["linux"].pop("cgroupsPath", None)
    (bundle / "config.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return spec
