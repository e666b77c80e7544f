"""Stand-in for core modules/config.py Config: config.xml as nested dicts (see __init__.py)."""

import xml.etree.ElementTree as ET

from check_plugin import config_to_dict  # on PYTHONPATH (check_validator.py sets it)


class Config:
    def __init__(self, filename):
        self._data = config_to_dict(ET.parse(filename).getroot()) or {}

    def get(self):
        return self._data
