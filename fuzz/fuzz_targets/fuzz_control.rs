//! The control protocol's request parser: a line from the socket is parsed as a `Request`;
//! it must never panic, and whatever parses must re-serialize and parse back to itself.
#![no_main]

use failbackd::control::{Request, MAX_LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    // The server never parses more than MAX_LINE bytes; longer inputs only slow the fuzzer.
    if line.len() > MAX_LINE {
        return;
    }
    if let Ok(req) = serde_json::from_str::<Request>(line.trim_end()) {
        let text = serde_json::to_string(&req).expect("a parsed request serializes");
        let back: Request = serde_json::from_str(&text).expect("a serialized request parses");
        assert_eq!(back, req, "round trip changed {text}");
    }
});
