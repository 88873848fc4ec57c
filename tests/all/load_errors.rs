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
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "load-errors-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_directory() {
    let dir = tempdir();
    let message = load_error(dir.to_str().unwrap()).await;
    assert!(message.contains("cannot read guest"), "{message}");
}

#[tokio::test]
async fn a_core_module_instead_of_a_component() {
    let dir = tempdir();
    let file = dir.join("core.wasm");
    // The smallest core module: magic and version 1.
    std::fs::write(&file, b"\0asm\x01\0\0\0").unwrap();
    let message = load_error(file.to_str().unwrap()).await;
    assert!(message.contains("core WebAssembly module, not a component"), "{message}");
}

#[tokio::test]
async fn truncated_and_corrupt_components() {
    let dir = tempdir();
    let good = std::fs::read(wsrun_test_artifacts::TEST_SPIN).unwrap();
    let truncated = dir.join("truncated.wasm");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let message = load_error(truncated.to_str().unwrap()).await;
    assert!(message.contains("could not be compiled"), "{message}");

    let mut bytes = good.clone();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 64].fill(0xff);
    let corrupt = dir.join("corrupt.wasm");
    std::fs::write(&corrupt, &bytes).unwrap();
    let message = load_error(corrupt.to_str().unwrap()).await;
    assert!(message.contains("could not be compiled"), "{message}");
}

#[tokio::test]
async fn a_component_with_an_unknown_import() {
    let message = load_error(wsrun_test_artifacts::TEST_UNKNOWN_IMPORT).await;
    assert!(message.contains("does not fit the wsrun:ws/client world"), "{message}");
    assert!(message.contains("wsrun:test-unknown/gadget"), "the import is named: {message}");
}

#[tokio::test]
async fn a_component_without_the_run_export() {
    let message = load_error(wsrun_test_artifacts::TEST_NO_RUN).await;
    assert!(
        message.contains("does not fit the wsrun:ws/client world") && message.contains("wasi:cli/run"),
        "{message}"
    );
}
