//! The `failbackd` binary: argument parsing only; see `failbackd::cli`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    failbackd::cli::main()
}
