#!/usr/bin/env python3
"""`rust-version` is true: at least the highest `rust-version` that any
dependency of a workspace crate declares in Cargo.lock (normal and build
dependencies, for this platform), and the README names the same version.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))


def version(v):
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3]) + (0,) * (3 - len(re.findall(r"\d+", v)[:3]))


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked",
             "--filter-platform", subprocess.run(["rustc", "-vV"], capture_output=True, text=True,
                                                 check=True).stdout.split("host: ")[1].split()[0]],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    problems = []
    for member in meta["workspace_members"]:
        pkg = packages[member]
        claimed = pkg.get("rust_version")
        # Normal and build dependencies, transitively: what a user of the
        # crate compiles. Dev-dependencies only count for the crate itself.
        seen, todo = set(), [member]
        while todo:
            node = nodes[todo.pop()]
            for dep in node["deps"]:
                kinds = {k["kind"] for k in dep["dep_kinds"]}
                if node["id"] != member and kinds <= {"dev"}:
                    continue
                if dep["pkg"] not in seen:
                    seen.add(dep["pkg"])
                    todo.append(dep["pkg"])
        needed = max(
            ((packages[d].get("rust_version") or "0", packages[d]["name"]) for d in seen
             if packages[d]["source"]),
            key=lambda t: version(t[0]),
            default=("0", "-"),
        )
        status = "ok"
        if claimed is None or version(claimed) < version(needed[0]):
            status = "TOO LOW"
            problems.append(pkg["name"])
        print(f"{pkg['name']}: rust-version {claimed}, dependencies need {needed[0]} ({needed[1]}): {status}")
    root = next(packages[m] for m in meta["workspace_members"] if packages[m]["name"] == "mimi-onion")
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    if f"Rust {root['rust_version']} or newer" not in readme:
        problems.append("README")
        print(f"README.md does not say 'Rust {root['rust_version']} or newer'")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
