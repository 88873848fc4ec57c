//! Builds wsrun's guest crates (the `guest/` workspace) for `wasm32-wasip2` from a cargo build script, and copies
//! the components into `OUT_DIR`.
//!
//! Two toolchain routes, tried in this order:
//! 1. rustup: the toolchain running this build has the `wasm32-wasip2` target (`rustup target add wasm32-wasip2`).
//! 2. Debian: `rustc-web`, `cargo-web`, `rust-web-src`, `lld-22` and `wasi-libc` are installed (see
//!    `scripts/setup.sh`); std is built from source with `-Zbuild-std`.
//!
//! Nothing is installed from here: when neither route is present the build stops with one line naming the command
//! that installs one. `WSRUN_GUEST_TOOLCHAIN=rustup|debian` forces a route.
#![deny(missing_docs)]

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";
const SETUP_HINT: &str = "run `bash scripts/setup.sh` (or, with rustup online, `rustup target add wasm32-wasip2`)";

/// A toolchain that can build wasm32-wasip2 components.
#[derive(Debug)]
enum Route {
    Rustup { cargo: PathBuf },
    Debian { cargo: PathBuf, rustc: PathBuf, wasm_ld: PathBuf, libc_dir: PathBuf },
}

/// Rebuild when `path` (a file or a directory tree) changes. The path is given to cargo relative to the package
/// being built: target directories are shared between clones of the repository (cargo hashes workspace members by
/// their place in the workspace, not on disk), and an absolute path would keep watching the clone that built first.
pub fn watch(path: &Path) {
    let manifest = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let relative = manifest.as_deref().and_then(|manifest| relative_to(manifest, path));
    println!("cargo:rerun-if-changed={}", relative.as_deref().unwrap_or(path).display());
}

/// `path` as seen from `base` (`../../wit`), both made absolute and free of `..` first.
fn relative_to(base: &Path, path: &Path) -> Option<PathBuf> {
    let (base, path) = (base.canonicalize().ok()?, path.canonicalize().ok()?);
    let common = base.components().zip(path.components()).take_while(|(a, b)| a == b).count();
    let mut relative: PathBuf = base.components().skip(common).map(|_| "..").collect();
    relative.extend(path.components().skip(common));
    Some(relative)
}

/// Build `packages` of the guest workspace at `root/guest` and copy each `<package>.wasm` into `OUT_DIR`.
/// Returns the copied files, in the order of `packages`. Exits the build script with one line on failure.
pub fn build(root: &Path, packages: &[&str]) -> Vec<PathBuf> {
    let guest = root.join("guest");
    for path in [root.join("wit"), guest.join("Cargo.toml"), guest.join("Cargo.lock"), guest.join("sdk")] {
        watch(&path);
    }
    for package in packages {
        watch(&guest.join(package));
    }
    println!("cargo:rerun-if-env-changed=WSRUN_GUEST_TOOLCHAIN");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_else(|| fail("OUT_DIR is not set")));
    let route = find_route().unwrap_or_else(|| fail(&format!("no {TARGET} toolchain found: {SETUP_HINT}")));
    let target_dir = guest_target_dir(&out_dir, &route);

    let mut command = route.command();
    command
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(guest.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .stdout(Stdio::null());
    for package in packages {
        command.arg("-p").arg(package);
    }
    let status = command.status().unwrap_or_else(|e| fail(&format!("cannot run cargo for the guests: {e}")));
    if !status.success() {
        fail(&format!("building the guests ({}) failed; cargo's messages are above", packages.join(", ")));
    }

    let built = target_dir.join(TARGET).join("release");
    packages
        .iter()
        .map(|package| {
            let from = built.join(format!("{}.wasm", package.replace('-', "_")));
            let to = out_dir.join(format!("{package}.wasm"));
            fs::copy(&from, &to).unwrap_or_else(|e| fail(&format!("cannot copy {}: {e}", from.display())));
            to
        })
        .collect()
}

impl Route {
    /// A cargo command for this route, with nothing inherited from the outer build that could point it at the
    /// host's toolchain or flags.
    fn command(&self) -> Command {
        let cargo = match self {
            Route::Rustup { cargo } | Route::Debian { cargo, .. } => cargo,
        };
        let mut command = Command::new(cargo);
        for (key, _) in env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            let keep = matches!(key, "CARGO_HOME" | "CARGO_NET_OFFLINE" | "CARGO_REGISTRIES_CRATES_IO_PROTOCOL")
                || key.starts_with("CARGO_HTTP_");
            let outer = (key.starts_with("CARGO_") && !keep)
                || key.starts_with("RUSTC")
                || key.starts_with("RUSTDOC")
                || matches!(key, "RUSTFLAGS" | "TARGET" | "HOST" | "OUT_DIR" | "PROFILE" | "OPT_LEVEL" | "DEBUG")
                || matches!(key, "NUM_JOBS" | "MAKEFLAGS" | "MFLAGS" | "CARGO");
            if outer {
                command.env_remove(key);
            }
        }
        if let Route::Debian { rustc, wasm_ld, libc_dir, .. } = self {
            let rustflags = format!(
                r#"target.{TARGET}.rustflags=["-Clink-arg=--wasm-ld-path={}","-Clink-self-contained=no","-Lnative={}"]"#,
                wasm_ld.display(),
                libc_dir.display()
            );
            command
                .env("RUSTC_BOOTSTRAP", "1")
                .arg("-Zbuild-std=std,panic_abort")
                .arg("--config")
                .arg(format!(r#"build.rustc="{}""#, rustc.display()))
                .arg("--config")
                .arg(rustflags);
        }
        command
    }

    fn name(&self) -> &'static str {
        match self {
            Route::Rustup { .. } => "rustup",
            Route::Debian { .. } => "debian",
        }
    }
}

fn find_route() -> Option<Route> {
    match env::var("WSRUN_GUEST_TOOLCHAIN").as_deref() {
        Ok("rustup") => rustup_route(),
        Ok("debian") => debian_route(),
        _ => rustup_route().or_else(debian_route),
    }
}

/// The toolchain running this build, when it has the wasm32-wasip2 standard library.
fn rustup_route() -> Option<Route> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc).args(["--print", "sysroot"]).output().ok()?;
    let sysroot = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    if !sysroot.join("lib/rustlib").join(TARGET).join("lib").is_dir() {
        return None;
    }
    let cargo = env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    Some(Route::Rustup { cargo })
}

/// Debian's Rust with std sources, lld's wasm-ld and wasi-libc.
fn debian_route() -> Option<Route> {
    let cargo = PathBuf::from("/usr/bin/cargo");
    let rustc = PathBuf::from("/usr/bin/rustc");
    let libc_dir = PathBuf::from("/usr/lib/wasm32-wasi");
    let std_sources = Path::new("/usr/lib/rustlib/src/rust/library");
    if !(cargo.is_file() && rustc.is_file() && std_sources.is_dir() && libc_dir.join("libc.a").is_file()) {
        return None;
    }
    let wasm_ld = newest_wasm_ld()?;
    Some(Route::Debian { cargo, rustc, wasm_ld, libc_dir })
}

/// `/usr/lib/llvm-N/bin/wasm-ld` with the largest N.
fn newest_wasm_ld() -> Option<PathBuf> {
    fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let version: u32 = name.strip_prefix("llvm-")?.parse().ok()?;
            let wasm_ld = Path::new("/usr/lib").join(&name).join("bin/wasm-ld");
            wasm_ld.is_file().then_some((version, wasm_ld))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, wasm_ld)| wasm_ld)
}

/// A target directory for the guests beside the outer build's (`<target>/wasm-guests/<route>`), so they are built
/// once for the host and the tests, and never inside `guest/` (whose changes trigger rebuilds).
fn guest_target_dir(out_dir: &Path, route: &Route) -> PathBuf {
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    let target = out_dir.ancestors().nth(4).unwrap_or(out_dir);
    target.join("wasm-guests").join(route.name())
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    println!("cargo:warning={message}");
    std::process::exit(1)
}
