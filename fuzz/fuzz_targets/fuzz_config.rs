//! Config::parse on arbitrary UTF-8: it must return Ok or errors, never panic, and every error
//! must point into the text (line/column inside it) or be the one positionless error.
#![no_main]

use failbackd::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(errors) = Config::parse("fuzz.toml", text) {
        assert!(!errors.0.is_empty(), "Err with no error");
        let lines = text.matches('\n').count() + 1;
        for e in &errors.0 {
            assert!(e.line <= lines, "line {} past the end ({lines} lines): {e}", e.line);
            assert!(e.line == 0 || e.column >= 1, "column 0 with a line: {e}");
            // Rendering an error must not panic either.
            let _ = e.to_string();
        }
    }
});
