//! The compiled-guest cache: a second start does not compile; corrupt or foreign entries are rebuilt, never run;
//! `wsrun compile` output runs, and a tampered one is refused.

use std::path::{Path, PathBuf};

use wsrun_test_artifacts::TEST_MISBEHAVE;

use crate::servers::Server;
use crate::util::{run_with_input, Run};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The compiled guests under `dir` (not the compiled functions).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for engine in std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_name() != "functions") {
        for entry in std::fs::read_dir(engine.path()).unwrap().flatten() {
            found.push(entry.path());
        }
    }
    found
}

async fn exit_code_guest(cache: &[&str], server: &Server) -> Run {
    let mut args = vec!["--verbose"];
    args.extend(cache);
    args.extend([TEST_MISBEHAVE, server.url.as_str(), "exit-code"]);
    run_with_input(&args, b"").await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_second_start_is_a_cache_hit() {
    let server = Server::echo().await;
    let dir = fresh_dir("hit");
    let flag = ["--cache-dir", dir.to_str().unwrap()];
    let first = exit_code_guest(&flag, &server).await;
    assert_eq!(first.code(), Some(42), "{first:?}");
    assert!(
        first.stderr.contains("compiled cache miss") && first.stderr.contains("compiled cache stored"),
        "{first:?}"
    );
    let second = exit_code_guest(&flag, &server).await;
    assert_eq!(second.code(), Some(42), "{second:?}");
    assert!(second.stderr.contains("compiled cache hit"), "{second:?}");
    assert!(!second.stderr.contains("stored"), "it compiled again: {second:?}");
    assert_eq!(entries(&dir).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_compiled_again_takes_its_functions_from_the_cache() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::echo().await;
    let dir = fresh_dir("functions");
    let flag = ["--cache-dir", dir.to_str().unwrap()];
    // (hits, compiled) of the debug line.
    let counts = |run: &Run| -> (u64, u64) {
        let line = run.stderr.lines().find_map(|l| l.strip_prefix("wsrun: debug: compiled functions: "));
        let line = line.unwrap_or_else(|| panic!("no count of compiled functions: {run:?}"));
        let numbers: Vec<u64> = line.split(' ').filter_map(|word| word.parse().ok()).collect();
        (numbers[0], numbers[1])
    };
    let first = exit_code_guest(&flag, &server).await;
    assert_eq!(first.code(), Some(42), "{first:?}");
    // (Identical functions within the guest are compiled once and found for the others.)
    assert!(counts(&first).1 > 100, "{first:?}");
    // The compiled guest gone (as for a guest changed since), its functions are still there.
    std::fs::remove_file(entries(&dir).remove(0)).unwrap();
    let again = exit_code_guest(&flag, &server).await;
    assert_eq!(again.code(), Some(42), "{again:?}");
    // (A few, wasmtime's trampolines among them, are compiled every time.)
    let (hits, compiled) = counts(&again);
    assert!(hits > 100 && compiled * 4 < counts(&first).1, "{again:?}");
    // Private like the compiled guests: and not used at all when others may write them.
    let functions = dir.join("functions");
    assert_eq!(std::fs::metadata(&functions).unwrap().permissions().mode() & 0o777, 0o700);
    for entry in std::fs::read_dir(&functions).unwrap().flatten() {
        assert_eq!(entry.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{:?}", entry.path());
    }
    std::fs::set_permissions(&functions, std::fs::Permissions::from_mode(0o777)).unwrap();
    let refused = exit_code_guest(&flag, &server).await;
    assert!(refused.stderr.contains("not using the compiled cache in"), "{refused:?}");
    assert!(refused.stderr.contains("compiled cache") && !refused.stderr.contains("compiled cache hit"), "{refused:?}");
    assert_eq!(refused.code(), Some(42), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_entry_is_rebuilt_not_run() {
    let server = Server::echo().await;
    let dir = fresh_dir("corrupt");
    let flag = ["--cache-dir", dir.to_str().unwrap()];
    exit_code_guest(&flag, &server).await;
    let entry = entries(&dir).remove(0);
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&entry, &bytes).unwrap();

    let run = exit_code_guest(&flag, &server).await;
    assert_eq!(run.code(), Some(42), "{run:?}");
    assert!(run.stderr.contains("is unusable") && run.stderr.contains("corrupt"), "{run:?}");
    assert!(run.stderr.contains("compiled cache stored"), "{run:?}");
    let again = exit_code_guest(&flag, &server).await;
    assert!(again.stderr.contains("compiled cache hit"), "the rebuilt entry is used: {again:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_from_other_engine_settings_is_rebuilt() {
    let server = Server::echo().await;
    let dir = fresh_dir("foreign");
    let flag = ["--cache-dir", dir.to_str().unwrap()];
    // An entry made with fuel metering (other code) ...
    exit_code_guest(&["--cache-dir", dir.to_str().unwrap(), "--fuel", "1000000000"], &server).await;
    let fueled = entries(&dir).remove(0);
    // ... then the plain engine's entry ...
    exit_code_guest(&flag, &server).await;
    let plain = entries(&dir).into_iter().find(|e| *e != fueled).unwrap();
    // ... overwritten by the fuel one: its checksum is right, but wasmtime must refuse it.
    std::fs::copy(&fueled, &plain).unwrap();
    let run = exit_code_guest(&flag, &server).await;
    assert_eq!(run.code(), Some(42), "{run:?}");
    assert!(run.stderr.contains("is unusable"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_cache_writes_nothing() {
    let server = Server::echo().await;
    let home = fresh_dir("none");
    let mut command = crate::util::wsrun(&["--no-cache", TEST_MISBEHAVE, &server.url, "exit-code"]);
    command.env("XDG_CACHE_HOME", &home);
    let run = crate::util::run_command(command).await;
    assert_eq!(run.code(), Some(42), "{run:?}");
    assert!(std::fs::read_dir(&home).unwrap().next().is_none(), "something was cached");
}

#[tokio::test(flavor = "multi_thread")]
async fn precompiled_guests_run_and_tampered_ones_are_refused() {
    let server = Server::echo().await;
    let dir = fresh_dir("compile");
    let output = dir.join("misbehave.cwasm");
    let run = run_with_input(&["compile", TEST_MISBEHAVE, "-o", output.to_str().unwrap()], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let run = run_with_input(&["--allow-precompiled", output.to_str().unwrap(), &server.url, "exit-code"], b"").await;
    assert_eq!(run.code(), Some(42), "{run:?}");

    let mut bytes = std::fs::read(&output).unwrap();
    let last = bytes.len() - 100;
    bytes[last] ^= 1;
    std::fs::write(&output, &bytes).unwrap();
    let run = run_with_input(&["--allow-precompiled", output.to_str().unwrap(), &server.url, "exit-code"], b"").await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("unusable precompiled guest") && run.stderr.contains("corrupt"), "{run:?}");
}
