#!/usr/bin/env python3
"""Checks the os-failbackd plugin (contrib/opnsense/net/failbackd) on Linux.

What cannot run here is OPNsense itself (its PHP framework, configd, the browser GUI); these
checks cover what can: syntax, formats, the template's output and the JS rendering.

1. `php -l` on every .php and .inc file.
2. Every XML file is well-formed; where OPNsense's format is fixed (model, Menu, ACL, forms,
   widget metadata) only element/attribute names that opnsense/core and opnsense/plugins use
   appear (the allow-lists below were collected from both trees' models/forms/Metadata).
3. The Jinja2 templates, rendered the way configd does (core modules/template.py: trim_blocks,
   the do and loopcontrols extensions, its extra filters, a `helpers` object as in
   modules/addons/template_helpers.py, config.xml turned into dicts as modules/config.py
   does), from each tests/packaging/fixtures/config-*.xml (minimal, every type, maintenance,
   disabled, fresh = no section yet): every failbackd.toml passes
   `failbackd check-config`; rc.conf.d says failbackd_enable="YES" or "NO" by the setting.
4. JS: `node --check` on the status page script; the widget is loaded in node on a stand-in
   with exactly core's widget surface (a `translations` object, no translate()); both render
   fixtures/status.json into the expected rows, the widget escapes the daemon's values. Every
   field the fixture and the JS use exists in src/status.rs. (tools/opnsense-conformance runs
   it on core's own BaseWidget/BaseTableWidget in jsdom.)
5. configd actions run only subcommands (and flags) `failbackd --help` lists, and every
   configdRun('failbackd X') in the PHP names an action that exists.
6. The CARP hook and the service check, run with a fake failbackd: silent / passing while the
   plugin is disabled, passing the arguments through when enabled.
7. The plugin package (tools/build-pkg.py os-failbackd) lists every file under src/ at
   /usr/local/<path>, as plugins.mk's plist does, the hooks executable; +TARGETS sources exist.
   Its scripts, run as pkg runs them: an upgrade (PKG_UPGRADE=true) neither stops nor releases;
   under `pkg -r ROOT` they act on ROOT only; delete removes /etc/rc.conf.d/failbackd and the
   plugin-written TOML, never a hand-written one. The shutdown hook drains when enabled.
8. Every /ui/failbackd menu URL reaches <Controller>Controller::<action>Action() by core's
   router rule (Mvc/Router.php: /ui/<module>/<controller>/<action>). HA sync: the synced
   section rendered on the backup's devices differs only in the watched devices.

Usage: check_plugin.py FAILBACKD_BINARY PLUGIN_PKG. Prints `N passed, M failed`.
"""

import collections
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "contrib/opnsense/net/failbackd"
SRC = PLUGIN / "src"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REQUIRE_TOOLS = os.environ.get("FAILBACKD_REQUIRE_TOOLS") == "1"

# --- allow-lists (names found in opnsense/core + opnsense/plugins models, forms, menus, ACLs,
# widget metadata; the subset a plugin like this one may use) ---
MODEL_TOP = {"mount", "version", "description", "items", "migration_prefix"}
FIELD_TYPES = {
    "ArrayField", "BooleanField", "TextField", "IntegerField", "NumericField", "OptionField",
    "InterfaceField", "JsonKeyValueStoreField", "ModelRelationField", "NetworkField", "PortField",
    "CSVListField", "HostnameField", "UrlField", "EmailField", "DescriptionField", "CertificateField",
    "AutoNumberField", "UniqueIdField", "ConfigdActionsField", "IPPortField",
}
FIELD_CHILDREN = {
    "Default", "Required", "Mask", "MaskPerItem", "ValidationMessage", "MinimumValue", "MaximumValue",
    "Multiple", "OptionValues", "ConfigdPopulateAct", "Model", "Constraints", "BlankDesc", "Filters",
    "AddParentDevices", "AllowDynamic", "FieldSeparator", "AsList", "SortByValue", "Sorted",
    "NetMaskAllowed", "NetMaskRequired", "AddressFamily", "IpAllowed", "HostnameAllowed", "Strict",
}
FORM_FIELD_CHILDREN = {
    "id", "label", "type", "help", "hint", "advanced", "allownew", "style", "size", "height", "width",
    "collapse", "separator", "sortable", "maximum", "minimum", "nbDropdownElements", "grid_view",
}
FORM_FIELD_TYPES = {
    "checkbox", "text", "textbox", "dropdown", "select_multiple", "password", "info", "header",
    "hidden", "color",
}
MENU_ATTRS = {"VisibleName", "cssClass", "order", "url", "visibility", "IsExternal"}
ACL_NAMES = {"acl", "name", "description", "patterns", "pattern"}
WIDGET_CHILDREN = {"filename", "endpoints", "translations", "link"}


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL", what)
        return ok

    def tool(self, name):
        path = shutil.which(name)
        if path is None:
            # A missing tool fails in CI (FAILBACKD_REQUIRE_TOOLS=1), else its checks are skipped.
            self.check(not REQUIRE_TOOLS, f"{name} missing")
            print(f"SKIPPED: checks that need {name}")
        return path


def files(*patterns):
    return sorted(p for pat in patterns for p in SRC.rglob(pat) if p.is_file())


def check_php(r):
    php = r.tool("php")
    if not php:
        return
    sources = files("*.php", "*.inc")
    r.check(len(sources) >= 5, f"only {len(sources)} PHP files found")
    for f in sources:
        out = subprocess.run([php, "-l", str(f)], capture_output=True, text=True)
        r.check(out.returncode == 0, f"php -l {f.relative_to(PLUGIN)}: {out.stdout}{out.stderr}")


def check_model(r, root, rel):
    r.check(root.tag == "model", f"{rel}: root <{root.tag}>, want <model>")
    for child in root:
        r.check(child.tag in MODEL_TOP, f"{rel}: <{child.tag}> is not a model element")
    r.check(root.findtext("mount") == "//OPNsense/failbackd", f"{rel}: mount is not //OPNsense/failbackd")
    items = root.find("items")

    def walk(node):
        for e in node:
            kind = e.get("type")
            if kind is None:
                walk(e)  # a container (general, probes)
                continue
            r.check(kind in FIELD_TYPES, f"{rel}: <{e.tag} type={kind!r}> is not a field type")
            if kind == "ArrayField":
                walk(e)
                continue
            for c in e:
                r.check(c.tag in FIELD_CHILDREN, f"{rel}: <{e.tag}><{c.tag}> is not a field option")
            if kind == "OptionField":
                r.check(e.find("OptionValues") is not None and len(e.find("OptionValues")) > 0,
                        f"{rel}: OptionField {e.tag} has no OptionValues")

    if r.check(items is not None, f"{rel}: no <items>"):
        walk(items)


def check_xml(r):
    xmls = files("*.xml")
    r.check(len(xmls) >= 6, f"only {len(xmls)} XML files")
    for f in xmls:
        rel = f.relative_to(PLUGIN)
        try:
            root = ET.parse(f).getroot()
        except ET.ParseError as e:
            r.check(False, f"{rel}: not well-formed: {e}")
            continue
        r.check(True, "")
        parts = f.relative_to(SRC).parts
        if "models" in parts and f.parent.name == "Failbackd":
            check_model(r, root, rel)
        elif f.parent.name == "Menu":
            r.check(root.tag == "menu", f"{rel}: root <{root.tag}>")
            for e in root.iter():
                for a in e.attrib:
                    r.check(a in MENU_ATTRS, f"{rel}: attribute {a} on <{e.tag}>")
        elif f.parent.name == "ACL":
            for e in root.iter():
                r.check(e.tag in ACL_NAMES or e.tag.startswith("page-"), f"{rel}: <{e.tag}>")
        elif f.parent.name == "forms":
            r.check(root.tag == "form", f"{rel}: root <{root.tag}>")
            for field in root:
                r.check(field.tag == "field", f"{rel}: <{field.tag}> in <form>")
                for c in field:
                    r.check(c.tag in FORM_FIELD_CHILDREN, f"{rel}: <field><{c.tag}>")
                r.check(field.findtext("type") in FORM_FIELD_TYPES, f"{rel}: field type {field.findtext('type')}")
        elif f.parent.name == "Metadata":
            r.check(root.tag == "metadata" and len(root) == 1, f"{rel}: want one widget in <metadata>")
            for c in root[0]:
                r.check(c.tag in WIDGET_CHILDREN, f"{rel}: <{c.tag}> in widget metadata")
            r.check(root[0].findtext("filename") == "Failbackd.js", f"{rel}: filename")
    check_form_ids(r)


def check_form_ids(r):
    """Every form field id names a model field (OPNsense maps ids onto the model)."""
    model = ET.parse(SRC / "opnsense/mvc/app/models/OPNsense/Failbackd/Failbackd.xml").getroot()
    general = {e.tag for e in model.find("items/general")}
    probe = {e.tag for e in model.find("items/probes/probe")}
    forms = SRC / "opnsense/mvc/app/controllers/OPNsense/Failbackd/forms"
    for fid in ET.parse(forms / "general.xml").getroot().iter("id"):
        r.check(fid.text.startswith("failbackd.general.") and fid.text.split(".")[-1] in general,
                f"forms/general.xml: {fid.text} is not a model field")
    for fid in ET.parse(forms / "dialogProbe.xml").getroot().iter("id"):
        r.check(fid.text.startswith("probe.") and fid.text.split(".")[-1] in probe,
                f"forms/dialogProbe.xml: {fid.text} is not a probe field")


# --- templates ---
def config_to_dict(node):
    """modules/config.py _traverse: children → ordered dict, repeated tags → list, leaves →
    text, empty leaves skipped, attributes of dict items as '@name'."""
    if len(node) == 0:
        return node.text
    out = collections.OrderedDict()
    for item in node:
        content = config_to_dict(item)
        if isinstance(content, dict):
            for k, v in item.attrib.items():
                content["@" + k] = v
        if item.tag in out:
            if not isinstance(out[item.tag], list):
                out[item.tag] = [out[item.tag]]
            if content is not None:
                out[item.tag].append(content)
        elif content is not None:
            out[item.tag] = content
    return out


class Helpers:
    """The subset of core's template_helpers.Helpers the templates use."""

    def __init__(self, data):
        self.data = data

    def getNodeByTag(self, tag):
        node = self.data
        for item in tag.split("."):
            if isinstance(node, dict) and item in node:
                node = node[item]
            else:
                return None
        return node

    def exists(self, tag):
        return self.getNodeByTag(tag) is not None

    def empty(self, tag):
        node = self.getNodeByTag(tag)
        return node is None or len(node) == 0 or (hasattr(node, "strip") and node.strip() in ("", "0"))

    def toList(self, tag, sortBy=None, sortAs=None):
        result = self.getNodeByTag(tag)
        if result is None:
            return []
        return result if isinstance(result, list) else [result]

    def physical_interface(self, name):
        return self.getNodeByTag("interfaces." + name + ".if") or name


def render(template_name, data):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(SRC / "opnsense/service/templates/OPNsense/Failbackd")),
        trim_blocks=True,
        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
    )
    env.filters["shlex_quote"] = shlex.quote
    env.filters["shlex_split"] = shlex.split
    env.filters["regex_replace"] = lambda value, pattern, replacement: re.sub(pattern, replacement, value)
    return env.get_template(template_name).render(dict(data, helpers=Helpers(data)))


def check_templates(r, binary):
    try:
        import jinja2  # noqa: F401
    except ImportError:
        r.check(not REQUIRE_TOOLS, "python3-jinja2 missing")
        print("SKIPPED: template rendering (no jinja2)")
        return
    targets = (SRC / "opnsense/service/templates/OPNsense/Failbackd/+TARGETS").read_text().split()
    for line in targets:
        src, _, dest = line.partition(":")
        r.check((SRC / "opnsense/service/templates/OPNsense/Failbackd" / src).is_file(), f"+TARGETS: {src} missing")
        r.check(dest.startswith("/"), f"+TARGETS: {dest} not absolute")
    samples = sorted(FIXTURES.glob("config-*.xml"))
    r.check(len(samples) >= 5, "fewer than 5 sample configs")
    with tempfile.TemporaryDirectory() as tmp:
        for sample in samples:
            data = config_to_dict(ET.parse(sample).getroot())
            toml = render("failbackd.toml", data)
            out = Path(tmp) / (sample.stem + ".toml")
            out.write_text(toml)
            res = subprocess.run([binary, "check-config", str(out)], capture_output=True, text=True)
            r.check(res.returncode == 0, f"{sample.name}: failbackd check-config failed:\n{res.stdout}{res.stderr}\n{toml}")
            rc = render("rc.conf.d", data)
            enabled = Helpers(data).getNodeByTag("OPNsense.failbackd.general.enabled") == "1"
            want = 'failbackd_enable="YES"' if enabled else 'failbackd_enable="NO"'
            r.check(want in rc.splitlines(), f"{sample.name}: rc.conf.d lacks {want}:\n{rc}")
            r.check(('failbackd_enable="YES"' in rc) != ('failbackd_enable="NO"' in rc), f"{sample.name}: both YES and NO")
            if sample.name == "config-every-type.xml":
                import tomllib

                cfg = tomllib.loads(toml)
                r.check(cfg["watch"] == ["*@igb0", "*@igb1"], f"watch {cfg['watch']} (wan,lan → igb0, igb1)")
                probes = {p["name"]: p for p in cfg["probe"]}
                r.check("switched-off" not in probes, "a disabled probe was written")
                r.check(probes["custom"]["command"] == ["/usr/local/bin/check-something", "--quiet", "two words"],
                        f"command argv {probes['custom']['command']}")
                r.check(probes["wan-gw"].get("gateways") == ["WAN_GW", "WAN2_GW"], "gateway list")
                r.check(probes["ipsec"]["connections"][0].startswith("a1b2c3d4"), "ipsec by UUID")
                r.check(probes["ipsec"]["connections"][-1] == "con1", "legacy tunnel by charon name (con<ikeid>)")
                r.check(probes["upstream-v6"]["required"] is False, "required = false")
            if sample.name == "config-every-type.xml":
                check_ha_sync(r, sample, toml, binary, tmp)
            if sample.name == "config-maintenance.xml":
                r.check('mode = "maintenance"' in toml, "maintenance mode not written")


def check_ha_sync(r, sample, primary_toml, binary, tmp):
    """HA sync copies the section OPNsense.failbackd to the backup (failbackd_xmlrpc_sync,
    rc.filter_synchronize), where the template renders it against the backup's own
    config.xml. The same section with the backup's interface devices (vtnet* instead of igb*)
    must render a valid config that differs only in the watched devices: no per-node value
    travels."""
    root = ET.parse(sample).getroot()
    for dev, iface in zip(("vtnet0", "vtnet1", "vtnet2"), root.find("interfaces")):
        iface.find("if").text = dev
    backup_toml = render("failbackd.toml", config_to_dict(root))
    out = Path(tmp) / "ha-backup.toml"
    out.write_text(backup_toml)
    res = subprocess.run([binary, "check-config", str(out)], capture_output=True, text=True)
    r.check(res.returncode == 0, f"HA sync: the backup's rendering is refused:\n{res.stderr}")
    differ = [(a, b) for a, b in zip(primary_toml.splitlines(), backup_toml.splitlines()) if a != b]
    r.check(differ == [('watch = ["*@igb0", "*@igb1"]', 'watch = ["*@vtnet0", "*@vtnet1"]')],
            f"HA sync: the backup's config differs in more than its devices: {differ}")


# --- JS ---
def status_struct_fields():
    """Field names of the serde structs in src/status.rs (serde renames applied)."""
    text = (ROOT / "src/status.rs").read_text()
    structs = {}
    for name, body in re.findall(r"pub struct (\w+) \{(.*?)\n\}", text, re.S):
        fields = set()
        rename = None
        for line in body.splitlines():
            m = re.search(r'rename = "(\w+)"', line)
            if m:
                rename = m.group(1)
            m = re.match(r"\s*pub (\w+):", line)
            if m:
                fields.add(rename or m.group(1))
                rename = None
        structs[name] = fields
    return structs


def check_js(r):
    status = json.loads((FIXTURES / "status.json").read_text())
    fields = status_struct_fields()
    # Subsets, not equality: the daemon may grow fields the pages do not show yet, but every
    # field the fixture (and so the JS) relies on must exist.
    r.check(set(status) <= fields.get("Status", set()), f"status.json keys {sorted(status)} not all in Status {sorted(fields.get('Status', []))}")
    r.check(set(status["failback"]) <= fields.get("FailbackStatus", set()), "status.json failback keys not in FailbackStatus")
    r.check(all(set(p) <= fields.get("ProbeStatus", set()) for p in status["probes"]), "probe keys not in ProbeStatus")
    r.check(all(set(c) <= fields.get("CarpStatus", set()) for c in status["carp"]), "carp keys not in CarpStatus")
    used = set(re.findall(r"\b(?:state|fb|p|c)\.(\w+)", (SRC / "opnsense/www/js/failbackd_status.js").read_text()))
    used |= set(re.findall(r"\b(?:state|fb|p)\.(\w+)", (SRC / "opnsense/www/js/widgets/Failbackd.js").read_text()))
    known = set().union(*fields.values()) | {"length", "join", "filter", "map", "indexOf", "toFixed"}
    r.check(used <= known, f"the JS reads fields the daemon does not send: {sorted(used - known)}")
    node = r.tool("node")
    if not node:
        return
    status_js = SRC / "opnsense/www/js/failbackd_status.js"
    widget_js = SRC / "opnsense/www/js/widgets/Failbackd.js"
    for f in (status_js,):
        res = subprocess.run([node, "--check", str(f)], capture_output=True, text=True)
        r.check(res.returncode == 0, f"node --check {f.name}: {res.stderr}")
    now = status["failback"]["hold_deadline"] - 125  # 2m 5s left
    with tempfile.TemporaryDirectory() as tmp:
        # Widgets are ES modules that use the dashboard's global BaseTableWidget.
        shutil.copy(widget_js, Path(tmp) / "Failbackd.mjs")
        (Path(tmp) / "run.mjs").write_text(
            # What core's BaseWidget/BaseTableWidget give a widget: `translations` (filled by the
            # dashboard from the metadata), no translate() (opnsense/core www/js/widgets).
            "globalThis.BaseTableWidget = class { constructor() { this.translations = {}; } };\n"
            "const { default: W } = await import('./Failbackd.mjs');\n"
            "const keys = JSON.parse(process.argv[5]);\n"
            "function widget() { const w = new W(); for (const k of keys) w.translations[k] = '[' + k + ']'; return w; }\n"
            "const status = require_json();\n"
            "function require_json() { return JSON.parse(process.argv[2]); }\n"
            "const st = require(process.argv[3]);\n"
            "const hostile = Object.assign({}, status, {phase: '<img src=x onerror=alert(1)>'});\n"
            "console.log(JSON.stringify({widget: widget().makeRows(status, Number(process.argv[4])),\n"
            "  hostile: widget().makeRows(hostile, Number(process.argv[4]))[0],\n"
            "  untranslated: new W().makeRows(status, Number(process.argv[4]))[0],\n"
            "  summary: st.summaryRows(status, Number(process.argv[4])), probes: st.probeRows(status),\n"
            "  carp: st.carpRows(status)}));\n"
        )
        # run.mjs needs require for the classic script: provide it through createRequire.
        run = (Path(tmp) / "run.mjs").read_text()
        (Path(tmp) / "run.mjs").write_text("import { createRequire } from 'module';\n"
                                           "const require = createRequire(import.meta.url);\n" + run)
        meta = ET.parse(SRC / "opnsense/www/js/widgets/Metadata/Failbackd.xml").getroot()
        keys = sorted(e.tag for e in meta.find("failbackd/translations"))
        res = subprocess.run([node, str(Path(tmp) / "run.mjs"), json.dumps(status), str(status_js), str(now),
                              json.dumps(keys)],
                             capture_output=True, text=True)
    if not r.check(res.returncode == 0, f"node render: {res.stderr}"):
        return
    out = json.loads(res.stdout)
    r.check(out["widget"] == [
        ["[phase]", "holding"],
        ["[held]", "[held_yes]"],
        ["[blocking]", "wan-gw, ipsec"],
        ["[time_left]", "2m 5s"],
        ["[probes]", "1/4 up"],
    ], f"widget rows {out['widget']}")
    r.check(out["hostile"] == ["[phase]", "&lt;img src=x onerror=alert(1)&gt;"], f"widget escapes values: {out['hostile']}")
    r.check(out["untranslated"] == ["phase", "holding"], f"a missing translation shows its key: {out['untranslated']}")
    r.check(out["summary"] == [
        ["Phase", "holding"], ["Held", "yes (demoted)"], ["Backend", "opnsense (service_status)"],
        ["Last outcome", "released"], ["Failback", "#3 (boot)"],
        ["Blocking the release", "wan-gw, ipsec"], ["Time left in the hold", "2m 5s"],
    ], f"summary rows {out['summary']}")
    # With a measurement (src/status.rs MeasuredStatus): the measured demotion, its age, and the
    # wanted state when it differs.
    measured = dict(status, measured={"held": False, "foreign": False, "demoted": True, "demotion": 240,
                                      "others": ["other sources add 240"], "at": now - 3},
                    wanted_demoted=True)
    res2 = subprocess.run([node, "-e",
                           "const st=require(process.argv[1]);"
                           "console.log(JSON.stringify(st.summaryRows(JSON.parse(process.argv[2]), Number(process.argv[3]))))",
                           str(status_js), json.dumps(measured), str(now)], capture_output=True, text=True)
    if r.check(res2.returncode == 0, f"node render (measured): {res2.stderr}"):
        rows = json.loads(res2.stdout)
        r.check(["Measured", "not held, demotion 240, 3s ago; wanted held"] in rows, f"measured row {rows}")
    r.check(out["probes"][0] == ["wan-gw", "opnsense_gateway", "WAN_GW", "down", "yes", "yes", "0/4", "41.3 ms",
                                 "WAN_GW: status down (Offline)"], f"probe row {out['probes'][0]}")
    r.check(out["probes"][1][3:6] == ["up", "yes", "no"] and out["probes"][3][4:6] == ["no", "no"],
            f"probe rows {out['probes']}")
    r.check(out["carp"] == [["1@igb0", "BACKUP"], ["2@igb1", "BACKUP"]], f"carp rows {out['carp']}")
    # Every translation key the widget uses is in its metadata.
    meta = ET.parse(SRC / "opnsense/www/js/widgets/Metadata/Failbackd.xml").getroot()
    keys = {e.tag for e in meta.find("failbackd/translations")}
    used = set(re.findall(r"\btr\('(\w+)'\)", widget_js.read_text()))
    r.check(len(used) >= 5, f"widget translation keys found: {used}")
    r.check(used <= keys, f"widget translation keys missing from metadata: {used - keys}")


# --- configd actions ---
def check_actions(r, binary):
    conf = (SRC / "opnsense/service/conf/actions.d/actions_failbackd.conf").read_text()
    actions = dict(re.findall(r"^\[([\w.-]+)\]\n((?:[^\[\n][^\n]*\n?)*)", conf, re.M))
    help_out = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    subs = set(re.findall(r"^  ([a-z][a-z-]+)\s", help_out.split("Commands:", 1)[1], re.M)) - {"help"}
    n = 0
    for name, body in actions.items():
        cmd = re.search(r"^command:(.*)$", body, re.M)
        if not r.check(cmd is not None, f"action [{name}] has no command"):
            continue
        for part in cmd.group(1).split(";"):
            argv = shlex.split(part)
            if not argv or argv[0] != "/usr/local/bin/failbackd":
                continue
            n += 1
            r.check(argv[1] in subs, f"[{name}]: `failbackd {argv[1]}` is not a subcommand ({sorted(subs)})")
            sub_help = subprocess.run([binary, argv[1], "--help"], capture_output=True, text=True).stdout
            for flag in (a for a in argv[2:] if a.startswith("-")):
                r.check(re.search(r"(^|\s)" + re.escape(flag) + r"\b", sub_help) is not None,
                        f"[{name}]: `failbackd {argv[1]}` has no flag {flag}")
    r.check(n >= 5, f"only {n} actions run failbackd")
    php = "\n".join(p.read_text() for p in files("*.php", "*.inc"))
    for used in re.findall(r"'failbackd (\w[\w.-]*)'", php):
        r.check(used in actions, f"PHP uses configd action `failbackd {used}`, not in actions_failbackd.conf")


# --- the CARP hook and service check ---
def check_hooks(r):
    hook = SRC / "etc/rc.syshook.d/carp/10-failbackd"
    check = SRC / "etc/rc.carp_service_status.d/failbackd"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        calls = tmp / "calls"
        fake = tmp / "failbackd"
        fake.write_text(f'#!/bin/sh\necho "$*" >>{calls}\nexit "${{FAKE_EXIT:-0}}"\n')
        fake.chmod(0o755)
        logger = tmp / "logger"  # the hook logs failures with logger(1); keep them off this host's log
        logger.write_text(f'#!/bin/sh\necho "logger $*" >>{calls}\n')
        logger.chmod(0o755)
        rc = tmp / "rc.conf.d"

        def run(script, args, enabled, fake_exit=0):
            if enabled is None:
                rc.unlink(missing_ok=True)
            else:
                rc.write_text(f'failbackd_enable="{"YES" if enabled else "NO"}"\n')
            calls.write_text("")
            env = {"PATH": f"{tmp}:/usr/bin:/bin", "FAILBACKD": str(fake), "FAILBACKD_CONFIG": "/x.toml",
                   "FAILBACKD_RC_CONF": str(rc), "FAKE_EXIT": str(fake_exit)}
            res = subprocess.run(["/bin/sh", str(script)] + args, env=env, capture_output=True, text=True, timeout=20)
            return res.returncode, calls.read_text().splitlines()

        for enabled in (False, None):
            r.check(run(check, [], enabled, 1) == (0, []), f"service check with enabled={enabled}: must pass, not run failbackd")
            r.check(run(hook, ["1@igb0", "MASTER"], enabled) == (0, []), f"hook with enabled={enabled}: must do nothing")
        r.check(run(check, [], True, 0) == (0, ["ready --config /x.toml"]), "service check: failbackd ready, exit 0")
        r.check(run(check, [], True, 1)[0] == 1, "service check: failbackd ready's exit 1 (hold) is passed on")
        r.check(run(hook, ["1@igb0", "MASTER"], True) == (0, ["hook --config /x.toml 1@igb0 MASTER"]), "hook arguments")
        code, log = run(hook, ["1@igb0", "BACKUP"], True, 1)
        r.check(code == 0 and len(log) == 2 and log[1].startswith("logger -t failbackd"),
                f"a failing hook exits 0 and logs: {code} {log}")
        # The planned-shutdown drain (rc.syshook stop, before 80-freebsd stops the services).
        stop = SRC / "etc/rc.syshook.d/stop/50-failbackd"
        r.check(stop.name < "80-freebsd", "the stop hook sorts after core's 80-freebsd")
        r.check(run(stop, [], False) == (0, []), "stop hook while disabled: must not drain")
        r.check(run(stop, [], True)[1] == ["drain --config /x.toml --timeout 10s"], "stop hook drains when enabled")
        code, log = run(stop, [], True, 1)
        r.check(code == 0 and log[-1].startswith("logger -t failbackd"), f"a failed drain is logged, shutdown goes on: {log}")


# --- the package's file list (plugins.mk plist) ---
def check_plist(r, pkg):
    # plugins.mk's plist: every file under src/ plus the generated version file.
    want = {"/usr/local/" + p.relative_to(SRC).as_posix(): p for p in SRC.rglob("*") if p.is_file()}
    want["/usr/local/opnsense/version/failbackd"] = None
    with tarfile.open(pkg, "r:*") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile() and not m.name.startswith("+")}
        manifest = json.loads(tar.extractfile("+MANIFEST").read())
    r.check(set(members) == set(want), f"package files differ from src/: {sorted(set(members) ^ set(want))}")
    r.check(set(manifest["files"]) == set(want), "manifest files differ from src/")
    for hook in ("/usr/local/etc/rc.syshook.d/carp/10-failbackd", "/usr/local/etc/rc.carp_service_status.d/failbackd",
                 "/usr/local/etc/rc.syshook.d/stop/50-failbackd",
                 "/usr/local/opnsense/scripts/failbackd/validate_candidate.py"):
        r.check(hook in members and members[hook].mode & 0o111 == 0o111, f"{hook} not executable in the package")
    r.check(manifest["name"] == "os-failbackd" and "failbackd" in manifest["deps"], "name/deps of the plugin package")
    r.check(manifest.get("annotations", {}).get("product_id") == "os-failbackd", "version annotations")
    scripts = manifest.get("scripts", {})
    r.check("configctl interface update carp service_status" in scripts.get("post-deinstall", ""),
            "post-deinstall does not re-run the CARP service evaluation")
    r.check("template reload OPNsense/Failbackd" in scripts.get("post-install", ""), "post-install template reload")
    r.check(manifest.get("abi") == "FreeBSD:*:*", f"plugin abi {manifest.get('abi')} (plugins.mk PLUGIN_NO_ABI)")
    check_scripts(r, scripts)


# --- menu URLs through core's MVC router ---
def check_router(r):
    """Every /ui/failbackd/... menu URL reaches a controller action the way opnsense/core's
    Mvc/Router.php maps it: /ui/<module>/<controller>/<action>, controller and action default
    to index, <Controller>Controller.php in the module's namespace, <action>Action()."""
    menu = ET.parse(SRC / "opnsense/mvc/app/models/OPNsense/Failbackd/Menu/Menu.xml").getroot()
    ctrl_dir = SRC / "opnsense/mvc/app/controllers/OPNsense/Failbackd"
    urls = [e.get("url") for e in menu.iter() if (e.get("url") or "").startswith("/ui/failbackd")]
    r.check(len(urls) >= 2, f"menu URLs {urls}")
    for url in urls:
        parts = url.strip("/").split("/")
        controller = parts[2] if len(parts) > 2 else "index"
        action = parts[3] if len(parts) > 3 else "index"
        name = controller[:1].upper() + controller[1:] + "Controller"
        php = ctrl_dir / (name + ".php")
        text = php.read_text() if php.is_file() else ""
        r.check(f"class {name} " in text and re.search(rf"public function {action}Action\(", text),
                f"menu {url}: no {name}::{action}Action() in {php.name}")


# --- package scripts: upgrade and `pkg -r ROOT` ---
def run_script(script, env, root):
    """Runs a package script as pkg does (sh, `set -- name-version`), traced."""
    res = subprocess.run(["sh", "-x", "-c", "set -- os-failbackd-0\n" + script],
                         env=dict(os.environ, PKG_PREFIX="/usr/local", **env), capture_output=True, text=True,
                         cwd=root, timeout=30)
    return res


def check_scripts(r, scripts):
    ran = lambda res, word: any(word in line for line in res.stderr.splitlines() if line.startswith("+"))  # noqa: E731
    with tempfile.TemporaryDirectory() as root:
        # An upgrade runs the old pre-deinstall with PKG_UPGRADE=true: the daemon must not stop.
        res = run_script(scripts.get("pre-deinstall", ""), {"PKG_UPGRADE": "true"}, root)
        r.check(res.returncode == 0 and not ran(res, "service") and not ran(res, "release"),
                f"pre-deinstall on upgrade stops or releases:\n{res.stderr}")
        # post-install reloads (or starts) an enabled daemon.
        r.check("rc.d/failbackd reload" in scripts.get("post-install", ""), "post-install does not reload the daemon")
        # pkg -r ROOT: delete removes ROOT's rc.conf.d and the plugin-written TOML, nothing of the host's.
        for rel, text in (("etc/rc.conf.d/failbackd", 'failbackd_enable="YES"\n'),
                          ("usr/local/etc/failbackd.toml", "# Written by os-failbackd from Services\n")):
            Path(root, rel).parent.mkdir(parents=True, exist_ok=True)
            Path(root, rel).write_text(text)
        for kind in ("pre-deinstall", "post-deinstall", "post-install"):
            res = run_script(scripts.get(kind, ""), {"PKG_ROOTDIR": root}, root)
            r.check(res.returncode == 0 and not ran(res, "configctl") and not ran(res, "service ")
                    and not ran(res, "rc.d/"), f"{kind} under PKG_ROOTDIR acts on the host:\n{res.stderr}")
        r.check(not Path(root, "etc/rc.conf.d/failbackd").exists(), "delete leaves /etc/rc.conf.d/failbackd (enabled)")
        r.check(not Path(root, "usr/local/etc/failbackd.toml").exists(), "delete leaves the plugin-written TOML")
        hand = Path(root, "usr/local/etc/failbackd.toml")
        hand.write_text("# my own\n")
        run_script(scripts.get("post-deinstall", ""), {"PKG_ROOTDIR": root}, root)
        r.check(hand.exists(), "delete removed a hand-written TOML")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, pkg = sys.argv[1], sys.argv[2]
    r = Results()
    check_php(r)
    check_xml(r)
    check_templates(r, binary)
    check_js(r)
    check_actions(r, binary)
    check_hooks(r)
    check_plist(r, pkg)
    check_router(r)
    print(f"os-failbackd plugin: {r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
