#!/usr/bin/env python3
"""Builds FreeBSD .pkg files for failbackd without FreeBSD's pkg tool (Python stdlib only).

Two packages, the two an OPNsense user `pkg add`s (docs/install.md):
  failbackd      the daemon: binary, rc.d script, sample config, man pages (what the port in
                 contrib/freebsd/net/failbackd installs)
  os-failbackd   the OPNsense plugin: contrib/opnsense/net/failbackd/src copied under
                 /usr/local as opnsense/plugins Mk/plugins.mk `install:` does, plus the scripts
                 plugins.mk generates

The format is what freebsd/pkg writes (read in its source):
- libpkg/packing.c: a pax (restricted) tar; pkg_create.c appends "+COMPACT_MANIFEST" and then
  "+MANIFEST" (both UCL emitted as compact JSON) before the files, which are stored under their
  absolute paths. pkg.c pkg_open2 reads the leading "+" entries and needs one of the two.
- Compression: pkg-create(8) "tzst, txz, tbz, tgz or tar"; pkg-add(8) detects it from the
  content. zstd is not in Python's stdlib, so this writes xz (txz), which every pkg reads.
- File sums: pkg_checksum.c pkg_checksum_generate_file: "%d%c%s" of the hash type, '$' and the
  digest; type 1 is PKG_HASH_TYPE_SHA256_HEX (libpkg/pkg/checksum.h), so "1$<sha256 hex>".
- pkg_manifest.c: "files" maps a path to a string sum (old form) or to an object
  {sum, uname, gname, perm} (parsed since 2013, emitted since pkg 2.x); the object form is used
  so the modes are in the manifest. The compact manifest omits files, directories and scripts.
- abi (pkg_add.c is_valid_abi: the only platform check for a local file, "wrong architecture"
  otherwise) and the legacy "arch" pkg_arch_to_legacy derives from it. The daemon is built once
  and packaged once per FreeBSD major OPNsense runs on (--abi, repeatable): OPNsense 25.7/26.1
  are FreeBSD 14 (FreeBSD:14:amd64), 26.7 is FreeBSD 15.1 (FreeBSD:15:amd64). One binary serves
  both: it links only libc.so.7, libm.so.5 and libthr.so.3 with symbol versions up to FBSD_1.7,
  which FreeBSD 15 keeps (tools/build-freebsd checks the versions). The plugin ships no binary
  and says abi "FreeBSD:*:*", what plugins.mk writes under PLUGIN_NO_ABI.

Usage: tools/build-pkg.py failbackd --binary PATH [--abi FreeBSD:14:amd64 ...] [--out DIR]
       tools/build-pkg.py os-failbackd [--out DIR]
Prints the path of each written package; a daemon package goes to OUT/<abi>/ (a pkg repository
is one directory per ABI).
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/usr/local"
# The FreeBSD majors the supported OPNsense releases run on (docs/install.md).
DAEMON_ABIS = ["FreeBSD:14:amd64", "FreeBSD:15:amd64"]
PLUGIN_ABI = "FreeBSD:*:*"
PLUGIN_DIR = ROOT / "contrib/opnsense/net/failbackd"
PORT_DIR = ROOT / "contrib/freebsd/net/failbackd"


def legacy_arch(abi):
    """pkg_arch_to_legacy: FreeBSD:15:amd64 -> freebsd:15:x86:64; wildcards stay wildcards."""
    osname, major, machine = abi.split(":")
    legacy = {"amd64": "x86:64", "*": "*"}[machine]
    return f"{osname.lower()}:{major}:{legacy}"


def port_var(name):
    """A variable of the port Makefile (MAINTAINER, WWW): one place for the package metadata."""
    m = re.search(rf"^{name}=\s*(.*?)\s*$", (PORT_DIR / "Makefile").read_text(), re.M)
    if not m:
        raise SystemExit(f"build-pkg: {name} missing in {PORT_DIR}/Makefile")
    return m.group(1)


def cargo_version():
    """The one version: Cargo.toml's, which `failbackd --version` prints (clap, CARGO_PKG_VERSION)."""
    with open(ROOT / "Cargo.toml", "rb") as f:
        return tomllib.load(f)["package"]["version"]


def sha256_sum(data):
    return "1$" + hashlib.sha256(data).hexdigest()


def man_gz(path):
    # Ports gzip man pages (bsd.port.mk / plugins.mk `man/` handling); mtime 0 keeps it reproducible.
    return gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)


def failbackd_files(binary):
    """(absolute path, bytes, mode) of the daemon package, in install order."""
    return [
        (PREFIX + "/bin/failbackd", Path(binary).read_bytes(), 0o755),
        (PREFIX + "/etc/rc.d/failbackd", (ROOT / "rc.d/failbackd").read_bytes(), 0o755),
        (PREFIX + "/etc/failbackd.toml.sample", (ROOT / "examples/freebsd.toml").read_bytes(), 0o644),
        (PREFIX + "/share/man/man8/failbackd.8.gz", man_gz(ROOT / "man/failbackd.8"), 0o444),
        (PREFIX + "/share/man/man5/failbackd.toml.5.gz", man_gz(ROOT / "man/failbackd.toml.5"), 0o444),
    ] + [
        (PREFIX + "/share/examples/failbackd/" + p.name, p.read_bytes(), 0o644)
        for p in sorted((ROOT / "examples").glob("*.toml"))
    ]


# @sample semantics (pkg's keywords/sample.ucl): install the config from the sample when absent,
# remove it at deinstall only if unchanged. Under `pkg -r ROOT` pkg runs scripts unchrooted with
# PKG_ROOTDIR=ROOT (libpkg/scripts.c), so every path is taken relative to it ("/" gives "").
FAILBACKD_SCRIPTS = {
    "post-install": (
        "cfg=${PKG_ROOTDIR%/}${PKG_PREFIX}/etc/failbackd.toml\n"
        'if [ ! -f "$cfg" ]; then cp -p "$cfg.sample" "$cfg" && chmod 0600 "$cfg"; fi\n'
        # An upgrade replaced the binary under a running daemon: restart it onto the new one
        # (a restart, not a boot: the state file keeps the phase and the boot identity).
        'if [ "$PKG_UPGRADE" = true ] && [ "${PKG_ROOTDIR:-/}" = / ] &&\n'
        "   ${PKG_PREFIX}/etc/rc.d/failbackd status >/dev/null 2>&1; then\n"
        "    ${PKG_PREFIX}/etc/rc.d/failbackd restart || true\n"
        "fi\n"
    ),
    "pre-deinstall": (
        "cfg=${PKG_ROOTDIR%/}${PKG_PREFIX}/etc/failbackd.toml\n"
        'if cmp -s "$cfg" "$cfg.sample"; then rm -f "$cfg"; fi\n'
    ),
}


def plugin_makefile_vars():
    text = (PLUGIN_DIR / "Makefile").read_text()
    return dict(re.findall(r"^PLUGIN_([A-Z_]+)=\s*(.*?)\s*$", text, re.M))


def plugin_files():
    """plugins.mk `install:`: every file under src/ lands under /usr/local; modes as in the tree
    (plugins.mk keeps the executable bit); `*.in` %%VAR%% substitution is not used here."""
    src = PLUGIN_DIR / "src"
    out = []
    for p in sorted(src.rglob("*")):
        if p.is_file():
            mode = 0o755 if os.access(p, os.X_OK) else 0o644
            out.append((PREFIX + "/" + p.relative_to(src).as_posix(), p.read_bytes(), mode))
    return out


def plugin_directories(files):
    """The directories only this plugin creates (its Vendor/Name model, controller, view, template
    and script directories), deepest first; shared ones (/usr/local/etc, ...) stay."""
    dirs = set()
    for path, _, _ in files:
        parts = path.split("/")
        owned = False
        for i, part in enumerate(parts[:-1]):
            owned = owned or part in ("Failbackd", "failbackd")
            if owned:
                dirs.add("/".join(parts[: i + 1]) + "/")
    return sorted(dirs, key=lambda d: (-d.count("/"), d))


def plugin_scripts(files):
    """What plugins.mk's scripts-auto target writes for this plugin's directories (the lines of
    opnsense/plugins Templates/{actions.d,models,configure,templates}, guarded by `[ -f ]` so they
    are harmless off OPNsense), plus the plugin's own +PRE_DEINSTALL.pre / +POST_DEINSTALL.post."""
    paths = [p for p, _, _ in files]
    post = []
    if any("/opnsense/service/conf/actions.d/" in p for p in paths):
        post.append("if [ -f /usr/local/etc/rc.d/configd ]; then /usr/local/etc/rc.d/configd restart; fi")
    has_models = any("/opnsense/mvc/app/models/" in p for p in paths)
    configure = (
        'if [ -f /usr/local/etc/rc.configure_plugins ]; then echo "Reloading plugin configuration"; '
        "/usr/local/etc/rc.configure_plugins {}; fi"
    )
    if has_models:
        post.append(
            "if [ -f /usr/local/opnsense/mvc/script/run_migrations.php ]; then "
            "/usr/local/opnsense/mvc/script/run_migrations.php OPNsense/Failbackd; fi"
        )
        post.append(configure.format("POST_INSTALL"))
    # `find -s . -depth 2 -type d` under templates/: the Vendor/Name directories.
    for tpl in sorted({"/".join(p.split("/opnsense/service/templates/")[1].split("/")[:2]) for p in paths
                       if "/opnsense/service/templates/" in p}):
        post.append(
            f'if [ -f /usr/local/sbin/configctl ]; then echo -n "Reloading template {tpl}: "; '
            f"/usr/local/sbin/configctl template reload {tpl}; fi"
        )
    post_de = [configure.format("POST_DEINSTALL")] if has_models else []
    scripts = {}
    # plugins.mk order: the generated lines, then the plugin's own `.post` (`.pre` before them).
    for kind, generated in (("post-install", post), ("pre-deinstall", []), ("post-deinstall", post_de)):
        pre = PLUGIN_DIR / f"+{kind.upper().replace('-', '_')}.pre"
        own_post = PLUGIN_DIR / f"+{kind.upper().replace('-', '_')}.post"
        parts = [pre.read_text().strip()] if pre.exists() else []
        if generated:
            # The generated lines act on the running OPNsense (configd, config.xml): never on
            # the host when pkg installs into another root.
            parts.append('if [ "${PKG_ROOTDIR:-/}" = "/" ]; then\n' + "\n".join(generated) + "\nfi")
        if own_post.exists():
            parts.append(own_post.read_text().strip())
        if parts:
            scripts[kind] = "\n".join(parts) + "\n"
    return scripts


def plugin_version_file(meta, makefile):
    """/usr/local/opnsense/version/<name> (plugins.mk from Templates/version), also the manifest's
    annotations. product_abi is the OPNsense series (`opnsense-version -a` on a build host)."""
    return {
        "product_abi": os.environ.get("OPNSENSE_ABI", "26.7"),
        "product_arch": "amd64",
        # plugins.mk: a release conflicts with its -devel twin and vice versa.
        "product_conflicts": meta["name"] + "-devel",
        "product_email": meta["maintainer"],
        "product_hash": os.environ.get("PLUGIN_HASH", ""),
        "product_id": meta["name"],
        "product_name": makefile["NAME"],
        "product_tier": makefile.get("TIER", "3"),
        "product_version": meta["version"],
        "product_website": meta["www"],
    }


def manifests(meta, files, scripts):
    """(+COMPACT_MANIFEST, +MANIFEST) as compact JSON, keys in pkg_emit_object's order."""
    compact = {
        "name": meta["name"],
        "origin": meta["origin"],
        "version": meta["version"],
        "comment": meta["comment"],
        "maintainer": meta["maintainer"],
        "www": meta["www"],
        "abi": meta["abi"],
        "arch": legacy_arch(meta["abi"]),
        "prefix": PREFIX,
        "flatsize": sum(len(data) for _, data, _ in files),
        "licenselogic": "single",
        "licenses": [meta["license"]],
        "desc": meta["desc"],
        "deps": meta["deps"],
        "categories": meta["categories"],
        "annotations": meta.get("annotations", {}),
    }
    full = dict(compact)
    # Directories the package owns, so pkg removes them (when empty) at deinstall.
    full["directories"] = {
        d: {"uname": "root", "gname": "wheel", "perm": "0755"} for d in meta.get("directories", [])
    }
    full["files"] = {
        path: {"sum": sha256_sum(data), "uname": "root", "gname": "wheel", "perm": "%04o" % mode}
        for path, data, mode in files
    }
    full["scripts"] = scripts
    dump = lambda o: json.dumps(o, separators=(",", ":")).encode()  # noqa: E731
    return dump(compact), dump(full)


def write_pkg(out_path, meta, files, scripts, mtime):
    compact, full = manifests(meta, files, scripts)

    def add(tar, name, data, mode):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.mtime = mtime
        info.uname, info.gname, info.uid, info.gid = "root", "wheel", 0, 0
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(out_path, "w:xz", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "+COMPACT_MANIFEST", compact, 0o644)
        add(tar, "+MANIFEST", full, 0o644)
        for path, data, mode in files:
            add(tar, path, data, mode)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("package", choices=["failbackd", "os-failbackd"])
    ap.add_argument("--binary", help="the FreeBSD failbackd binary (tools/build-freebsd)")
    ap.add_argument("--abi", action="append", choices=DAEMON_ABIS,
                    help="daemon package ABI (repeatable; default: all of " + ", ".join(DAEMON_ABIS) + ")")
    ap.add_argument("--out", default=str(ROOT / "target/pkg"))
    args = ap.parse_args()
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))
    os.makedirs(args.out, exist_ok=True)

    if args.package == "failbackd":
        if not args.binary:
            ap.error("failbackd needs --binary")
        version = cargo_version()
        files = failbackd_files(args.binary)
        meta = {
            "name": "failbackd",
            "origin": "net/failbackd",
            "version": version,
            "comment": "Hold a recovering CARP master demoted until its probes pass",
            "maintainer": port_var("MAINTAINER"),
            "www": port_var("WWW"),
            "license": "BSD2CLAUSE",
            "desc": (PORT_DIR / "pkg-descr").read_text(),
            "deps": {},
            "categories": ["net"],
            "directories": [PREFIX + "/share/examples/failbackd/"],
        }
        scripts = FAILBACKD_SCRIPTS
        outs = []
        for abi in args.abi or DAEMON_ABIS:
            out_dir = Path(args.out) / abi
            out_dir.mkdir(parents=True, exist_ok=True)
            outs.append(out_dir / f"failbackd-{version}.pkg")
            write_pkg(outs[-1], dict(meta, abi=abi), files, scripts, mtime)
        print("\n".join(map(str, outs)))
        return 0
    else:
        v = plugin_makefile_vars()
        rev = v.get("REVISION", "0")
        version = v["VERSION"] + ("_" + rev if rev not in ("", "0") else "")
        files = plugin_files()
        dep_version = cargo_version()
        meta = {
            "name": "os-" + v["NAME"],
            "origin": "opnsense/os-" + v["NAME"],
            "version": version,
            "comment": v["COMMENT"],
            "maintainer": v["MAINTAINER"],
            "www": v["WWW"],
            "abi": PLUGIN_ABI,
            "license": v.get("LICENSE", "BSD2CLAUSE"),
            "desc": (PLUGIN_DIR / "pkg-descr").read_text(),
            # plugins.mk builds deps with `pkg query` of the installed dependency: origin + version.
            "deps": {v["DEPENDS"]: {"origin": "net/" + v["DEPENDS"], "version": dep_version}},
            "categories": ["net"],
        }
        meta["annotations"] = plugin_version_file(meta, v)
        version_json = json.dumps(meta["annotations"], indent=4).encode() + b"\n"
        files.append((PREFIX + "/opnsense/version/" + v["NAME"], version_json, 0o644))
        scripts = plugin_scripts(files)
        meta["directories"] = plugin_directories(files)

    out = Path(args.out) / f"{meta['name']}-{version}.pkg"
    write_pkg(out, meta, files, scripts, mtime)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
