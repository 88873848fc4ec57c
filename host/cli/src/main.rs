//! The `wsrun` command: parse, load the guest, run one session with the process's stdio, turn its outcome into one
//! message and an exit code. It uses only the `wsrun` library's public API.

mod args;
mod bundled;
mod logger;
mod run;
mod scaffold;
mod signals;

fn main() -> std::process::ExitCode {
    run::main()
}
