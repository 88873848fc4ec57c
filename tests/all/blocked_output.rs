//! A stdout that nobody reads (a FIFO held open, a pager the user stopped scrolling) must not keep Ctrl+C or the
//! timeout from stopping the session: before, the guest's write blocked the session's thread in the kernel, one
//! SIGINT did nothing and `--timeout` never fired.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use wsrun_test_artifacts::TEST_MISBEHAVE;

use crate::servers::Server;
use crate::util::{within, wsrun};

/// A FIFO with a read end held open and never read, and its write end for wsrun's stdout.
struct Fifo {
    reader: File,
    writer: Option<File>,
    _dir: PathBuf,
}

impl Fifo {
    fn new(name: &str) -> Fifo {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fifo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
        let reader = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).unwrap();
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        Fifo { reader, writer: Some(writer), _dir: dir }
    }

    /// Bytes waiting in the FIFO.
    fn waiting(&self) -> usize {
        let mut waiting: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer.
        unsafe { libc::ioctl(self.reader.as_raw_fd(), libc::FIONREAD, &mut waiting) };
        waiting as usize
    }
}

/// Start the guest flooding stdout into a FIFO nobody reads, and wait until it is connected and the FIFO is full.
async fn blocked(host_args: &[&str], server: &Server, fifo: &mut Fifo) -> (tokio::process::Child, Instant) {
    let mut args = host_args.to_vec();
    args.extend([TEST_MISBEHAVE, &server.url, "connected-stdout-flood"]);
    let mut command = wsrun(&args);
    command.stdout(Stdio::from(fifo.writer.take().unwrap())).stdin(Stdio::null());
    let child = command.spawn().expect("spawn wsrun");
    let full = async {
        while server.requests().is_empty() || fifo.waiting() < 64 << 10 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    within(Duration::from_secs(20), "the guest filling the FIFO", full).await;
    (child, Instant::now())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_ctrl_c_stops_a_guest_blocked_on_stdout() {
    let server = Server::echo().await;
    let mut fifo = Fifo::new("ctrl-c");
    let (mut child, _) = blocked(&[], &server, &mut fifo).await;
    let pid = child.id().unwrap() as i32;
    let signalled = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let status = within(Duration::from_secs(5), "wsrun's exit after one SIGINT", child.wait()).await.unwrap();
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(took < Duration::from_secs(1), "one SIGINT took {took:?} to stop wsrun");
    assert_eq!(server.closes(1).await, vec![Some((1001, String::new()))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_timeout_stops_a_guest_blocked_on_stdout() {
    let server = Server::echo().await;
    let mut fifo = Fifo::new("timeout");
    let (mut child, connected) = blocked(&["--timeout", "1s"], &server, &mut fifo).await;
    let status = within(Duration::from_secs(5), "wsrun's exit at --timeout", child.wait()).await.unwrap();
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(
        connected.elapsed() < Duration::from_secs(2),
        "--timeout 1s took {:?} after connecting",
        connected.elapsed()
    );
    assert_eq!(server.closes(1).await.len(), 1);
}
