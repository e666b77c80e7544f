"""A stand-in for opnsense/core's configd modules (src/opnsense/service/modules), only the two
classes validate_candidate.py uses, for CI runs without a core checkout. Built on the same rules
as tests/packaging/check_plugin.py's renderer; tools/opnsense-conformance runs the real ones."""
