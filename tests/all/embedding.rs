//! The library as an embedder uses it: many sessions side by side in one process, each with its own stdio, grant
//! and limits, each stopped or failing alone.

use std::time::Duration;

use wsrun::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wsrun::{Limits, Outcome, Runtime};
use wsrun_test_artifacts::{TEST_MISBEHAVE, TEST_SPIN};

use crate::servers::Server;

#[tokio::test(flavor = "multi_thread")]
async fn sessions_fail_and_stop_alone() {
    let server = Server::echo().await;
    let runtime = Runtime::new().unwrap();
    let client = runtime.load_bundled("client").unwrap();
    let misbehave = runtime.load_file(TEST_MISBEHAVE.as_ref()).unwrap();
    let spin = runtime.load_file(TEST_SPIN.as_ref()).unwrap();

    let stdout = MemoryOutputPipe::new(1 << 20);
    let talking = client.session(&server.url).stdin(MemoryInputPipe::new("a\nb\n")).stdout(stdout.clone());
    let trapping = misbehave.session(&server.url).args(["unreachable"]);
    let small = Limits { memory: 16 << 20, ..Limits::default() };
    let hoarding = misbehave.session(&server.url).args(["memory-bomb"]).limits(small);
    let spinning = spin.session(&server.url);
    let cancel = spinning.cancel_handle();

    let talking = tokio::spawn(talking.run());
    let trapping = tokio::spawn(trapping.run());
    let hoarding = tokio::spawn(hoarding.run());
    let spinning = tokio::spawn(spinning.run());
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();

    let bound = Duration::from_secs(10);
    let (talking, trapping, hoarding, spinning) = tokio::time::timeout(bound, async {
        (talking.await.unwrap(), trapping.await.unwrap(), hoarding.await.unwrap(), spinning.await.unwrap())
    })
    .await
    .expect("a session did not end");
    assert_eq!(talking, Outcome::Exited(0));
    let output = String::from_utf8(stdout.contents().to_vec()).unwrap();
    assert!(output.contains("< a\n< b\nConnection closed: 1000 (OK).\n"), "{output}");
    assert!(matches!(&trapping, Outcome::Trapped(trap) if trap.contains("unreachable")), "{trapping:?}");
    assert!(matches!(&hoarding, Outcome::Trapped(trap) if trap.contains("memory limit")), "{hoarding:?}");
    assert_eq!(spinning, Outcome::Interrupted);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_timeout_is_its_own() {
    let server = Server::echo().await;
    let runtime = Runtime::new().unwrap();
    let spin = runtime.load_file(TEST_SPIN.as_ref()).unwrap();
    let short = Limits { timeout: Some(Duration::from_millis(200)), ..Limits::default() };
    let quick = tokio::spawn(spin.session(&server.url).limits(short).run());
    let long = spin.session(&server.url);
    let cancel_long = long.cancel_handle();
    let long = tokio::spawn(long.run());
    assert_eq!(quick.await.unwrap(), Outcome::TimedOut(Duration::from_millis(200)));
    assert!(!long.is_finished(), "the other session must still be running");
    cancel_long.cancel();
    assert_eq!(long.await.unwrap(), Outcome::Interrupted);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_many_sessions_example_runs() {
    // Examples are built beside the test binaries (target/<profile>/examples).
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().unwrap().parent().unwrap().join("examples/many_sessions");
    let output = tokio::process::Command::new(&example).args(["100", "10"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("90 finished, 10 cancelled, 0 otherwise"), "{stdout}");
    assert!(stdout.contains("10 closed early with 1001"), "{stdout}");
}
