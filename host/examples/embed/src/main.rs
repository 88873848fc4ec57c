//! A plugin host in miniature, as a project outside this repository would write it: one runtime, one guest loaded
//! from a file, several sessions side by side with their own stdin and stdout, one of them cancelled.
//!
//! ```text
//! embed-example GUEST.wasm URL [SESSIONS]
//! ```
//! Each session gets `hello from session N` on stdin; what it printed is shown after its outcome. The last
//! session is cancelled as soon as it starts. Exits 1 unless every other session exited 0.

use std::process::ExitCode;

use wsrun::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wsrun::{Grant, Limits, Outcome, Runtime};

#[tokio::main]
async fn main() -> Result<ExitCode, wsrun::Error> {
    let mut args = std::env::args().skip(1);
    let (Some(guest), Some(url)) = (args.next(), args.next()) else {
        eprintln!("usage: embed-example GUEST.wasm URL [SESSIONS]");
        return Ok(ExitCode::from(2));
    };
    let sessions: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);

    let runtime = Runtime::builder().build()?;
    let program = runtime.load_file(guest.as_ref())?;
    let mut running = Vec::new();
    for index in 0..sessions {
        let output = MemoryOutputPipe::new(1 << 20);
        let session = program
            .session(url.clone())
            .grant(Grant::origin_of_url(&url))
            .limits(Limits { memory: 64 << 20, ..Limits::default() })
            .stdin(MemoryInputPipe::new(format!("hello from session {index}\n")))
            .stdout(output.clone());
        let cancel = session.cancel_handle();
        let last = index + 1 == sessions && sessions > 1;
        running.push((tokio::spawn(session.run()), output));
        if last {
            cancel.cancel();
        }
    }
    let mut failed = false;
    for (index, (session, output)) in running.into_iter().enumerate() {
        let outcome = session.await.expect("the session task panicked");
        let expected = if index + 1 == sessions && sessions > 1 { Outcome::Interrupted } else { Outcome::Exited(0) };
        failed |= outcome != expected;
        println!("session {index}: {outcome:?}");
        print!("{}", String::from_utf8_lossy(&output.contents()));
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
