//! Test guest: connects, says so on stdout, then spins forever without calling the host. Only epoch interruption
//! can stop it.

use wsrun_guest::{connect_to_url_arg, Guest, Stdout};

struct Spin;

impl Guest for Spin {
    fn run() -> Result<(), ()> {
        let _conn = connect_to_url_arg()?;
        let _ = Stdout::get().line("connected");
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }
}

wsrun_guest::export!(Spin);
