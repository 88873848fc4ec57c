//! Builds the test guests and writes `artifacts.rs`, one path constant per component:
//! - Rust: the `test-*` crates and the `scenario` sample of `guest/`, through wsrun-guest-builder;
//! - hand-made components in WebAssembly text, `wat/*.wat`, for attacks no compiler would emit;
//! - Python and JavaScript: `guest/python` with componentize-py and `guest/js` with componentize-js, both installed
//!   by `scripts/setup.sh` (this build only runs them, and says so when they are missing).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const RUST_GUESTS: &[&str] = &[
    "test-spin",
    "test-stdin-block",
    "test-big-send",
    "test-misbehave",
    "test-unknown-import",
    "test-no-run",
    "test-sockets",
    "test-metrics",
    "scenario",
    // The example plugin host's Rust plugin (`host/examples/plugin-host`, tests/all/plugin_host.rs).
    "plugin-demo",
    "token-then-connect",
    // The bundled guests too, for the embedding tests, examples and benchmarks (the library bundles nothing).
    "echo",
    "client",
    "roundtrip",
];

/// Scripted guests: output name, and the module (Python) or file (JS) that is the guest.
const PYTHON_GUESTS: &[(&str, &str)] =
    &[("py-echo", "echo"), ("py-scenario", "scenario"), ("py-token", "token_then_connect")];
const JS_GUESTS: &[(&str, &str)] = &[("js-echo", "echo.js"), ("js-scenario", "scenario.js"), ("js-token", "token.js")];
const PYTHON_SOURCES: &[&str] = &["wsrun_session.py", "echo.py", "scenario.py", "token_then_connect.py"];
/// The example plugin host's Python plugin: its directory, module, WIT (the tool's package, wsrun's beside it) and
/// world.
const PYTHON_PLUGIN: (&str, &str, &str, &str) =
    ("host/examples/plugin-host/plugins/python", "plugin", "host/examples/plugin-host/wit", "acme:bot/plugin");
const JS_SOURCES: &[&str] = &["wsrun-session.js", "echo.js", "scenario.js", "token.js", "package-lock.json"];

/// Hand-written components: output name and the text file under `wat/`.
const WAT_GUESTS: &[(&str, &str)] = &[("multi-memory", "multi-memory.wat"), ("hostile-names", "hostile-names.wat")];

const WORLD: &str = "wsrun:ws/client";
const SETUP_HINT: &str = "run `bash scripts/setup.sh`";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let mut built: Vec<(String, PathBuf)> =
        RUST_GUESTS.iter().map(|name| name.to_string()).zip(wsrun_guest_builder::build(&root, RUST_GUESTS)).collect();

    for (name, file) in WAT_GUESTS {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("wat").join(file);
        wsrun_guest_builder::watch(&source);
        let binary = wat::parse_file(&source).unwrap_or_else(|e| fail(&format!("{}: {e}", source.display())));
        let output = out.join(format!("{name}.wasm"));
        std::fs::write(&output, binary).unwrap();
        built.push((name.to_string(), output));
    }

    let python_dir = root.join("guest/python");
    let js_dir = root.join("guest/js");
    for file in PYTHON_SOURCES {
        wsrun_guest_builder::watch(&python_dir.join(file));
    }
    for file in JS_SOURCES {
        wsrun_guest_builder::watch(&js_dir.join(file));
    }
    // Python and JavaScript take several seconds each: build the two languages side by side.
    let python = {
        let (root, out) = (root.clone(), out.clone());
        std::thread::spawn(move || {
            let wit = root.join("wit");
            let helper = root.join("guest/python");
            let mut built: Vec<_> = PYTHON_GUESTS
                .iter()
                .map(|(name, module)| {
                    (name.to_string(), componentize_py(&out, name, module, (&wit, WORLD), &[&helper]))
                })
                .collect();
            let (dir, module, plugin_wit, world) = PYTHON_PLUGIN;
            wsrun_guest_builder::watch(&root.join(dir).join(format!("{module}.py")));
            wsrun_guest_builder::watch(&root.join(plugin_wit).join("bot.wit"));
            let paths = [&root.join(dir), &helper];
            built.push((
                "py-plugin".to_owned(),
                componentize_py(&out, "py-plugin", module, (&root.join(plugin_wit), world), &paths),
            ));
            built
        })
    };
    let js: Vec<_> =
        JS_GUESTS.iter().map(|(name, file)| (name.to_string(), componentize_js(&root, &out, name, file))).collect();
    built.extend(python.join().expect("the Python build thread"));
    built.extend(js);

    let mut code = String::new();
    for (name, path) in &built {
        let constant = name.to_uppercase().replace('-', "_");
        writeln!(
            code,
            "/// The `{name}` guest component.\npub const {constant}: &str = {:?};",
            path.display().to_string()
        )
        .unwrap();
    }
    std::fs::write(out.join("artifacts.rs"), code).unwrap();
}

/// Build `module` (found in `paths`) against the world `world` of the WIT directory `wit`.
fn componentize_py(out: &Path, name: &str, module: &str, (wit, world): (&Path, &str), paths: &[&PathBuf]) -> PathBuf {
    let output = out.join(format!("{name}.wasm"));
    let mut command = Command::new("componentize-py");
    command.arg("-d").arg(wit).args(["-w", world, "componentize"]);
    for path in paths {
        command.arg("-p").arg(path);
    }
    command.arg(module).arg("-o").arg(&output).env("PYTHONDONTWRITEBYTECODE", "1");
    run(command, "componentize-py", name);
    output
}

fn componentize_js(root: &Path, out: &Path, name: &str, file: &str) -> PathBuf {
    let output = out.join(format!("{name}.wasm"));
    let dir = root.join("guest/js");
    let mut command = Command::new(dir.join("node_modules/.bin/componentize-js"));
    command
        .current_dir(&dir)
        .arg("--wit")
        .arg(root.join("wit"))
        // `fetch` stays: it is built on wasi:http, which the host links for every guest.
        .args(["-n", WORLD, "--disable", "fetch-event", "-o"])
        .arg(&output)
        .arg(file);
    run(command, "componentize-js", name);
    output
}

fn run(mut command: Command, tool: &str, name: &str) {
    let output = command.output().unwrap_or_else(|e| fail(&format!("cannot run {tool} ({e}): {SETUP_HINT}")));
    if !output.status.success() {
        eprintln!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        fail(&format!("{tool} failed to build the {name} guest; its messages are above"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    println!("cargo:warning={message}");
    std::process::exit(1)
}
