"""Static checks and command extraction for packaging/check.sh.

Each subcommand prints one `ok - ...` line per passed check and exits 1 with a `FAIL - ...` line
on the first failed one. check.sh counts the `ok` lines and runs what this extracts.
"""

import json
import pathlib
import re
import shlex
import sys
import urllib.error
import urllib.request

import yaml

IMAGE_RE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/amlprobe:[0-9]+\.[0-9]+\.[0-9]+$")
# A node name for the downward API (spec.nodeName) when check.sh runs a manifest's command.
TEST_NODE = "aks-check-node-0"


def ok(what):
    print(f"ok - {what}")


def fail(what):
    print(f"FAIL - {what}")
    sys.exit(1)


def check(cond, what):
    if cond:
        ok(what)
    else:
        fail(what)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def yaml_all(root):
    """Every YAML file under packaging/ parses, and has at least one document."""
    files = sorted(pathlib.Path(root).rglob("*.yaml"))
    check(files, f"{root} has YAML files")
    for path in files:
        try:
            docs = load_all(path)
        except yaml.YAMLError as e:
            fail(f"{path} is not valid YAML: {e}")
        check(docs, f"{path} parses ({len(docs)} document(s))")


def cloud_init(path, out):
    """Checks the cloud-config's shape and writes its files and runcmd scripts under `out`."""
    text = pathlib.Path(path).read_text(encoding="utf-8")
    check(text.startswith("#cloud-config\n"), f"{path} starts with #cloud-config")
    (doc,) = load_all(path)
    check(set(doc) <= {"write_files", "runcmd", "package_update", "packages"},
          f"{path} uses only write_files and runcmd (got {sorted(doc)})")
    out = pathlib.Path(out)
    written = set()
    for entry in doc["write_files"]:
        check({"path", "content", "permissions"} <= set(entry),
              f"write_files {entry.get('path')} has path, content and permissions")
        check(re.fullmatch(r"0[0-7]{3}", entry["permissions"]) is not None,
              f"write_files {entry['path']} permissions {entry['permissions']!r} are a quoted octal mode")
        dest = out / "files" / entry["path"].lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(entry["content"], encoding="utf-8")
        dest.chmod(int(entry["permissions"], 8))
        written.add(entry["path"])
    for i, cmd in enumerate(doc["runcmd"]):
        check(isinstance(cmd, str), f"runcmd[{i}] is a shell script")
        for used in re.findall(r"(/(?:etc|usr/local/sbin)/[\w./-]+)", cmd):
            check(used in written, f"runcmd[{i}] uses {used}, which write_files provides")
        (out / f"runcmd-{i}.sh").write_text(cmd, encoding="utf-8")


def cloud_init_schema(path, schema_path):
    """Validates the cloud-config against cloud-init's own JSON schema."""
    import jsonschema

    schema = json.loads(pathlib.Path(schema_path).read_text(encoding="utf-8"))
    (doc,) = load_all(path)
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(doc), key=str)
    check(not errors, f"{path} matches cloud-init's schema"
          + "".join(f"\n    {'/'.join(map(str, e.path))}: {e.message}" for e in errors))


def systemd_exec(unit):
    """Prints the unit's ExecStart= command, one argument per line."""
    for line in pathlib.Path(unit).read_text(encoding="utf-8").splitlines():
        if line.startswith("ExecStart="):
            print("\n".join(shlex.split(line[len("ExecStart="):])))
            return
    fail(f"{unit} has no ExecStart=")


def pod_specs(doc):
    """(workload name, pod template spec, template labels) of a Job, CronJob or DaemonSet."""
    if doc["kind"] == "CronJob":
        template = doc["spec"]["jobTemplate"]["spec"]["template"]
    elif doc["kind"] in ("Job", "DaemonSet"):
        template = doc["spec"]["template"]
    else:
        return None
    return doc["metadata"]["name"], template["spec"], template["metadata"].get("labels", {})


def env_of(container, configmap, node=TEST_NODE):
    """The container's environment as Kubernetes builds it: envFrom, then env with $(VAR) expanded."""
    env = {}
    for source in container.get("envFrom", []):
        if source["configMapRef"]["name"] != configmap["metadata"]["name"]:
            fail(f"envFrom names ConfigMap {source['configMapRef']['name']}, not the packaged one")
        env.update(configmap["data"])
    for var in container.get("env", []):
        if "valueFrom" in var:
            field = var["valueFrom"]["fieldRef"]["fieldPath"]
            check(field == "spec.nodeName", f"{var['name']} comes from {field}")
            env[var["name"]] = node
        else:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)),
                                      var["value"])
    return env


def k8s(directory, out, run_help):
    """Security and consistency assertions; writes NAME.env/.args/.meta for each workload."""
    directory, out = pathlib.Path(directory), pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    docs = {p.name: load_all(p) for p in sorted(directory.glob("*.yaml"))}
    (configmap,) = [d for ds in docs.values() for d in ds if d["kind"] == "ConfigMap"]
    known_env = set(re.findall(r"env: (AMLPROBE_\w+)=", pathlib.Path(run_help).read_text()))
    for key in configmap["data"]:
        check(key in known_env, f"ConfigMap key {key} is an `amlprobe run` variable")
    namespaces = [d for ds in docs.values() for d in ds if d["kind"] == "Namespace"]
    check(any(n["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted"
              for n in namespaces), "namespace.yaml enforces the restricted Pod Security Standard")
    workloads = 0
    for name, ds in docs.items():
        for doc in ds:
            meta = doc["metadata"]
            if doc["kind"] == "Namespace":
                check(meta["name"] == "amlprobe", f"{name} Namespace is amlprobe")
            else:
                check(meta.get("namespace") == "amlprobe", f"{name} {doc['kind']} is in namespace amlprobe")
            check(meta.get("labels", {}).get("app.kubernetes.io/name") == "amlprobe",
                  f"{name} {doc['kind']} is labelled app.kubernetes.io/name=amlprobe")
            found = pod_specs(doc)
            if found is None:
                continue
            workloads += 1
            wname, spec, labels = found
            where = f"{name} {doc['kind']}/{wname}"
            check(labels.get("app.kubernetes.io/name") == "amlprobe", f"{where} pods are labelled")
            sec = spec.get("securityContext", {})
            check(sec.get("runAsNonRoot") is True and sec.get("runAsUser", 0) > 0,
                  f"{where} runs as a non-root uid ({sec.get('runAsUser')})")
            check(sec.get("seccompProfile", {}).get("type") == "RuntimeDefault",
                  f"{where} uses the RuntimeDefault seccomp profile")
            check(spec.get("automountServiceAccountToken") is False,
                  f"{where} mounts no service account token")
            # The image is an amd64 + arm64 index: pinning an architecture would leave nodes out.
            pins = [k for k in ("nodeSelector", "affinity", "tolerations")
                    if "kubernetes.io/arch" in json.dumps(spec.get(k, {}))]
            check(not pins, f"{where} runs on amd64 and arm64 nodes (no kubernetes.io/arch in {pins or 'any'})")
            host_network = spec.get("hostNetwork", False)
            if host_network:
                check(spec.get("dnsPolicy") == "Default",
                      f"{where} uses the node's resolver (dnsPolicy: Default) with hostNetwork")
                check(any(n["metadata"]["labels"].get("pod-security.kubernetes.io/enforce")
                          == "privileged" for n in ds if n["kind"] == "Namespace"),
                      f"{name} relabels the namespace, as hostNetwork needs")
            (container,) = spec["containers"]
            csec = container.get("securityContext", {})
            check(csec.get("readOnlyRootFilesystem") is True, f"{where} has a read-only root")
            check(csec.get("allowPrivilegeEscalation") is False, f"{where} forbids privilege escalation")
            check(csec.get("capabilities", {}).get("drop") == ["ALL"] and
                  not csec.get("capabilities", {}).get("add"), f"{where} drops all capabilities")
            check("privileged" not in csec, f"{where} is not privileged")
            res = container.get("resources", {})
            check(all(k in res.get(t, {}) for t in ("requests", "limits") for k in ("cpu", "memory")),
                  f"{where} has cpu and memory requests and limits")
            check(IMAGE_RE.match(container["image"]) is not None,
                  f"{where} image {container['image']} is a registry/amlprobe:<version> name")
            env = env_of(container, configmap)
            check(env.get("AMLPROBE_HOST_NAME", "").startswith(TEST_NODE),
                  f"{where} names its reports after the node (spec.nodeName)")
            args = container["args"]
            metrics_only = "--metrics-only" in args
            if args[0] == "serve":
                # serve listens on loopback unless told; the kubelet and Prometheus come from outside.
                check("--listen" in args, f"{where} serve names its --listen address")
                listen = args[args.index("--listen") + 1]
                host = listen.rsplit(":", 1)[0].strip("[]")
                check(host not in ("127.0.0.1", "::1", "localhost"),
                      f"{where} listens beyond loopback ({listen}) for the kubelet and Prometheus")
                port = int(listen.rsplit(":", 1)[1])
                ports = {p["name"]: p["containerPort"] for p in container["ports"]}
                check(ports.get("metrics") == port, f"{where} containerPort matches --listen :{port}")
                annotations = doc["spec"]["template"]["metadata"].get("annotations", {})
                check(annotations.get("prometheus.io/port") == str(port),
                      f"{where} prometheus.io/port annotation matches :{port}")
                for probe in ("livenessProbe", "readinessProbe"):
                    get = container[probe]["httpGet"]
                    check(get["path"] == "/healthz" and get["port"] == "metrics",
                          f"{where} {probe} asks /healthz on the metrics port")
            else:
                check(spec.get("restartPolicy") == "Never", f"{where} never restarts a finished run")
                check(args[:3] == ["run", "--format", "json"], f"{where} prints the JSON report")
            key = f"{doc['kind'].lower()}-{wname}"
            (out / f"{key}.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
            (out / f"{key}.args").write_text("".join(f"{a}\n" for a in args))
            (out / f"{key}.meta").write_text(json.dumps({
                "where": where, "host": env["AMLPROBE_HOST_NAME"],
                "suites": env["AMLPROBE_SUITE"].split(","), "region": env["AMLPROBE_REGION"],
                "workspace_id": env["AMLPROBE_WORKSPACE_ID"],
                "port": port if args[0] == "serve" else None,
                "report": "off" if metrics_only else "on"}))
    check(workloads == 4, f"4 workloads (Job, CronJob, 2 DaemonSets) found ({workloads})")


def report(path, host, suites, region, workspace_id):
    """A report from a packaged command: valid, from this config, and honest about a dead network."""
    r = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    check(r.get("schema_version") == 1 and r["tool"]["name"] == "amlprobe", f"{path} is a report")
    if host != "-":
        check(r["host"]["hostname"] == host, f"{path} names host {host} ({r['host']['hostname']})")
    check(r["settings"]["suites"] == suites.split(","), f"{path} ran suites {suites}")
    check(r["context"]["region"] == region and r["context"]["workspace_id"] == workspace_id,
          f"{path} used the packaged region and workspace id")
    s = r["summary"]
    # No DNS and no route: nothing can work, and every required testable flow must say blocked.
    check(s["works"] == 0 and s["blocked"] > 0, f"{path}: 0 works, {s['blocked']} blocked")
    bad = [f["id"] for f in r["flows"] if f["status"] == "blocked" and not f["reason"].startswith(
        ("dns_", "tcp_"))]
    check(not bad, f"{path}: every blocked flow has a DNS or TCP reason ({bad or 'none other'})")


def oci_blob(layout, descriptor):
    """The bytes a descriptor points at, checked against its digest and size."""
    import hashlib

    algo, digest = descriptor["digest"].split(":")
    data = (pathlib.Path(layout) / "blobs" / algo / digest).read_bytes()
    if hashlib.sha256(data).hexdigest() != digest or len(data) != descriptor["size"]:
        fail(f"blob {descriptor['digest']} does not match its digest or size")
    return data


def oci_images(layout, tag):
    """{architecture: (manifest, config)} of the image index tagged `tag` in an OCI layout."""
    index = json.loads((pathlib.Path(layout) / "index.json").read_text(encoding="utf-8"))
    tops = [m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
    if len(tops) != 1 or tops[0]["mediaType"] != "application/vnd.oci.image.index.v1+json":
        fail(f"index.json has no image index tagged {tag}: {index}")
    images = {}
    for desc in json.loads(oci_blob(layout, tops[0]))["manifests"]:
        manifest = json.loads(oci_blob(layout, desc))
        config = json.loads(oci_blob(layout, manifest["config"]))
        images[desc["platform"]["architecture"]] = (desc, manifest, config)
    return images


def oci_index(layout, tag, user):
    """The tag is an image index of exactly linux/amd64 and linux/arm64, each image's config
    naming the same architecture, every blob matching its digest."""
    images = oci_images(layout, tag)
    check(sorted(images) == ["amd64", "arm64"], f"{tag} is an image index of amd64 and arm64 ({sorted(images)})")
    for arch, (desc, manifest, config) in sorted(images.items()):
        check(desc["platform"]["os"] == "linux" and config["os"] == "linux", f"{arch}: os linux")
        check(config["architecture"] == arch, f"{arch}: the image config says architecture {config['architecture']}")
        check(config["config"]["User"] == f"{user}:{user}", f"{arch}: runs as {config['config']['User']}")
        for layer in manifest["layers"]:
            oci_blob(layout, layer)
        ok(f"{arch}: manifest, config and {len(manifest['layers'])} layer(s) match their digests")


def oci_bundle(layout, tag, arch, bundle, base_spec, env_file, resolv_conf, *args):
    """Unpacks the `arch` image of the index `tag` into an OCI runtime bundle and writes its config.

    The process gets the image's user, entrypoint and environment, `args` (or CMD), a read-only
    root, no capabilities, a network namespace of its own and the resolv.conf bind mount that
    kubelet adds, so runc runs it the way kubelet would start the pod. With args
    `--qemu PATH ...`, the emulator is bind-mounted at /qemu and runs the entrypoint (no binfmt
    needed).
    """
    import gzip
    import io
    import tarfile

    bundle = pathlib.Path(bundle)
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    _, manifest, config = oci_images(layout, tag)[arch]
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(oci_blob(layout, layer)))) as tar:
            # The "tar" filter (Python >= 3.11.4) refuses absolute paths and links out of rootfs.
            tar.extractall(rootfs, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
    image = config["config"]
    qemu_path = None
    if args[:1] == ("--qemu",):
        qemu_path, args = args[1], args[2:]
    uid, gid = (int(x) for x in image["User"].split(":"))
    check(uid != 0, f"the {arch} image runs as uid {uid}")
    spec = json.loads(pathlib.Path(base_spec).read_text(encoding="utf-8"))
    process = spec["process"]
    process["args"] = ((["/qemu"] if qemu_path else []) + image["Entrypoint"]
                       + (list(args) or image.get("Cmd", [])))
    process["user"] = {"uid": uid, "gid": gid}
    process["env"] = image["Env"] + pathlib.Path(env_file).read_text(encoding="utf-8").splitlines()
    process["terminal"] = False
    process["noNewPrivileges"] = True
    process["capabilities"] = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
    spec["root"] = {"path": "rootfs", "readonly": True}
    spec["mounts"].append({"destination": "/etc/resolv.conf", "type": "bind", "source": resolv_conf,
                           "options": ["rbind", "ro"]})
    if qemu_path:
        spec["mounts"].append({"destination": "/qemu", "type": "bind", "source": qemu_path,
                               "options": ["rbind", "ro"]})
    # No cgroup settings: the check runs where cgroups may not be delegated.
    spec["linux"].pop("resources", None)
    spec["linux"].pop("cgroupsPath", None)
    check({"type": "network"} in spec["linux"]["namespaces"], "the container gets its own network namespace")
    (bundle / "config.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")


def fetch(url, what):
    """GET url; prints its status code (`status`) or its body (`body`)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except OSError as e:
        status, body = 0, str(e).encode()
    if what == "status":
        print(status)
    else:
        sys.stdout.write(body.decode("utf-8", "replace"))


COMMANDS = {
    "yaml-all": yaml_all, "cloud-init": cloud_init, "cloud-init-schema": cloud_init_schema,
    "systemd-exec": systemd_exec, "k8s": k8s, "report": report, "fetch": fetch,
    "oci-bundle": oci_bundle, "oci-index": oci_index,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
