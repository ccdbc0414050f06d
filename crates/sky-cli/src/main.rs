//! The `sky` binary.

fn main() -> std::process::ExitCode {
    sky_cli::main()
}
