//! The library as an embedder uses it: many sessions side by side in one process, each with its own stdio, grant
//! and limits, each stopped or failing alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use wsrun::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wsrun::{Limits, Outcome, Runtime};
use wsrun_test_artifacts::{TEST_MISBEHAVE, TEST_SPIN};

use crate::servers::{self, Server, Ws};
use crate::util::{within, BOUND};

#[tokio::test(flavor = "multi_thread")]
async fn sessions_fail_and_stop_alone() {
    let server = Server::echo().await;
    let runtime = Runtime::new().unwrap();
    let client = runtime.load_file(std::path::Path::new(wsrun_test_artifacts::CLIENT)).unwrap();
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
    // The other three end on their own, beside the spinning one; then it is cancelled, alone.
    let (talking, trapping, hoarding) = within(BOUND, "three sessions' ends", async {
        (talking.await.unwrap(), trapping.await.unwrap(), hoarding.await.unwrap())
    })
    .await;
    assert!(!spinning.is_finished(), "the spinning session ended on its own");
    cancel.cancel();
    let spinning = within(BOUND, "the cancelled session's end", spinning).await.unwrap();
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
    let idle = runtime.load_file(TEST_MISBEHAVE.as_ref()).unwrap();
    let short = Limits { timeout: Some(Duration::from_millis(200)), ..Limits::default() };
    let started = Instant::now();
    // Idle, not spinning: the time it takes is the timeout's, not that of a runtime kept busy by two spinning guests.
    let quick = tokio::spawn(idle.session(&server.url).args(["idle"]).limits(short).run());
    let long = spin.session(&server.url);
    let cancel_long = long.cancel_handle();
    let long = tokio::spawn(long.run());
    let quick = within(BOUND, "the session with a timeout", quick).await.unwrap();
    assert_eq!(quick, Outcome::TimedOut(Duration::from_millis(200)));
    // The outcome names the limit, not the time taken: the time is checked on its own.
    assert!(started.elapsed() >= Duration::from_millis(200), "timed out after {:?}", started.elapsed());
    assert!(!long.is_finished(), "the other session must still be running");
    cancel_long.cancel();
    assert_eq!(within(BOUND, "the cancelled session", long).await.unwrap(), Outcome::Interrupted);
}

/// A server that plays `rounds` rounds of echo with each connection (without end for `None`), then closes; and
/// how many connections have echoed a first round (their guest holds the connection).
async fn rounds_server(rounds: Option<usize>) -> (Server, Arc<AtomicUsize>) {
    let playing = Arc::new(AtomicUsize::new(0));
    let counter = playing.clone();
    let server = Server::start(move |mut ws: Ws| {
        let counter = counter.clone();
        async move {
            for round in 0..rounds.unwrap_or(usize::MAX) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                ws.send(Message::text(format!("round {round}"))).await.ok()?;
                match ws.next().await {
                    Some(Ok(Message::Text(_))) if round == 0 => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Ok(Message::Text(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        let frame =
                            frame.map_or((1005, String::new()), |f| (f.code.into(), f.reason.as_str().to_owned()));
                        while let Some(Ok(_)) = ws.next().await {}
                        return Some(frame);
                    }
                    _ => return None,
                }
            }
            ws.close(None).await.ok()?;
            servers::until_close(ws).await
        }
    })
    .await;
    (server, playing)
}

#[tokio::test(flavor = "multi_thread")]
async fn many_sessions_side_by_side_some_cancelled() {
    // What host/examples/many_sessions.rs shows, without depending on when the cancels land: the sessions to cancel
    // talk to a server that never ends its rounds, the others to one that closes after three.
    const SESSIONS: usize = 100;
    const CANCELLED: usize = 10;
    let (finite, _) = rounds_server(Some(3)).await;
    let (endless, playing) = rounds_server(None).await;
    let runtime = Runtime::new().unwrap();
    let echo = runtime.load_file(std::path::Path::new(wsrun_test_artifacts::ECHO)).unwrap();
    let mut cancels = Vec::new();
    let mut running = Vec::new();
    for index in 0..SESSIONS {
        let session = echo.session(if index < CANCELLED { &endless.url } else { &finite.url });
        if index < CANCELLED {
            cancels.push(session.cancel_handle());
        }
        running.push(tokio::spawn(session.run()));
    }
    // Cancel once each has echoed a round: its guest holds the connection (a session cancelled while it connects
    // drops the connection without a close frame, as it should, but that is not this test).
    let playing = async {
        while playing.load(Ordering::Relaxed) < CANCELLED {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    within(BOUND, "the sessions to cancel playing a round", playing).await;
    for cancel in &cancels {
        cancel.cancel();
    }
    let outcomes = within(BOUND, "every session's end", futures_util::future::join_all(running)).await;
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let expected = if index < CANCELLED { Outcome::Interrupted } else { Outcome::Exited(0) };
        assert_eq!(outcome.unwrap(), expected, "session {index}");
    }
    assert_eq!(endless.closes(CANCELLED).await, vec![Some((1001, String::new())); CANCELLED], "cancelled: 1001");
    let finished = finite.closes(SESSIONS - CANCELLED).await;
    assert_eq!(finished.len(), SESSIONS - CANCELLED, "every other session answered the server's close");
    assert!(finished.iter().all(Option::is_some), "a session left without answering the server's close");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_many_sessions_example_runs() {
    // Examples are built beside the test binaries (target/<profile>/examples).
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().unwrap().parent().unwrap().join("examples/many_sessions");
    let run = tokio::process::Command::new(&example).args(["100", "10"]).kill_on_drop(true).output();
    let output = within(Duration::from_secs(60), "the many_sessions example", run).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("90 finished, 10 cancelled, 0 otherwise"), "{stdout}");
    assert!(stdout.contains("10 closed early with 1001"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedding_example_runs() {
    // Built by scripts/test.sh from host/examples/embed, a tool that depends on the library alone (a workspace
    // member outside the default members), into this target directory.
    let example = std::path::Path::new(env!("CARGO_BIN_EXE_wsrun")).with_file_name("embed-example");
    assert!(
        example.is_file(),
        "{} is missing: cargo build --release -p wsrun-embed-example (scripts/test.sh builds it)",
        example.display()
    );
    let server = Server::echo().await;
    let run = tokio::process::Command::new(&example)
        .args([wsrun_test_artifacts::CLIENT, &server.url, "3"])
        .kill_on_drop(true)
        .output();
    let output = within(BOUND, "the embedding example", run).await.expect("run the embedding example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for index in 0..2 {
        assert!(stdout.contains(&format!("session {index}: Exited(0)")), "{stdout}");
        assert!(stdout.contains(&format!("< hello from session {index}")), "{stdout}");
    }
    assert!(stdout.contains("session 2: Interrupted"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_larger_than_the_pool_allows_does_not_load() {
    // The bundled echo guest holds 3 core instances; a pool that allows each session 2 refuses it when it loads,
    // naming the count, rather than at its first session.
    let small = wsrun::PoolLimits { core_instances: 2, ..wsrun::PoolLimits::default() };
    let runtime = Runtime::builder().pooling(4, 64 << 20).pool_limits(small).build().unwrap();
    let error = match runtime.load_file(std::path::Path::new(wsrun_test_artifacts::ECHO)) {
        Ok(_) => panic!("the echo guest loaded in a pool of 2 core instances per session"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("core module instances") && error.contains("pooling allocator"), "{error}");
    let runtime = Runtime::builder().pooling(4, 64 << 20).build().unwrap();
    runtime.load_file(std::path::Path::new(wsrun_test_artifacts::ECHO)).expect("the default pool");
}
