#!/usr/bin/env python3
"""Checks the man pages (man/failbackd.8, man/failbackd.toml.5) against the code and examples.

- `mandoc -T lint -W warning` is clean on both (STYLE notes such as "referenced manual not
  found" are below that level: carp(4) and devd(8) do not exist on Linux);
- every key in examples/failbackd.toml (tables, and the commented-out `#key = ...` lines of the
  optional [tracing]/[syslog] tables) is documented in failbackd.toml.5 as `Cm key`;
- every subcommand `failbackd --help` lists, and every command and exit code of the README's CLI
  table, is documented in failbackd.8.

Usage: check_man.py FAILBACKD_BINARY. Prints `N passed, M failed`.
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def example_keys():
    """(keys, table names) of examples/failbackd.toml."""
    text = (ROOT / "examples/failbackd.toml").read_text()
    keys = set()
    tables = set(re.findall(r"^#?\[\[?([a-z_]+)\]", text, re.M))

    def walk(obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k not in tables:
                    keys.add(k)
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(tomllib.loads(text))
    keys |= set(re.findall(r"^#([a-z_]+)\s*=", text, re.M))
    return keys, tables


def subcommands(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    block = out.split("Commands:", 1)[1].split("Options:", 1)[0]
    return [m for m in re.findall(r"^  ([a-z][a-z-]+)\s", block, re.M) if m != "help"]


def documented(page):
    return set(re.findall(r"\bCm ([A-Za-z_][A-Za-z0-9_.-]*)", (ROOT / "man" / page).read_text()))


def main():
    passed = failed = 0

    def result(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL", what)

    mandoc = shutil.which("mandoc")
    if mandoc is None:
        # A missing tool fails under FAILBACKD_REQUIRE_TOOLS=1 (CI), else the lint is skipped.
        required = os.environ.get("FAILBACKD_REQUIRE_TOOLS") == "1"
        result(not required, "mandoc missing (apt-get install mandoc)")
        if not required:
            print("SKIPPED: mandoc lint (mandoc missing)")
    else:
        for page in ("failbackd.8", "failbackd.toml.5"):
            r = subprocess.run([mandoc, "-T", "lint", "-W", "warning", str(ROOT / "man" / page)],
                               capture_output=True, text=True)
            result(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
                   f"mandoc lint {page}: {r.stdout}{r.stderr}")
    in_5 = documented("failbackd.toml.5")
    keys, tables = example_keys()
    for key in sorted(keys):
        result(key in in_5, f"failbackd.toml.5 does not document `{key}` (examples/failbackd.toml)")
    text_5 = (ROOT / "man/failbackd.toml.5").read_text()
    for table in sorted(tables):
        result(f"[{table}]" in text_5, f"failbackd.toml.5 does not document the table [{table}]")
    in_8 = documented("failbackd.8")
    subs = subcommands(sys.argv[1])
    for sub in subs:
        result(sub in in_8, f"failbackd.8 does not document the subcommand `{sub}`")
    # The README CLI table: every command is documented, and every exit code it names is in
    # EXIT STATUS.
    readme = (ROOT / "README.md").read_text()
    cli = readme.split("## CLI", 1)[1].split("\n## ", 1)[0]
    for cmd in re.findall(r"^\| `failbackd ([a-z-]+)", cli, re.M):
        result(cmd in in_8, f"failbackd.8 does not document `{cmd}` (README CLI table)")
    codes = {int(c) for c in re.findall(r"\b([0-9]) [a-z]", " ".join(re.findall(r"\|([^|]*)\|\s*$", cli, re.M)))}
    page_8 = (ROOT / "man/failbackd.8").read_text()
    exit_section = page_8.split(".Sh EXIT STATUS", 1)[1].split(".Sh ", 1)[0]
    documented_codes = {int(c) for c in re.findall(r"^\.It ([0-9])$", exit_section, re.M)}
    result(codes and codes <= documented_codes, f"exit codes {sorted(codes)} (README) not all in EXIT STATUS {sorted(documented_codes)}")
    result(len(keys) > 20 and len(subs) >= 9, f"too few keys ({len(keys)}) or subcommands ({len(subs)}) found")
    print(f"man pages: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
