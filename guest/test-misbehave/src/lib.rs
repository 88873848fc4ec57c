//! Test guest: misbehaves in the way its second argument names, so the tests can check that the host contains
//! it. Modes: unreachable, out-of-bounds, stack-overflow, panic, memory-bomb, connections, idle, stdout-flood,
//! env, files (reach for what was not granted and say what happened), exit-code (exits with 42).

use std::hint::black_box;

use wsrun_guest::wasi::cli::exit;
use wsrun_guest::wasi::clocks::monotonic_clock;
use wsrun_guest::{args, connect_to_url_arg, describe, ConnectOptions, Connection, Guest, Stdout};

struct Misbehave;

impl Guest for Misbehave {
    fn run() -> Result<(), ()> {
        let args = args();
        match args.get(2).map(String::as_str) {
            Some("unreachable") => core::arch::wasm32::unreachable(),
            Some("out-of-bounds") => {
                // Far past the end of any linear memory this guest could have.
                let value = unsafe { core::ptr::read_volatile(black_box(0xffff_fff0_usize) as *const u64) };
                black_box(value);
                Ok(())
            }
            Some("stack-overflow") => {
                black_box(recurse(black_box(1)));
                Ok(())
            }
            Some("panic") => panic!("the guest gave up: {}", black_box("boom")),
            Some("memory-bomb") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 8 << 20]));
                }
            }
            Some("connections") => {
                let url = &args[1];
                let mut open = Vec::new();
                loop {
                    match Connection::connect(url, &ConnectOptions::default()) {
                        Ok(conn) => open.push(conn),
                        Err(e) => {
                            eprintln!("wsrun: connection {} refused: {}", open.len() + 1, describe(&e));
                            return Err(());
                        }
                    }
                }
            }
            Some("idle") => {
                let _conn = connect_to_url_arg()?;
                let _ = Stdout::get().line("connected");
                // Never reads: the server's messages pile up in the host, which must stop reading at its limits.
                monotonic_clock::subscribe_duration(3_600_000_000_000).block();
                Ok(())
            }
            Some("stdout-flood") => {
                let out = Stdout::get();
                let chunk = vec![b'x'; 1 << 20];
                // Stops quietly when stdout is gone, as `head` expects of a producer.
                while out.write_all(&chunk).is_ok() {}
                Ok(())
            }
            Some("env") => {
                let vars = wsrun_guest::wasi::cli::environment::get_environment();
                let _ = Stdout::get().line(&format!("env: {vars:?}"));
                Ok(())
            }
            Some("files") => {
                let _ = match std::fs::read_to_string("/etc/hostname") {
                    Ok(text) => Stdout::get().line(&format!("files: read {} bytes", text.len())),
                    Err(e) => Stdout::get().line(&format!("files: denied: {e}")),
                };
                Ok(())
            }
            Some("exit-code") => {
                exit::exit_with_code(42);
                Ok(())
            }
            other => {
                eprintln!("wsrun: test-misbehave: unknown mode {other:?}");
                Err(())
            }
        }
    }
}

#[allow(unconditional_recursion)] // Overflowing the stack is the point.
fn recurse(depth: u64) -> u64 {
    let mut frame = [depth; 64];
    black_box(&mut frame);
    recurse(black_box(depth + 1)) + frame[3]
}

wsrun_guest::export!(Misbehave);
