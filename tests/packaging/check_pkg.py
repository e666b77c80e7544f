#!/usr/bin/env python3
"""Reads .pkg files back and checks them the way pkg(8) would read them (stdlib only).

For each package given: the first two members are +COMPACT_MANIFEST and +MANIFEST (libpkg
pkg_open2 reads the leading "+" entries), both JSON; abi is the directory's (OUT/FreeBSD:14:amd64/,
OUT/FreeBSD:15:amd64/) for the daemon and FreeBSD:*:* for the plugin; the compact one is
the full one minus files/directories/scripts; every "files" entry is a member with that absolute
path, whose sha256 matches "1$<hex>" (pkg_checksum.c), whose mode matches "perm", and every
regular member is listed; flatsize is the sum of the sizes. With --version V the package version
must be V (what `failbackd --version` prints). With --self-test it also tampers with copies of the
first package (a changed byte, a reordered manifest, a wrong mode, an unlisted file) and expects
each copy to be rejected, so the checks themselves are shown to fail.

Prints `N passed, M failed`; exit 1 on any failure.
"""

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

COMPACT_ONLY_OMITS = {"files", "directories", "scripts", "config"}


def read_members(path):
    with tarfile.open(path, "r:*") as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]


DAEMON_ABI_DIR = {"FreeBSD:14:amd64", "FreeBSD:15:amd64"}


def want_daemon_abi(members):
    """The daemon package's ABI is the name of the directory it was written to (build-pkg.py
    writes OUT/<abi>/failbackd-V.pkg); check_members sees it through CURRENT_PATH."""
    parent = CURRENT_PATH[0].rsplit("/", 2)[-2] if CURRENT_PATH else ""
    return parent if parent in DAEMON_ABI_DIR else "FreeBSD:14:amd64 or FreeBSD:15:amd64 (in OUT/<abi>/)"


CURRENT_PATH = []


def check_members(members, want_version=None):
    """A list of problems (empty when the package is good)."""
    errs = []
    names = [m.name for m, _ in members]
    if names[:2] != ["+COMPACT_MANIFEST", "+MANIFEST"]:
        return [f"first members are {names[:2]}, want +COMPACT_MANIFEST, +MANIFEST"]
    try:
        compact = json.loads(members[0][1])
        full = json.loads(members[1][1])
    except ValueError as e:
        return [f"manifest is not JSON: {e}"]
    for key in ("name", "origin", "version", "comment", "desc", "maintainer", "www", "abi", "prefix"):
        if not isinstance(full.get(key), str) or not full[key]:
            errs.append(f"+MANIFEST: {key} missing")
    # pkg add refuses a package whose abi does not match the system's (libpkg utils.c
    # is_valid_abi): the daemon once per FreeBSD major OPNsense runs on, the plugin for any.
    want_abi = "FreeBSD:*:*" if full.get("name", "").startswith("os-") else want_daemon_abi(members)
    if full.get("abi") != want_abi:
        errs.append(f"abi {full.get('abi')!r}, want {want_abi}")
    osname, major, machine = str(full.get("abi")).split(":") if str(full.get("abi")).count(":") == 2 else ("", "", "")
    legacy = {"amd64": "x86:64", "*": "*"}.get(machine, "?")
    if full.get("arch") != f"{osname.lower()}:{major}:{legacy}":
        errs.append(f"arch {full.get('arch')!r} does not match abi {full.get('abi')!r}")
    if want_version is not None and full.get("version") != want_version:
        errs.append(f"version {full.get('version')!r}, want {want_version!r}")
    expected_compact = {k: v for k, v in full.items() if k not in COMPACT_ONLY_OMITS}
    if compact != expected_compact:
        errs.append("+COMPACT_MANIFEST is not +MANIFEST without files/scripts")
    files = full.get("files", {})
    if not files:
        errs.append("+MANIFEST lists no files")
    by_name = {m.name: (m, data) for m, data in members[2:]}
    total = 0
    for path, attrs in files.items():
        if not path.startswith("/"):
            errs.append(f"{path}: not an absolute path")
        if path not in by_name:
            errs.append(f"{path}: listed but not in the archive")
            continue
        m, data = by_name[path]
        total += len(data)
        if m.size != len(data):
            errs.append(f"{path}: size {m.size} != data {len(data)}")
        want_sum = "1$" + hashlib.sha256(data).hexdigest()
        if attrs.get("sum") != want_sum:
            errs.append(f"{path}: sum {attrs.get('sum')} != {want_sum}")
        if int(attrs.get("perm", "-1"), 8) != m.mode:
            errs.append(f"{path}: perm {attrs.get('perm')} != archive mode {m.mode:04o}")
        if (attrs.get("uname"), attrs.get("gname")) != (m.uname, m.gname):
            errs.append(f"{path}: owner differs from the archive")
    for name, (m, _) in by_name.items():
        if m.isfile() and name not in files:
            errs.append(f"{name}: in the archive but not in +MANIFEST files")
        if name.startswith("+"):
            errs.append(f"{name}: a + entry after the files")
    if full.get("flatsize") != total:
        errs.append(f"flatsize {full.get('flatsize')} != {total}")
    return errs


def tampered(members):
    """(description, members) variants that a correct checker must reject."""
    out = []
    first_file = next(i for i, (m, _) in enumerate(members) if i >= 2 and m.isfile())
    m, data = members[first_file]
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0xFF
    copy = list(members)
    copy[first_file] = (m, bytes(changed))
    out.append(("a changed byte", copy))
    out.append(("manifests swapped", [members[1], members[0]] + members[2:]))
    m2 = tarfile.TarInfo(m.name)
    m2.size, m2.mode, m2.uname, m2.gname = m.size, m.mode ^ 0o022, m.uname, m.gname
    copy = list(members)
    copy[first_file] = (m2, data)
    out.append(("a wrong mode", copy))
    extra = tarfile.TarInfo("/usr/local/bin/unlisted")
    extra.size, extra.uname, extra.gname = 1, "root", "wheel"
    out.append(("an unlisted file", members + [(extra, b"x")]))
    full = json.loads(members[1][1])
    full["version"] = full["version"] + ".1"
    copy = list(members)
    copy[1] = (members[1][0], json.dumps(full).encode())
    out.append(("compact and full disagree", copy))
    copy = list(members)
    for i in (0, 1):
        man = json.loads(members[i][1])
        man["abi"], man["arch"] = "FreeBSD:13:amd64", "freebsd:13:x86:64"
        copy[i] = (members[i][0], json.dumps(man).encode())
    out.append(("an ABI no supported OPNsense runs", copy))
    return out


def main(argv):
    want_version = None
    self_test = False
    paths = []
    it = iter(argv)
    for a in it:
        if a == "--version":
            want_version = next(it)
        elif a == "--self-test":
            self_test = True
        else:
            paths.append(a)
    passed = failed = 0
    for i, path in enumerate(paths):
        members = read_members(path)
        CURRENT_PATH[:] = [path]
        daemon = not Path(path).name.startswith("os-")
        errs = check_members(members, want_version if daemon else None)
        if errs:
            failed += 1
            print(f"FAIL {path}:")
            for e in errs:
                print(f"  {e}")
        else:
            passed += 1
            print(f"ok   {path}: {len(members) - 2} files")
        if self_test and i == 0:
            for desc, variant in tampered(members):
                if check_members(variant):
                    passed += 1
                    print(f"ok   tampered ({desc}) is rejected")
                else:
                    failed += 1
                    print(f"FAIL tampered ({desc}) was accepted")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not paths else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
