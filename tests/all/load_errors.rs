//! Guests that cannot be loaded: one line, exit code 2, before any connection.

use crate::util::run_with_input;

async fn load_error(guest: &str) -> String {
    let run = run_with_input(&[guest, "ws://127.0.0.1:9/"], b"").await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("wsrun: "), "{}", run.stderr);
    run.stderr
}

#[tokio::test]
async fn a_missing_guest_file() {
    let dir = tempdir();
    let missing = dir.join("missing.wasm");
    let message = load_error(missing.to_str().unwrap()).await;
    assert!(message.contains("cannot read guest") && message.contains("missing.wasm"), "{message}");
}

#[tokio::test]
async fn a_file_that_is_not_wasm() {
    let dir = tempdir();
    let file = dir.join("notes.txt");
    std::fs::write(&file, "hello").unwrap();
    let message = load_error(file.to_str().unwrap()).await;
    assert!(message.contains("not a WebAssembly component"), "{message}");
}

#[tokio::test]
async fn an_unknown_guest_name() {
    let message = load_error("nosuchguest").await;
    assert!(message.contains("no guest named nosuchguest"), "{message}");
}

/// A fresh directory under the target dir's temp area (removed with the target dir).
fn tempdir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("load-errors-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
