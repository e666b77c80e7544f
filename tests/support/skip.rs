//! The one way a test skips for a missing prerequisite (a tool, root): it prints SKIPPED with
//! the reason and passes, except under `FAILBACKD_REQUIRE_TOOLS=1` (set by `tools/test-all` as
//! root, hence by CI), where it fails with the same reason, so CI cannot be green without
//! running it. Included by `support/mod.rs`, and by `#[path]` from test files that need no
//! daemon.
#![allow(dead_code)]

use std::path::PathBuf;

/// Whether a missing prerequisite must fail the test.
pub fn tools_required() -> bool {
    std::env::var("FAILBACKD_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// Skips `test` for `reason` (the caller returns right after), or panics with the reason when
/// prerequisites are required.
pub fn skip_or_fail(test: &str, reason: &str) {
    assert!(!tools_required(), "{test}: {reason}, and FAILBACKD_REQUIRE_TOOLS=1 forbids skipping");
    eprintln!("SKIPPED {test}: {reason}");
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when root; otherwise skips (or fails) `test`, which needs root.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    skip_or_fail(test, "needs root");
    false
}

/// Finds an external tool on PATH; when it is missing, skips (or fails) `test`.
pub fn require_tool(test: &str, name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()));
    if found.is_none() {
        skip_or_fail(test, &format!("{name} is not installed"));
    }
    found
}
