//! The `wsrun` binary; everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    wsrun::cli::main()
}
