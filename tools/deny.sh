#!/usr/bin/env bash
# Checks the dependency tree against deny.toml: licenses, bans (wildcards, duplicates) and
# sources (crates.io only). Installs cargo-deny from crates.io when it is missing.
# Advisories are not checked here: the RustSec database cannot be fetched from CI. With network
# access run `cargo deny check advisories` (docs/security.md).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
if ! cargo deny --version >/dev/null 2>&1; then
  echo "==> installing cargo-deny"
  cargo install cargo-deny --locked
fi
echo "==> cargo deny check bans licenses sources"
cargo deny --locked check bans licenses sources
echo "deny.sh took $(($(date +%s) - started))s"
