#!/usr/bin/env bash
# Checks the Prometheus rules and runs their unit tests; for CI and for people.
#
#   tools/check_alerts.sh            # from anywhere in the repository
#   PROMTOOL=/path/to/promtool tools/check_alerts.sh
#
# promtool comes with Debian's `prometheus` package (apt-get install -y prometheus); the
# annotation check needs python3 with PyYAML (Debian python3-yaml).
# Exit status: 0 when every rule file is valid and every test passes, 1 otherwise.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
promtool=${PROMTOOL:-promtool}

if ! command -v "${promtool}" >/dev/null 2>&1; then
    echo "check_alerts: promtool not found (apt-get install -y prometheus, or set PROMTOOL)" >&2
    exit 1
fi

cd "${repo}"
shopt -s nullglob
rules=(alerts/*.rules.yml)
tests=(alerts/tests/*.rules.test.yml)
if ((${#rules[@]} == 0 || ${#tests[@]} == 0)); then
    echo "check_alerts: no rule files or no test files under alerts/" >&2
    exit 1
fi

status=0
echo "== promtool check rules"
"${promtool}" check rules "${rules[@]}" || status=1

# One test file per rule file (alerts/tests/<name>.rules.test.yml for alerts/<name>.rules.yml).
for r in "${rules[@]}"; do
    t="alerts/tests/$(basename "${r%.rules.yml}").rules.test.yml"
    if [[ ! -f ${t} ]]; then
        echo "check_alerts: ${r} has no test file ${t}" >&2
        status=1
    fi
done

# Every runbook_url anchor must be a section of docs/runbook.md. GitHub's anchor of a heading
# is its text in lower case with spaces as dashes (the headings here have no other punctuation).
echo "== runbook anchors"
declare -A sections=()
headings=$(grep '^## ' docs/runbook.md) || headings=""
mapfile -t lines <<<"${headings}"
for h in "${lines[@]}"; do
    h=${h#\#\# }
    h=${h,,}
    sections[${h// /-}]=1
done
found=$(grep -ho 'runbook\.md#[A-Za-z0-9_-]*' "${rules[@]}") || found=""
mapfile -t anchors <<<"${found//runbook.md#/}"
for a in "${anchors[@]}"; do
    if [[ -z ${a} ]]; then
        echo "check_alerts: no runbook_url found in ${rules[*]}" >&2
        status=1
    elif [[ -z ${sections[${a}]:-} ]]; then
        echo "check_alerts: runbook anchor #${a} has no '## ' section in docs/runbook.md" >&2
        status=1
    fi
done
echo "${#anchors[@]} runbook anchors checked against ${#sections[@]} sections"

# Every alert carries what the on-call person needs, is tested, and is listed in the README.
echo "== alert labels, annotations, tests"
python3 - "${rules[@]}" <<'PY' || status=1
import glob
import re
import sys

import yaml

NEEDED = ("summary", "description", "runbook_url", "dashboard_url")
problems = 0
tests = ""
# The rule file's own test file and the scenario files next to it (alerts/tests/*.rules.test.yml).
for test in sorted(glob.glob("alerts/tests/*.rules.test.yml")):
    with open(test, encoding="utf-8") as f:
        tests += f.read()
with open("README.md", encoding="utf-8") as f:
    readme = f.read()
alerts = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts.append(rule)
for rule in alerts:
    name = rule["alert"]
    sev = rule.get("labels", {}).get("severity")
    missing = [a for a in NEEDED if not str(rule.get("annotations", {}).get(a, "")).strip()]
    if sev not in ("warning", "critical"):
        print("check_alerts: %s: severity %r is not warning or critical" % (name, sev), file=sys.stderr)
        problems += 1
    if missing:
        print("check_alerts: %s: annotations missing: %s" % (name, ", ".join(missing)), file=sys.stderr)
        problems += 1
    if not re.search(r"alertname: %s\s*$" % re.escape(name), tests, re.M):
        print("check_alerts: %s has no alert_rule_test" % name, file=sys.stderr)
        problems += 1
    if name not in readme:
        print("check_alerts: %s is not named in README.md" % name, file=sys.stderr)
        problems += 1
print("%d alerts checked for severity, %s, a test and a README mention" % (len(alerts), ", ".join(NEEDED)))
sys.exit(1 if problems else 0)
PY

echo "== promtool test rules"
"${promtool}" test rules "${tests[@]}" || status=1

if ((status == 0)); then
    echo "check_alerts: OK (${#rules[@]} rule file(s), ${#tests[@]} test file(s))"
else
    echo "check_alerts: FAILED" >&2
fi
exit "${status}"
