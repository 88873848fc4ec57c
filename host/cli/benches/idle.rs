//! How many idle sessions one machine holds: SESSIONS sessions of a guest (the bundled `echo` by default), each with
//! one open connection, against the demo echo server, all connected, then Ctrl+C. Printed, not asserted.
//!
//! ```text
//! cargo build --release -p wsrun-echo-server    # the server this starts, beside the wsrun binary
//! cargo bench -p wsrun-cli --bench idle [-- SESSIONS [GUEST [GUEST ARGS...]]]    # default: 100000 echo
//! ```
//! One process holds as many sessions as its open-file hard limit allows (a socket each, plus 512), and so does each
//! server: past that, the run is split into shards (`--shard k/COUNT`), each a wsrun process with a server of its
//! own on a port of its own (reached through `--spread`, one URL per shard, and from a local address of its own with
//! `--local-address`, as a user would). `WSRUN_BENCH_PER_PROCESS` sets the sessions per process,
//! `WSRUN_BENCH_RAMP_UP` their `--ramp-up` (default 50s). It stops when `vm.max_map_count` is too low for a
//! process's sessions, and warns when the machine's local port range is smaller than the run's connections (connects
//! then slow down, some past the 60 s open timeout: BENCHMARKS.md, "100,000 idle sessions on one machine"). Printed: when all had connected (each shard's summary), PSS and RSS per session
//! once they are all connected and idle (read from `/proc/PID/smaps_rollup` of every wsrun process, and each
//! summary's own peak), memory mappings and descriptors per session, then the time from Ctrl+C (SIGINT to every
//! process at once) to the last exit, and how the servers saw the connections end.

// Only its machine figures are used here.
#[allow(dead_code)]
#[path = "shared/machine.rs"]
mod machine;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WSRUN: &str = env!("CARGO_BIN_EXE_wsrun");

/// Open files a wsrun process needs besides its sessions' sockets.
const SPARE_FILES: u64 = 512;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let sessions: u64 = args.first().map_or(100_000, |n| n.parse().expect("SESSIONS must be a number"));
    let guest: Vec<String> = match args.get(1..) {
        Some(guest) if !guest.is_empty() => guest.to_vec(),
        _ => vec!["echo".to_owned()],
    };
    let hard = open_files_hard_limit();
    let per_process = std::env::var("WSRUN_BENCH_PER_PROCESS")
        .ok()
        .map(|n| n.parse::<u64>().expect("WSRUN_BENCH_PER_PROCESS must be a number"))
        .unwrap_or_else(|| (hard.saturating_sub(SPARE_FILES) / 1000 * 1000).max(1000))
        .min(sessions);
    let shards = sessions.div_ceil(per_process);
    // All at once, 100,000 connects overflow the servers' accept queues (SYNs dropped, retried after 1, 3, 7 s...):
    // started over this long, as a user would.
    let ramp_up = std::env::var("WSRUN_BENCH_RAMP_UP").unwrap_or_else(|_| "50s".to_owned());
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count").map_or(0, |m| m.trim().parse().unwrap_or(0));
    println!(
        "machine: {} cores, {} MiB; open files hard limit {hard}; vm.max_map_count {maps}",
        machine::cores(),
        machine::total_memory_mib()
    );
    println!(
        "{sessions} sessions of `{}` in {shards} process(es) of up to {per_process}, started over {ramp_up}",
        guest.join(" ")
    );
    if maps < 6 * per_process + 2000 {
        eprintln!("vm.max_map_count is too low for {per_process} sessions per process: as root, `sysctl -w vm.max_map_count={}`", 6 * per_process + 65530);
        std::process::exit(2);
    }

    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let ports = match range.split_whitespace().map(|p| p.parse::<u64>()).collect::<Vec<_>>()[..] {
        [Ok(low), Ok(high)] => high.saturating_sub(low) + 1,
        _ => u64::MAX,
    };
    if ports < sessions {
        eprintln!(
            "warning: {sessions} connections and {ports} local ports (net.ipv4.ip_local_port_range): connects slow down past the range; as root, `sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"`"
        );
    }
    let server_program = Path::new(WSRUN).with_file_name("echo_server");
    assert!(
        server_program.exists(),
        "{} is missing: cargo build --release -p wsrun-echo-server",
        server_program.display()
    );
    let mut servers: Vec<(Child, String)> = (0..shards)
        .map(|_| {
            let mut child = Command::new(&server_program)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start echo_server");
            let mut url = String::new();
            BufReader::new(child.stdout.take().unwrap()).read_line(&mut url).expect("the server's URL");
            (child, url.trim().to_owned())
        })
        .collect();
    let urls: Vec<&str> = servers.iter().map(|(_, url)| url.as_str()).collect();

    // Shard k runs the sessions s with s % shards == k, and session s goes to URL s % shards (shard k to server k),
    // from each local address in turn ((s / shards) % shards).
    let started = Instant::now();
    let mut clients: Vec<Child> = (0..shards)
        .map(|k| {
            let mut command = Command::new(WSRUN);
            command.args(["--sessions", &sessions.to_string(), "--shard", &format!("{k}/{shards}")]);
            command.args(["--duration", "1h", "--close-timeout", "10s", "--ramp-up", &ramp_up]);
            for url in &urls[1..] {
                command.args(["--spread", url]);
            }
            // And from a local address of its own, as a user past one address's ports would.
            for shard in 0..shards {
                command.args(["--local-address", &format!("127.0.{}.{}", 1 + shard / 250, 2 + shard % 250)]);
            }
            command.arg(&guest[0]).arg(urls[0]).args(&guest[1..]);
            command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
            command.spawn().expect("start wsrun")
        })
        .collect();

    // Connected: every session's socket open (wsrun opens no other socket).
    let connected_by = Duration::from_secs(300);
    let mut connected: u64;
    loop {
        connected = clients.iter().map(|c| open_sockets(c.id())).sum();
        if connected >= sessions || started.elapsed() > connected_by {
            println!("sockets open: {connected} after {:.1} s (polled each second)", started.elapsed().as_secs_f64());
            break;
        }
        if clients.iter_mut().any(|c| c.try_wait().ok().flatten().is_some()) {
            println!("a wsrun process ended early");
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // Idle: the heap is given back its free pages once a second passes without a session starting or ending.
    std::thread::sleep(Duration::from_secs(5));
    let (mut pss, mut rss, mut mappings, mut files) = (0u64, 0u64, 0u64, 0u64);
    for client in &clients {
        let (p, r) = rollup(client.id());
        println!("  wsrun pid {}: PSS {:.1} MiB, RSS {:.1} MiB", client.id(), p as f64 / 1024.0, r as f64 / 1024.0);
        pss += p;
        rss += r;
        mappings +=
            std::fs::read_to_string(format!("/proc/{}/maps", client.id())).map_or(0, |m| m.lines().count() as u64);
        files += open_files(client.id());
    }
    // Per connected session: failed ones hold nothing.
    let per = |kib: u64| kib as f64 / connected.max(1) as f64;
    println!(
        "idle, all connected: PSS {:.2} GiB in all, {:.1} KiB per session; RSS {:.2} GiB, {:.1} KiB per session",
        pss as f64 / (1 << 20) as f64,
        per(pss),
        rss as f64 / (1 << 20) as f64,
        per(rss)
    );
    println!(
        "  {:.2} memory mappings and {:.2} descriptors per session",
        mappings as f64 / sessions as f64,
        files as f64 / sessions as f64
    );

    let interrupted = Instant::now();
    for client in &clients {
        // SAFETY: kill(2) with a child's pid, which is ours until we wait for it.
        unsafe { libc::kill(client.id() as libc::pid_t, libc::SIGINT) };
    }
    let mut summaries = Vec::new();
    let mut last_exit = Duration::ZERO;
    for client in &mut clients {
        let mut stdout = String::new();
        client.stdout.take().unwrap().read_to_string(&mut stdout).expect("wsrun's summary");
        let status = client.wait().expect("wait for wsrun");
        last_exit = last_exit.max(interrupted.elapsed());
        let mut stderr = String::new();
        client.stderr.take().unwrap().read_to_string(&mut stderr).ok();
        summaries.push((status, stdout, stderr));
    }
    println!("Ctrl+C to the last exit: {:.2} s", last_exit.as_secs_f64());
    for (k, (status, stdout, stderr)) in summaries.iter().enumerate() {
        println!("shard {k}/{shards}: {status}");
        // The summary's lines a user reads here, and the failure reasons under `failures`.
        for line in stdout.lines().filter(|l| {
            l.starts_with("    ")
                || ["outcomes", "connect ", "sessions", "memory", "failures"]
                    .iter()
                    .any(|w| l.trim_start().starts_with(w))
        }) {
            println!("  {}", line.trim_start());
        }
        for line in stderr.lines().filter(|l| l.starts_with("wsrun:") && !l.starts_with("wsrun: progress")).take(5) {
            println!("  {line}");
        }
    }
    for (server, _) in &mut servers {
        // Its tally once it has seen every connection end (it may be behind the clients), or after 60 s.
        let waiting = Instant::now();
        while open_sockets(server.id()) > 1 && waiting.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: as above.
        unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGINT) };
        let mut said = String::new();
        server.stderr.take().unwrap().read_to_string(&mut said).ok();
        server.wait().ok();
        for line in said.lines().filter(|l| l.contains("closed with")) {
            println!("server: {}", line.trim_start_matches("echo_server: "));
        }
    }
}

fn open_files_hard_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    limit.rlim_max
}

fn open_sockets(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    let socket =
        |e: &std::fs::DirEntry| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"));
    dir.flatten().filter(socket).count() as u64
}

fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// PSS and RSS, KiB.
fn rollup(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let kib = |field| machine::field_in(&text, field).max(0) as u64;
    (kib("Pss:"), kib("Rss:"))
}
