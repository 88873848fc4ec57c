//! Writing a guest away from this repository: `wsrun wit` writes the WIT the binary hosts, `wsrun new` makes a
//! project per language, and each project's one build command gives a component that runs. Every project is made
//! in a fresh directory outside the repository, as a user would.
//!
//! The tests that build (a cargo build for wasm32-wasip2, componentize-py, npm and componentize-js) are under
//! `scripting::`: they are slow and busy every core, so they run with the Python and JavaScript guests' tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{run_command, wsrun, Run};

/// The repository holding these tests: its `wit/` and helpers are what the binary embeds.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        // host/ links wit/ too (for packaging the library): the repository is where guest/ is as well.
        .find(|dir| dir.join("wit/world.wit").is_file() && dir.join("guest").is_dir())
        .expect("the repository's wit/")
        .to_path_buf()
}

/// A fresh directory outside the repository, removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("wsrun-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `wsrun ARGS` run in `dir`.
async fn wsrun_in(dir: &Path, args: &[&str]) -> Run {
    let mut command = wsrun(args);
    command.current_dir(dir);
    run_command(command).await
}

/// Every file under `dir`, as paths relative to it, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read a directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                files.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    files
}

/// `dir` holds exactly the repository's `wit/`, byte for byte.
fn assert_is_the_wit(dir: &Path) {
    let wit = repository().join("wit");
    assert_eq!(files_under(dir), files_under(&wit), "{}", dir.display());
    for file in files_under(&wit) {
        let (written, source) = (std::fs::read(dir.join(&file)).unwrap(), std::fs::read(wit.join(&file)).unwrap());
        assert!(written == source, "{} differs", file.display());
    }
}

fn assert_usage_error(run: &Run, needle: &str) {
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:?}");
    assert!(run.stderr.starts_with("wsrun: ") && run.stderr.contains(needle), "expected {needle:?} in {run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn new_lists_its_templates() {
    let dir = TempDir::new("new-list");
    let run = wsrun_in(dir.path(), &["new", "--list"]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let languages: Vec<&str> = run.stdout.lines().filter_map(|line| line.split_whitespace().next()).collect();
    assert_eq!(languages, ["rust", "python", "javascript"], "{run:?}");
    assert!(files_under(dir.path()).is_empty(), "--list wrote something");
}

#[tokio::test(flavor = "multi_thread")]
async fn new_writes_the_wit_and_the_helpers_of_the_bundled_guests() {
    let dir = TempDir::new("new-files");
    for (language, helper, bundled) in [
        ("python", "wsrun_session.py", "guest/python/wsrun_session.py"),
        ("javascript", "wsrun-session.js", "guest/js/wsrun-session.js"),
    ] {
        let run = wsrun_in(dir.path(), &["new", language, language]).await;
        assert_eq!(run.code(), Some(0), "{run:?}");
        let project = dir.path().join(language);
        assert_is_the_wit(&project.join("wit"));
        // One source: the helper of a new project is the bundled guests' own file.
        let written = std::fs::read_to_string(project.join(helper)).unwrap();
        let source = std::fs::read_to_string(repository().join(bundled)).unwrap();
        assert!(written == source, "{language}: {helper} differs from {bundled}");
    }
    let run = wsrun_in(dir.path(), &["new", "rust", "rusty"]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_is_the_wit(&dir.path().join("rusty/wit"));
    let main = std::fs::read_to_string(dir.path().join("rusty/src/main.rs")).unwrap();
    assert!(main.contains(r#"path: "wit""#), "the bindings come from the project's own wit/: {main}");
    for helper in ["http.rs", "describe.rs", "escape.rs", "defaults.rs"] {
        let written = std::fs::read_to_string(dir.path().join("rusty/src").join(helper)).unwrap();
        let source = std::fs::read_to_string(repository().join("guest/sdk/src").join(helper)).unwrap();
        assert!(written == source, "rust: src/{helper} differs from the SDK's");
    }
    for project in ["python", "javascript", "rusty"] {
        for file in files_under(&dir.path().join(project)) {
            let text = std::fs::read_to_string(dir.path().join(project).join(&file)).unwrap();
            let file = file.display();
            assert!(!text.contains("{{name}}") && !text.contains("{{crate}}"), "{project}/{file} keeps a placeholder");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_refuses_an_existing_name_and_an_unknown_language() {
    let dir = TempDir::new("new-refused");
    let existing = dir.path().join("demo");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("app.py"), "mine\n").unwrap();
    for language in ["rust", "python", "javascript"] {
        let run = wsrun_in(dir.path(), &["new", language, "demo"]).await;
        assert_usage_error(&run, "demo already exists");
        assert_eq!(files_under(&existing), [PathBuf::from("app.py")], "{language}: something was written");
        assert_eq!(std::fs::read_to_string(existing.join("app.py")).unwrap(), "mine\n");
    }
    // An empty directory is someone's too.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    assert_usage_error(&wsrun_in(dir.path(), &["new", "python", "empty"]).await, "empty already exists");

    let run = wsrun_in(dir.path(), &["new", "cobol", "fresh"]).await;
    assert_usage_error(&run, "rust, python, javascript");
    assert!(!dir.path().join("fresh").exists());
    assert_usage_error(&wsrun_in(dir.path(), &["new", "python"]).await, "usage: wsrun new");
    let run = wsrun_in(dir.path(), &["new", "python", "Bad Name"]).await;
    assert_usage_error(&run, "invalid name");
    assert!(!dir.path().join("Bad Name").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn wit_writes_the_package_into_a_new_or_empty_directory_only() {
    let dir = TempDir::new("wit");
    // The default: ./wit.
    let run = wsrun_in(dir.path(), &["wit"]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_is_the_wit(&dir.path().join("wit"));
    // Again: refused, nothing touched.
    std::fs::write(dir.path().join("wit/world.wit"), "mine\n").unwrap();
    let run = wsrun_in(dir.path(), &["wit"]).await;
    assert_usage_error(&run, "not empty");
    assert_eq!(std::fs::read_to_string(dir.path().join("wit/world.wit")).unwrap(), "mine\n");
    // --update: the files wsrun writes are rewritten (an edited one, a missing one, one that is a link, replaced and
    // not followed); a file of the project's own stays.
    let wit = dir.path().join("wit");
    std::fs::remove_file(wit.join("deps/http/http.wit")).unwrap();
    std::fs::write(wit.join("mine.wit"), "package me:mine;\n").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "untouched\n").unwrap();
    std::fs::remove_file(wit.join("websocket.wit")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), wit.join("websocket.wit")).unwrap();
    let run = wsrun_in(dir.path(), &["wit", "--update"]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains(": 3 of "), "three files rewritten: {run:?}");
    std::fs::remove_file(wit.join("mine.wit")).unwrap();
    assert_is_the_wit(&wit);
    assert_eq!(std::fs::read_to_string(dir.path().join("outside.txt")).unwrap(), "untouched\n");
    let run = wsrun_in(dir.path(), &["wit", "wit", "--force"]).await;
    assert!(run.code() == Some(0) && run.stdout.contains(": 0 of "), "nothing to rewrite: {run:?}");
    // An empty directory, and one that does not exist yet (with its parents).
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    for target in ["empty", "deep/er/wit"] {
        let run = wsrun_in(dir.path(), &["wit", target]).await;
        assert_eq!(run.code(), Some(0), "{target}: {run:?}");
        assert_is_the_wit(&dir.path().join(target));
    }
    // A file is not a directory.
    std::fs::write(dir.path().join("file"), "").unwrap();
    assert_eq!(wsrun_in(dir.path(), &["wit", "file"]).await.code(), Some(2));
}

/// The tests that build components (slow, every core busy).
mod scripting {
    use super::*;
    use crate::http_server::{HttpServer, Reply};
    use crate::servers::Server;
    use crate::util::{run_with_input_within, within};

    /// A build: `npm install` and a first cargo build of the Rust starter take a minute or two on these 2-core
    /// machines (packages come from the caches setup.sh filled); past this a build hangs.
    const BUILD_BOUND: Duration = Duration::from_secs(300);
    /// A run: the first start of a Python or JS component compiles 12-18 MB of wasm.
    const RUN_BOUND: Duration = Duration::from_secs(120);

    /// One of these tests at a time: each builds on every core, then compiles a component on every core, and the
    /// other scripting tests beside them measure how fast Ctrl+C is answered.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
        ONE_AT_A_TIME.lock().await
    }

    /// Run a build `command` with `sh` in `dir`, as a user would type it; it must succeed.
    async fn build(dir: &Path, command: &str, envs: &[(&str, &Path)]) {
        let mut sh = tokio::process::Command::new("sh");
        // A group of its own, killed whole if the build overruns or the test fails: `kill_on_drop` alone would
        // kill the shell and leave `npm` or `cargo` running.
        sh.arg("-c").arg(command).current_dir(dir).process_group(0).kill_on_drop(true);
        // Nothing from the cargo running these tests may leak into a nested build.
        const CARGO_VARIABLES: [&str; 7] = [
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC",
            "RUSTC_WRAPPER",
            "CARGO_MAKEFLAGS",
        ];
        for name in CARGO_VARIABLES {
            sh.env_remove(name);
        }
        // npm: the packages setup.sh installed for guest/js are in npm's cache; take them from there.
        sh.env("npm_config_prefer_offline", "true").env("npm_config_audit", "false").env("npm_config_fund", "false");
        for (name, value) in envs {
            sh.env(name, value);
        }
        let child = sh.spawn().expect("run sh");
        let group = KillGroup(child.id().expect("a running shell") as i32);
        let output = within(BUILD_BOUND, command, child.wait_with_output()).await.expect("wait for sh");
        std::mem::forget(group);
        assert!(
            output.status.success(),
            "`{command}` failed in {}: {}\n{}\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Kills a process group when dropped: a build that overran its bound, or whose test failed.
    struct KillGroup(i32);

    impl Drop for KillGroup {
        fn drop(&mut self) {
            // SAFETY: killpg(2) with a group this test made; no memory is involved.
            unsafe { libc::killpg(self.0, libc::SIGKILL) };
        }
    }

    /// `wsrun new LANGUAGE NAME` in `dir`; says the build command and returns the project directory.
    async fn new_project(dir: &Path, language: &str, name: &str, build_command: &str) -> PathBuf {
        let run = wsrun_in(dir, &["new", language, name]).await;
        assert_eq!(run.code(), Some(0), "{run:?}");
        assert!(run.stdout.contains(build_command), "the build command is shown: {run:?}");
        let project = dir.join(name);
        let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
        assert!(readme.contains(build_command), "the README gives the build command: {readme}");
        project
    }

    /// The starter against an echo server (its arguments, then stdin lines) and against a closed port.
    async fn the_starter_works(name: &str, wasm: &Path) {
        let wasm = wasm.to_str().unwrap();
        let server = Server::echo().await;
        let run = run_with_input_within(&[wasm, &server.url, "hello"], b"", RUN_BOUND).await;
        assert_eq!((run.code(), run.stdout.as_str()), (Some(0), "< hello\nConnection closed: 1000 (OK).\n"), "{run:?}");
        assert_eq!(run.stderr, "", "{run:?}");
        assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))]);

        let server = Server::echo().await;
        let run = run_with_input_within(&[wasm, &server.url], b"one\ntwo words\n", RUN_BOUND).await;
        let expected = "< one\n< two words\nConnection closed: 1000 (OK).\n";
        assert_eq!((run.code(), run.stdout.as_str()), (Some(0), expected), "{run:?}");

        // A port bound but not listening refuses connections, and stays ours until the end of the test.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let url = format!("ws://{}/", socket.local_addr().unwrap());
        let run = run_with_input_within(&[wasm, &url, "hello"], b"", RUN_BOUND).await;
        assert_eq!(run.code(), Some(1), "{run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "one line: {run:?}");
        let line = format!("wsrun: {name}: could not connect to {url}: ");
        assert!(run.stderr.starts_with(&line) && run.stderr.contains("refused"), "expected {line:?}: {run:?}");
        assert_eq!(run.stdout, "", "{run:?}");
        drop(socket);

        // The HTTP call first: a token POSTed for, then the WebSocket opened with it; without the grant, refused.
        let http = HttpServer::start(|_| Reply::Text("tok-42".into())).await;
        let server = Server::echo().await;
        let token_url = format!("{}/token", http.origin);
        let args = [wasm, &server.url, "--token-url", &token_url, "hello"];
        let run = run_with_input_within(&[&["--allow", &http.origin][..], &args].concat(), b"", RUN_BOUND).await;
        assert_eq!((run.code(), run.stdout.as_str()), (Some(0), "< hello\nConnection closed: 1000 (OK).\n"), "{run:?}");
        assert_eq!(server.requests()[0]["authorization"], "Bearer tok-42");
        assert_eq!(http.requests()[0].method, "POST");
        let run = run_with_input_within(&args, b"", RUN_BOUND).await;
        let line = format!("wsrun: {name}: {token_url}: ");
        assert!(run.code() == Some(1) && run.stderr.starts_with(&line), "expected {line:?}: {run:?}");
        assert_eq!(http.requests().len(), 1, "the denied request reached the server");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_new_rust_guest_builds_and_runs() {
        let _alone = one_at_a_time().await;
        let dir = TempDir::new("new-rust");
        let command = "cargo build --release";
        let project = new_project(dir.path(), "rust", "my-demo", command).await;
        let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
        assert!(readme.contains("target/wasm32-wasip2/release/my-demo.wasm"), "{readme}");
        // The same command, with a target directory that outlives the test so that later runs build only the
        // guest, not wit-bindgen again.
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("templates");
        build(&project, command, &[("CARGO_TARGET_DIR", &target)]).await;
        the_starter_works("my-demo", &target.join("wasm32-wasip2/release/my-demo.wasm")).await;

        // `cargo run -- URL ...` builds it and runs it under the wsrun on PATH (the project's cargo runner).
        let server = Server::echo().await;
        let wsrun_dir = Path::new(env!("CARGO_BIN_EXE_wsrun")).parent().unwrap();
        let path = format!("{}:{}", wsrun_dir.display(), std::env::var("PATH").unwrap_or_default());
        let output = tokio::process::Command::new("cargo")
            .args(["run", "--release", "--quiet", "--", &server.url, "via cargo run"])
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target)
            .env("PATH", path)
            .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"))
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("RUSTFLAGS")
            .kill_on_drop(true)
            .output();
        let output = within(BUILD_BOUND, "cargo run", output).await.expect("run cargo");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            stdout,
            "< via cargo run\nConnection closed: 1000 (OK).\n",
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_new_python_guest_builds_and_runs() {
        let _alone = one_at_a_time().await;
        let dir = TempDir::new("new-python");
        let command = "componentize-py -d wit -w wsrun:ws/client componentize app -o demo.wasm";
        let project = new_project(dir.path(), "python", "demo", command).await;
        build(&project, command, &[]).await;
        the_starter_works("demo", &project.join("demo.wasm")).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_new_javascript_guest_builds_and_runs() {
        let _alone = one_at_a_time().await;
        let dir = TempDir::new("new-javascript");
        let command = "npm install && npm run build";
        let project = new_project(dir.path(), "javascript", "demo", command).await;
        build(&project, command, &[]).await;
        the_starter_works("demo", &project.join("demo.wasm")).await;
    }

    /// `wsrun wit` output is all a toolchain needs: componentize-py builds a guest on it alone, with no helper.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_wit_alone_builds_a_python_guest() {
        let _alone = one_at_a_time().await;
        let dir = TempDir::new("wit-python");
        let run = wsrun_in(dir.path(), &["wit"]).await;
        assert_eq!(run.code(), Some(0), "{run:?}");
        std::fs::write(
            dir.path().join("app.py"),
            r#"from wit_world import exports
from wit_world.imports import environment
from wit_world.imports.websocket import Compression, ConnectOptions, Connection, Message_Text


class Run(exports.Run):
    def run(self) -> None:
        url, text = environment.get_arguments()[1:3]
        conn = Connection.connect(url, ConnectOptions([], [], None, None, False, None, Compression.OFFER))
        conn.send(Message_Text(text))
        print(f"got {conn.receive().value}")
        conn.close(1000, "bye")
"#,
        )
        .unwrap();
        build(dir.path(), "componentize-py -d wit -w wsrun:ws/client componentize app -o app.wasm", &[]).await;
        let server = Server::echo().await;
        let wasm = dir.path().join("app.wasm");
        let run = run_with_input_within(&[wasm.to_str().unwrap(), &server.url, "ping"], b"", RUN_BOUND).await;
        assert_eq!((run.code(), run.stdout.as_str()), (Some(0), "got ping\n"), "{run:?}");
        assert_eq!(server.closes(1).await, vec![Some((1000, "bye".to_owned()))]);
    }
}
