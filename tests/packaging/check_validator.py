#!/usr/bin/env python3
"""One validator for os-failbackd: the GUI accepts exactly what `failbackd check-config` accepts.

The model (Failbackd.php) asks configd's `failbackd validate`, i.e.
scripts/failbackd/validate_candidate.py, about every candidate; that script renders the
candidate with configd's template engine and runs check-config on the rendering. This checks:

1. The defects of issue 20 A4, each a setting the form's own constraints allow: min_hold =
   max_hold, stable_for = max_hold, TCP 192.0.2.10:99999 and 999.1.1.1:80, HTTP "http://", a lone
   ' in a command. Each is refused, with the error on the field the user must change.
2. A good setting (fixtures/config-every-type.xml) is accepted.
3. Property: --cases settings drawn from the model's own field constraints (Failbackd.xml: types,
   Min/Max, OptionValues, Masks; values biased to the boundaries). For every one the validator
   answers JSON; its verdict equals check-config's on an independent rendering (check_plugin.py's
   renderer) — refused exactly when the daemon refuses, or when the template cannot render it —
   and every error lands on a field the forms show.

Usage: check_validator.py FAILBACKD_BINARY [--service-dir DIR] [--cases N] [--seed S]
  --service-dir: a configd service directory (modules/ + templates/); default a stand-in of
  core's modules (tests/packaging/configd_standin). tools/opnsense-conformance passes core's.
Prints `N passed, M failed`.
"""

import argparse
import copy
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PLUGIN_SRC = ROOT / "contrib/opnsense/net/failbackd/src"
MODEL_DIR = PLUGIN_SRC / "opnsense/mvc/app/models/OPNsense/Failbackd"
FORMS_DIR = PLUGIN_SRC / "opnsense/mvc/app/controllers/OPNsense/Failbackd/forms"
VALIDATOR = PLUGIN_SRC / "opnsense/scripts/failbackd/validate_candidate.py"
TEMPLATES = PLUGIN_SRC / "opnsense/service/templates"
BASE = HERE / "fixtures/config-every-type.xml"

sys.path.insert(0, str(HERE))
from check_plugin import REQUIRE_TOOLS, Results, config_to_dict, render  # noqa: E402


def service_dir(tmp, modules):
    """A configd service directory: the given modules/ and the plugin's templates/."""
    d = Path(tmp) / "service"
    d.mkdir()
    shutil.copytree(modules, d / "modules")
    shutil.copytree(TEMPLATES, d / "templates")
    return d


def field_map():
    """Failbackd.php's key -> form field tables (the PHP the GUI runs)."""
    php = (MODEL_DIR / "Failbackd.php").read_text()
    tables = {}
    for name in ("GENERAL_FIELDS", "PROBE_FIELDS"):
        body = re.search(name + r" = \[(.*?)\];", php, re.S).group(1)
        tables[name] = dict(re.findall(r"'(\w+)' => '(\w+)'", body))
    return tables


def form_fields():
    ids = set()
    for f in FORMS_DIR.glob("*.xml"):
        ids |= {e.text for e in ET.parse(f).getroot().iter("id")}
    return ids


def mapped_field(error, tables):
    """What Failbackd.php::fieldFor does, as a form id: the settings controller prefixes the
    model's general.x with its internal name (failbackd.general.x); the probe dialog is probe.x."""
    if error.get("probe"):
        return "probe." + tables["PROBE_FIELDS"].get(error.get("key"), "name")
    return "failbackd.general." + tables["GENERAL_FIELDS"].get(error.get("key"), "enabled")


def candidate_xml(root):
    """BaseModel::toXML(): <OPNsense><failbackd>…</failbackd></OPNsense>."""
    out = ET.Element("OPNsense")
    out.append(copy.deepcopy(root.find("OPNsense/failbackd")))
    return ET.tostring(out)


def ask(service, config_xml, candidate, binary, tmp):
    path = Path(tmp) / "candidate.xml"
    path.write_bytes(candidate)
    res = subprocess.run([sys.executable, str(VALIDATOR), str(path), "--service-dir", str(service),
                          "--config", str(config_xml), "--failbackd", binary], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(HERE)))
    try:
        return res.returncode, json.loads(res.stdout)
    except ValueError:
        return res.returncode, {"unparsed": res.stdout + res.stderr}


def daemon_accepts(root, binary, tmp):
    """The independent path: check_plugin's renderer, then check-config."""
    data = config_to_dict(root)
    try:
        toml = render("failbackd.toml", data)
    except Exception:  # noqa: BLE001  (a template that cannot render is a refusal)
        return False
    out = Path(tmp) / "independent.toml"
    out.write_text(toml)
    return subprocess.run([binary, "check-config", str(out)], capture_output=True).returncode == 0


def probe(root, name):
    for p in root.iter("probe"):
        if p.findtext("name") == name:
            return p
    raise KeyError(name)


def setv(node, tag, value):
    el = node.find(tag)
    if el is None:
        el = ET.SubElement(node, tag)
    el.text = value


A4_CASES = [
    # (what, edit, expected form field)
    ("min_hold = max_hold", lambda r: (setv(r.find(".//general"), "min_hold", "600")), "failbackd.general.min_hold"),
    ("stable_for = max_hold", lambda r: setv(r.find(".//general"), "stable_for", "600"), "failbackd.general.stable_for"),
    ("TCP port 99999", lambda r: setv(probe(r, "dc-ldap"), "target", "192.0.2.10:99999"), "probe.target"),
    ("TCP address 999.1.1.1", lambda r: setv(probe(r, "dc-ldap"), "target", "999.1.1.1:80"), "probe.target"),
    ("HTTP target http://", lambda r: setv(probe(r, "health"), "target", "http://"), "probe.target"),
    ("a lone ' in a command", lambda r: setv(probe(r, "custom"), "command", "/bin/echo it's"), "probe.command"),
]


def mask_of(node):
    m = node.findtext("Mask")
    return re.compile(m[1:m.rindex("/")]) if m else None


def draw_field(rng, node):
    """A value the field's own constraints accept (or None for an empty optional field)."""
    kind = node.get("type")
    required = node.findtext("Required") == "Y"
    if not required and rng.random() < 0.25:
        return None
    if kind == "BooleanField":
        return rng.choice(["0", "1"])
    if kind == "IntegerField":
        lo, hi = int(node.findtext("MinimumValue")), int(node.findtext("MaximumValue"))
        pool = [lo, hi, lo + 1, hi - 1] + [v for v in (0, 1, 5, 10, 15, 100, 600, 900, 1000, 2000) if lo <= v <= hi]
        return str(rng.choice(pool) if rng.random() < 0.8 else rng.randint(lo, hi))
    if kind == "OptionField":
        opts = [e.tag for e in node.find("OptionValues")]
        if node.findtext("Multiple") == "Y":
            return ",".join(rng.sample(opts, rng.randint(1, len(opts))))
        return rng.choice(opts)
    if kind == "InterfaceField":
        return ",".join(rng.sample(["wan", "lan", "opt1"], rng.randint(1, 3)))
    if kind == "JsonKeyValueStoreField":
        return ",".join(rng.sample(["WAN_GW", "WAN2_GW"], rng.randint(1, 2)))
    if kind == "ModelRelationField":
        return "a1b2c3d4-0000-4000-8000-00000000000" + str(rng.randint(1, 9))
    if kind == "TextField":
        mask = mask_of(node)
        pools = {
            "name": ["p", "wan-gw", "a.b:c_d", "x" * 64],
            "target": ["192.0.2.10", "192.0.2.10:443", "[2001:db8::1]:443", "2001:db8::1", "999.1.1.1:80",
                       "192.0.2.10:99999", "192.0.2.10:0", "http://", "http://192.0.2.10/", "http://[2001:db8::1]:8080/h?x=1&y=2",
                       "http://198.51.100.1:99999/", "https://192.0.2.1/", "1.2.3:80", "", "a:b"],
            "legacy_connections": ["con1", "con1,con23", "con"],
            "command": ["/bin/true", "/usr/bin/env A=1 /bin/true", "/bin/echo it's", "/bin/echo 'two words'",
                        "/bin/echo \\", "/x y z", "/"],
        }
        for _ in range(20):
            value = rng.choice(pools.get(node.tag, ["x"]))
            if mask is None or mask.fullmatch(value):
                return value
        return None
    raise ValueError(f"no generator for {kind} ({node.tag})")


def draw(rng, model, base_root):
    """A config.xml: interfaces from the fixture, the failbackd section drawn from the model."""
    root = copy.deepcopy(base_root)
    section = root.find("OPNsense/failbackd")
    for child in list(section):
        section.remove(child)
    general = ET.SubElement(section, "general")
    for field in model.find("items/general"):
        value = draw_field(rng, field)
        if value is not None:
            ET.SubElement(general, field.tag).text = value
    probes = ET.SubElement(section, "probes")
    proto = model.find("items/probes/probe")
    names = set()
    for i in range(rng.randint(0, 3)):
        p = ET.SubElement(probes, "probe", uuid=f"00000000-0000-4000-8000-0000000001{i:02d}")
        for field in proto:
            value = draw_field(rng, field)
            if field.tag == "name":
                while value in names:  # the model's UniqueConstraint
                    value = value + str(i)
                names.add(value)
            if value is not None:
                ET.SubElement(p, field.tag).text = value
    return root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--service-dir", help="configd service dir with core's modules/ (default: the stand-in)")
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FAILBACKD_PROPERTY_SEED", "20")))
    args = ap.parse_args()
    r = Results()
    try:
        import jinja2  # noqa: F401  (the configd stand-in renders with it)
    except ImportError:
        r.check(not REQUIRE_TOOLS, "python3-jinja2 missing")
        print("SKIPPED: validator checks (no jinja2)")
        print(f"os-failbackd validator: {r.passed} passed, {r.failed} failed")
        return 1 if r.failed else 0
    tables = field_map()
    forms = form_fields()
    base = ET.parse(BASE).getroot()
    with tempfile.TemporaryDirectory() as tmp:
        modules = Path(args.service_dir) / "modules" if args.service_dir else HERE / "configd_standin/modules"
        service = service_dir(tmp, modules)
        config_xml = Path(tmp) / "config.xml"
        config_xml.write_bytes(ET.tostring(base))

        rc, answer = ask(service, config_xml, candidate_xml(base), args.binary, tmp)
        r.check(rc == 0 and answer.get("valid") is True, f"the every-type fixture is refused: {answer}")

        for what, edit, field in A4_CASES:
            root = copy.deepcopy(base)
            edit(root)
            rc, answer = ask(service, config_xml, candidate_xml(root), args.binary, tmp)
            ok = rc == 0 and answer.get("valid") is False
            fields = [mapped_field(e, tables) for e in answer.get("errors", [])]
            r.check(ok and field in fields, f"A4 {what}: want refused on {field}, got {answer} -> {fields}")

        rng = random.Random(args.seed)
        model = ET.parse(MODEL_DIR / "Failbackd.xml").getroot()
        verdicts = {True: 0, False: 0}
        for n in range(args.cases):
            root = draw(rng, model, base)
            rc, answer = ask(service, config_xml, candidate_xml(root), args.binary, tmp)
            if not r.check(rc == 0 and isinstance(answer.get("valid"), bool), f"case {n}: not a JSON verdict: {answer}"):
                continue
            want = daemon_accepts(root, args.binary, tmp)
            verdicts[answer["valid"]] += 1
            r.check(answer["valid"] == want,
                    f"case {n} (seed {args.seed}): validator says {answer}, check-config says {want}:\n"
                    + ET.tostring(root.find('OPNsense/failbackd')).decode())
            for e in answer.get("errors", []):
                r.check(mapped_field(e, tables) in forms, f"case {n}: error {e} maps to no form field")
        print(f"property: {args.cases} drawn settings, {verdicts[True]} accepted, {verdicts[False]} refused (seed {args.seed})")
        # Both outcomes must occur, or the draw does not exercise the validator.
        r.check(verdicts[True] > 0 and verdicts[False] > 0, f"the draw is one-sided: {verdicts}")
    print(f"os-failbackd validator: {r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
