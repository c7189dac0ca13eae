#!/usr/bin/env python3
"""No file in the repository links outside it.

Checks every file git tracks:
  * Markdown links and images, `[text](target)` and `src="target"`, whose
    target is a path (not a URL or an anchor): it must resolve inside the
    repository and exist.
  * Rust `include_str!` / `include_bytes!` paths: the same.
  * No mention of folders that only exist beside a checkout (`../shared`,
    `shared/DESIGN.md`, `shared/STYLE.md`, `/work/`): a clone has none.
Exits 1 and lists every offence, 0 when there is none.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
INCLUDE = re.compile(r"include_(?:str|bytes)!\(\s*\"([^\"]+)\"\s*\)")
OUTSIDE = re.compile(r"\.\./shared\b|\bshared/(?:DESIGN|STYLE)\.md|shared/mls-test-vectors|/work/")
SKIP_DIRS = ("spec/refcache/",)


def is_url(target):
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) is not None or target.startswith("#")


def inside(path):
    real = os.path.realpath(path)
    return real == ROOT or real.startswith(ROOT + os.sep)


def main():
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    problems = []
    checked = 0
    for rel in files:
        if rel.startswith(SKIP_DIRS) or rel == ".ci/check-links.py":
            continue
        path = os.path.join(ROOT, rel)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        checked += 1
        targets = []
        if rel.endswith(".md"):
            targets += [("link", t) for t in MD_LINK.findall(text) + HTML_SRC.findall(text)]
        if rel.endswith(".rs"):
            targets += [("include", t) for t in INCLUDE.findall(text)]
        for kind, target in targets:
            if is_url(target):
                continue
            local = target.split("#", 1)[0]
            if not local:
                continue
            resolved = os.path.join(os.path.dirname(path), local)
            if not inside(resolved):
                problems.append(f"{rel}: {kind} leaves the repository: {target}")
            elif not os.path.exists(resolved):
                problems.append(f"{rel}: {kind} to a missing file: {target}")
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                problems.append(f"{rel}:{n}: names a folder outside the repository: {line.strip()}")
    for p in problems:
        print(p)
    print(f"links: {checked} files checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
