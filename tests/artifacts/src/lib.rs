//! Paths of the test-only guest components, built from source by this crate's build script.
#![deny(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
