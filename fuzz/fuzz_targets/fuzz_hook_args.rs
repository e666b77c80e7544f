//! parse_hook_args on two arbitrary arguments (the input split at its first NUL byte, like two
//! argv strings): never panics, and whatever it accepts is exactly `digits@ifname STATE`.
#![no_main]

use failbackd::control::parse_hook_args;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let (target, state) = data.split_once('\0').unwrap_or((data, ""));
    if let Ok((vhid, iface, carp)) = parse_hook_args(target, state) {
        let (v, i) = target.split_once('@').expect("accepted without '@'");
        assert!(!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()), "vhid text {v:?}");
        assert_eq!(v.parse::<u16>().ok(), Some(vhid));
        assert!((1..=255).contains(&vhid), "vhid {vhid}");
        assert_eq!(i, iface);
        assert!(!iface.is_empty() && iface.len() <= 15, "iface {iface:?}");
        assert!(iface.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)), "iface {iface:?}");
        assert_eq!(carp.as_str(), state);
    }
});
