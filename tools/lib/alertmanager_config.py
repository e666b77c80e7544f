"""Prints the Alertmanager config of the live tests (tools/lib/harness.sh alertmanager_config):
the route's group_by and the inhibit_rules of the example in docs/runbook.md (read from between
its alertmanager-example markers, so the documented example is the tested one), group_wait 1s,
the given group_interval, repeat_interval 1h, and one receiver: the webhook on 127.0.0.1.

    python3 tools/lib/alertmanager_config.py RUNBOOK HOOK_PORT GROUP_INTERVAL_S [README]

With README, its `group_by:` lines must equal the runbook's (exit status 1 otherwise).
"""
import re
import sys

import yaml

runbook, hook_port, group_interval = sys.argv[1:4]
readme = sys.argv[4] if len(sys.argv) > 4 else None
with open(runbook, encoding="utf-8") as f:
    m = re.search(r"<!-- alertmanager-example:start -->\s*```yaml\n(.*?)```\s*<!-- alertmanager-example:end -->",
                  f.read(), re.S)
if not m:
    sys.exit("alertmanager_config: no alertmanager-example block in %s" % runbook)
example = yaml.safe_load(m.group(1))
if readme:
    with open(readme, encoding="utf-8") as f:
        readme_group_by = re.findall(r"^\s*group_by:\s*(\[.*\])\s*$", f.read(), re.M)
    if [yaml.safe_load(g) for g in readme_group_by] != [example["route"]["group_by"]]:
        sys.exit("alertmanager_config: README group_by %s differs from the runbook's %s"
                 % (readme_group_by, example["route"]["group_by"]))
config = {
    "route": {"receiver": "webhook", "group_by": example["route"]["group_by"], "group_wait": "1s",
              "group_interval": "%ss" % group_interval, "repeat_interval": "1h"},
    "receivers": [{"name": "webhook", "webhook_configs": [
        {"url": "http://127.0.0.1:%s/" % hook_port, "send_resolved": True}]}],
    "inhibit_rules": example["inhibit_rules"],
}
print(yaml.safe_dump(config, sort_keys=False))
