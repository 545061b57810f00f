#!/usr/bin/env python3
"""Regenerates the "Every flow" table of docs/sources.md from `amlprobe suites --format json`
(every suite, all three clouds), so the table says what the suites say; a unit test
(`docs_sources_lists_every_flow_with_its_source`) fails when they differ.

    cargo build --release && python3 docs/sources_table.py
"""
import json
import subprocess

BIN = "target/release/amlprobe"
SUITES = ["workspace", "compute", "images", "studio", "aks", "aks-training", "arc", "optional"]
# Every template variable set, so every flow renders (the names are placeholders).
CONTEXT = ["--region", "eastus", "--workspace-id", "fb7e20a0-8891-458b-b969-55ddb3382f51",
           "--workspace-name", "myws", "--storage-account", "mystorage", "--key-vault", "mykv",
           "--container-registry", "myacr01", "--compute-instance", "ci-alice"]


def listing(cloud):
    args = [BIN, "suites", "--format", "json", "--cloud", cloud, *CONTEXT]
    for suite in SUITES:
        args += ["--suite", suite]
    return json.loads(subprocess.check_output(args))


def level(spec):
    words = "required" if spec["required"] else "optional"
    extra = []
    if spec.get("when"):
        extra.append("when " + ", ".join(spec["when"]))
    if spec.get("optional_in"):
        extra.append("optional in " + ", ".join(spec["optional_in"]))
    if spec.get("hosts_match") == "any":
        extra.append("any one host")
    return f"{words} ({'; '.join(extra)})" if extra else words


def rows():
    seen = {}
    for cloud in ["public", "usgov", "china"]:
        for suite in listing(cloud)["suites"]:
            for flow in suite["flows"]:
                seen.setdefault(flow["spec"]["id"], flow["spec"])
    for spec in seen.values():
        clouds = ", ".join(spec["clouds"]) if spec.get("clouds") else "all"
        source = spec["source"].replace("|", "\\|")
        yield f"| `{spec['id']}` | {clouds} | {level(spec)} | {source} |"


def main():
    doc = open("docs/sources.md").read()
    head, rest = doc.split("## Every flow", 1)
    lines = rest.split("\n")
    start = next(i for i, l in enumerate(lines) if l.startswith("|---")) + 1
    end = start
    while end < len(lines) and lines[end].startswith("| `"):
        end += 1
    lines[start:end] = list(rows())
    with open("docs/sources.md", "w") as f:
        f.write(head + "## Every flow" + "\n".join(lines))


if __name__ == "__main__":
    main()
