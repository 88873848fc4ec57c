//! Thousands of sessions need thousands of sockets: lift the soft limit on open files to the hard one, and say
//! before a run what the process's limits will not hold. (The examples and benchmarks include this file too.)

pub fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit calls with a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Open files a run needs beyond one socket per session: the runtime's own, stdio, the cache, a margin.
const BASE_FILES: u64 = 256;
/// Memory mappings a session of the pooling allocator adds (its fiber stack and guard, its memory and table slots
/// split into the part made accessible and the rest), and the process's own: measured with the `echo` guest, 12,072
/// lines of /proc/PID/maps at 2,000 sessions, 24,076 at 4,000 (2026-12-07).
const MAPPINGS_PER_SESSION: u64 = 6;
const BASE_MAPPINGS: u64 = 2_000;

/// What `sessions` sessions running at once, with one connection each, need that this process lacks: each a line
/// saying what to raise, for before the run starts (not at session 20,000).
#[allow(dead_code)]
pub fn shortfalls(sessions: u64) -> Vec<String> {
    let mut said = Vec::new();
    let files = sessions + BASE_FILES;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a plain getrlimit call with a valid struct.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if read && limit.rlim_cur != libc::RLIM_INFINITY && files > limit.rlim_cur {
        said.push(format!(
            "{sessions} sessions need about {files} open files (a socket each), and this process may open {} (the hard \
             limit, `ulimit -Hn`): raise it (as root, `ulimit -Hn {}`, or LimitNOFILE= in a systemd unit) or split the \
             run with --shard",
            limit.rlim_cur,
            files.next_power_of_two()
        ));
    }
    let mappings = sessions * MAPPINGS_PER_SESSION + BASE_MAPPINGS;
    let max_map_count =
        std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|t| t.trim().parse::<u64>().ok());
    if let Some(max) = max_map_count.filter(|max| mappings > *max) {
        said.push(format!(
            "{sessions} sessions need about {mappings} memory mappings, and vm.max_map_count is {max}: raise it (as root, \
             `sysctl -w vm.max_map_count={}`) or split the run with --shard",
            mappings.next_power_of_two()
        ));
    }
    said
}
