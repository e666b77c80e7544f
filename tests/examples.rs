//! `failbackd check-config` accepts every shipped example, and rejects keys that do not belong
//! to the chosen backend or probe type (with file:line:column).

use assert_cmd::Command;
use std::path::PathBuf;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_passes_check_config() {
    let files = examples();
    // The per-backend examples must exist, so this test cannot pass vacuously.
    for name in ["failbackd.toml", "opnsense.toml", "freebsd.toml", "keepalived.toml"] {
        assert!(files.iter().any(|f| f.ends_with(name)), "examples/{name} is missing");
    }
    for file in files {
        let out = Command::cargo_bin("failbackd").unwrap().arg("check-config").arg(&file).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn check(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::cargo_bin("failbackd").unwrap().arg("check-config").arg(&path).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn keys_of_another_backend_are_rejected_with_their_position() {
    let (code, err) = check("[backend]\ntype = \"freebsd\"\ntrack_file = \"/run/x\"\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("c.toml:3:14: error: `track_file` does not apply to the freebsd backend"), "{err}");

    let (code, err) = check("[backend]\ntype = \"keepalived\"\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing `track_file`"), "{err}");

    let (code, err) = check("[backend]\ntype = \"freebsd\"\ndemotion = 1048576\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("OPNsense"), "{err}");

    let (code, err) = check("[backend]\ntype = \"opnsense\"\nmode = \"toggle\"\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown opnsense mode \"toggle\""), "{err}");
}

#[test]
fn ipsec_keys_only_on_ipsec_probes() {
    let base = "[backend]\ntype = \"simulated\"\n";
    let (code, err) = check(&format!(
        "{base}[[probe]]\nname = \"p\"\ntype = \"tcp\"\ntarget = \"192.0.2.1:1\"\nconnections = [\"a\"]\n"
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`connections` does not apply to tcp probes"), "{err}");
    let (code, err) = check(&format!("{base}[[probe]]\nname = \"p\"\ntype = \"ipsec\"\ntarget = \"x\"\n"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`target` does not apply to an ipsec probe"), "{err}");
    let (code, err) =
        check(&format!("{base}[[probe]]\nname = \"p\"\ntype = \"ipsec\"\nconnections = [\"a\", \"b\"]\n"));
    assert_eq!(code, 0, "{err}");
}
