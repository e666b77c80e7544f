#!/usr/local/bin/python3
"""Is a candidate os-failbackd setting valid? Asked by the model (Failbackd.php) before a save,
through configd (`configctl failbackd validate FILE`), so the GUI accepts exactly what the daemon
accepts: the candidate is rendered by configd's own template engine (core's
modules/template.py and modules/config.py, the code `configctl template reload` runs) with the
plugin's own failbackd.toml template, and the rendering is checked by `failbackd check-config`,
the check the rc.d script runs before every start.

Input: FILE, the model serialized as XML (BaseModel::toXML(): <OPNsense><failbackd>...). The
rest of the configuration (interfaces, for helpers.physical_interface) comes from config.xml.
Output: one JSON object, always, exit 0 (configd shows a non-zero exit as "Execute error"):
  {"valid": true|false, "errors": [{"probe": NAME|null, "key": TOML_KEY|null, "message": TEXT}]}
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

MODULE = "OPNsense/Failbackd"
RENDERED = "usr/local/etc/failbackd.toml"
ERROR_LINE = re.compile(r"^[^:\n]*:(\d+):\d+: error: (.*)$")


def locate(rendered, line_no):
    """(probe name or None, key or None) of a line of the rendered TOML."""
    lines = rendered.splitlines()
    key_match = re.match(r"^\s*([A-Za-z_]+)\s*=", lines[line_no - 1]) if 0 < line_no <= len(lines) else None
    probe = None
    for line in lines[:line_no]:
        if line.strip().startswith("["):
            probe = "" if line.strip() == "[[probe]]" else None
        elif probe == "":
            m = re.match(r'^name = "(.*)"$', line)
            if m:
                probe = json.loads('"' + m.group(1) + '"')
    return (probe or None), (key_match.group(1) if key_match else None)


def unsplittable_command(section):
    """(probe name, "command") of the first command the template's shlex_split filter cannot
    split (an unbalanced quote), so the refusal shows next to that field; else (None, None)."""
    probes = ((section or {}).get("probes") or {}).get("probe") or []
    for probe in probes if isinstance(probes, list) else [probes]:
        if isinstance(probe, dict) and probe.get("type") == "command":
            try:
                shlex.split(probe.get("command") or "")
            except ValueError:
                return probe.get("name"), "command"
    return None, None


def check(rendered_path, failbackd):
    """check-config's errors on the rendered file, located."""
    proc = subprocess.run([failbackd, "check-config", rendered_path], capture_output=True, text=True, timeout=30)
    if proc.returncode == 0:
        return []
    with open(rendered_path, encoding="utf-8") as f:
        rendered = f.read()
    errors, last = [], None
    for line in (proc.stderr + proc.stdout).splitlines():
        m = ERROR_LINE.match(line)
        if m:
            probe, key = locate(rendered, int(m.group(1)))
            last = {"probe": probe, "key": key, "message": m.group(2)}
            errors.append(last)
        elif line.startswith("  hint: ") and last is not None:
            last["message"] += " (" + line.strip()[len("hint: "):] + ")"
    return errors or [{"probe": None, "key": None, "message": (proc.stderr or proc.stdout).strip()[:500]}]


def validate(candidate, service_dir, config_xml, failbackd):
    sys.path.insert(0, service_dir)
    from modules.config import Config  # noqa: E402  (core's configd, found at run time)
    from modules.template import Template  # noqa: E402

    data = dict(Config(config_xml).get()) if os.path.exists(config_xml) else {}
    # core's Config cannot read an empty document; an empty candidate is "no settings yet".
    section = Config(candidate).get().get("failbackd") if len(ET.parse(candidate).getroot()) else None
    data["OPNsense"] = dict(data.get("OPNsense") or {})
    if section is None:
        data["OPNsense"].pop("failbackd", None)
    else:
        data["OPNsense"]["failbackd"] = section
    with tempfile.TemporaryDirectory(prefix="failbackd-validate-") as root:
        template = Template(root)
        template.set_config(data)
        try:
            # _generate, not generate: generate() logs a failure and returns None, and the
            # reason (e.g. shlex "No closing quotation") is what the user needs to see.
            template._generate(MODULE, True)
        except Exception as e:  # noqa: BLE001  (any rendering failure is a refusal)
            probe, key = unsplittable_command(section)
            return [{"probe": probe, "key": key, "message": "the settings cannot be rendered: %s" % e}]
        return check(os.path.join(root, RENDERED), failbackd)


def main():
    ap = argparse.ArgumentParser(description="validate a candidate os-failbackd setting")
    ap.add_argument("candidate")
    ap.add_argument("--service-dir", default="/usr/local/opnsense/service")
    ap.add_argument("--config", default="/conf/config.xml")
    ap.add_argument("--failbackd", default="/usr/local/bin/failbackd")
    args = ap.parse_args()
    try:
        errors = validate(args.candidate, args.service_dir, args.config, args.failbackd)
    except Exception as e:  # noqa: BLE001  (the answer must stay JSON; "unknown" is not "valid")
        errors = [{"probe": None, "key": None, "message": "validation did not run: %s" % e}]
    print(json.dumps({"valid": not errors, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
