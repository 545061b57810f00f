"""Builds the Containerfile into a multi-arch OCI image layout, without a container engine.

    python3 oci.py OUT TAG VERSION ARCH=CONTEXT...      e.g. amd64=ctx/amd64 arm64=ctx/arm64

Each CONTEXT holds the Containerfile and the files it COPYs (build.sh stages them). The recipe is
FROM scratch with COPY, USER, ENV, EXPOSE, ENTRYPOINT and CMD only, so an image is one layer and
a config: no engine and no emulation are needed to build the arm64 image on an x86_64 machine.
OUT gets oci-layout, index.json (one entry, the image index, named TAG) and blobs/sha256/. The
bytes are reproducible: fixed mtimes and owners, sorted entries, no gzip timestamp.
"""

import gzip
import hashlib
import io
import json
import pathlib
import sys
import tarfile

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class RecipeError(Exception):
    """The Containerfile uses something this builder does not implement."""


def blob(out, data, media_type, **extra):
    """Writes data as a blob; returns its descriptor."""
    digest = hashlib.sha256(data).hexdigest()
    (out / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data), **extra}


def canonical(doc):
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def layer_and_config(context, arch, version):
    """(gzipped layer tar, uncompressed layer digest, image config) for one context."""
    lines = (context / "Containerfile").read_text(encoding="utf-8").splitlines()
    steps = [ln.split(None, 1) for ln in lines if ln.strip() and not ln.startswith("#")]
    if steps[0] != ["FROM", "scratch"]:
        raise RecipeError("the Containerfile must start FROM scratch")
    config = {"Env": [], "Labels": {"org.opencontainers.image.title": "amlprobe",
                                    "org.opencontainers.image.version": version}}
    files = {}
    for op, arg in steps[1:]:
        if op == "COPY":
            src, dest = arg.split()
            files[dest.lstrip("/")] = context / src
        elif op == "USER":
            config["User"] = arg
        elif op == "ENV":
            config["Env"].append(arg)
        elif op == "EXPOSE":
            config.setdefault("ExposedPorts", {})[f"{arg}/tcp"] = {}
        elif op in ("ENTRYPOINT", "CMD"):
            config["Entrypoint" if op == "ENTRYPOINT" else "Cmd"] = json.loads(arg)
        else:
            raise RecipeError(f"the Containerfile uses {op}, which this builder does not implement")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(pathlib.PurePosixPath(p).parents[i]) for p in files
                       for i in range(len(pathlib.PurePosixPath(p).parents) - 1)})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for dest in sorted(files):
            data = files[dest].read_bytes()
            info = tarfile.TarInfo(dest)
            info.size = len(data)
            info.mode = 0o755 if files[dest].stat().st_mode & 0o111 else 0o644
            tar.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    layer = gzip.compress(raw.getvalue(), mtime=0)
    image = {"architecture": arch, "os": "linux", "config": config,
             "rootfs": {"type": "layers", "diff_ids": [diff_id]},
             "created": "1970-01-01T00:00:00Z"}
    return layer, image


def build(out, tag, version, *contexts):
    out = pathlib.Path(out)
    (out / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    manifests = []
    for spec in contexts:
        arch, context = spec.split("=", 1)
        layer, image = layer_and_config(pathlib.Path(context), arch, version)
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                    "config": blob(out, canonical(image), CONFIG),
                    "layers": [blob(out, layer, LAYER)]}
        manifests.append(blob(out, canonical(manifest), MANIFEST,
                              platform={"architecture": arch, "os": "linux"}))
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}
    top = blob(out, canonical(index), INDEX, annotations={"org.opencontainers.image.ref.name": tag})
    (out / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}), encoding="utf-8")
    (out / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [top]},
                                               indent=1), encoding="utf-8")


if __name__ == "__main__":
    try:
        build(*sys.argv[1:])
    except RecipeError as e:
        print(f"oci.py: {e}", file=sys.stderr)
        sys.exit(1)
