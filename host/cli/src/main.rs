//! The `wsrun` command: parse, load the guest, run one session with the process's stdio (or many, `--sessions`), turn
//! the outcome into one message and an exit code. It uses only the `wsrun` library's public API.

mod allocator;
mod args;
mod bundled;
mod logger;
mod run;
mod scaffold;
mod sessions;
mod signals;
mod terminal;

fn main() -> std::process::ExitCode {
    allocator::keep_large_blocks();
    run::main()
}
