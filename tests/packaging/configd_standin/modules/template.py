"""Stand-in for core modules/template.py Template: renders a module's +TARGETS under a root."""

import os
import shlex
import re
from pathlib import Path

import jinja2

from check_plugin import Helpers  # on PYTHONPATH (check_validator.py sets it)


class Template:
    def __init__(self, target_root_directory="/"):
        self._root = target_root_directory
        self._config = {}
        self._template_dir = os.path.dirname(os.path.abspath(__file__)) + "/../templates/"
        self._env = jinja2.Environment(loader=jinja2.FileSystemLoader(self._template_dir), trim_blocks=True,
                                       extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
        self._env.filters["shlex_quote"] = shlex.quote
        self._env.filters["shlex_split"] = shlex.split
        self._env.filters["regex_replace"] = lambda value, pattern, replacement: re.sub(pattern, replacement, value)

    def set_config(self, config_data):
        self._config = config_data if isinstance(config_data, dict) else {}

    def _generate(self, module_name, create_directory=True, strict=False):
        result = []
        targets = Path(self._template_dir, module_name, "+TARGETS").read_text().split("\n")
        for line in targets:
            src, sep, dest = line.partition(":")
            if not sep or src.strip().startswith("#"):
                continue
            content = self._env.get_template(f"{module_name}/{src.strip()}").render(
                dict(self._config, helpers=Helpers(self._config)))
            out = os.path.join(self._root, dest.strip().lstrip("/"))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "w", encoding="utf-8") as f:
                f.write(content)
            result.append(out)
        return result
