//! `wsrun wit [DIR]` and `wsrun new LANGUAGE NAME`: what a person needs to write a guest away from this
//! repository, taken from the binary itself, so the WIT always matches the host that will run the guest.
//!
//! Everything is embedded from its one source in the repository: the WIT from `wit/`, the starter projects from
//! `host/cli/templates/`, and the Python and JavaScript helpers from the bundled guests' own files
//! (`guest/python/wsrun_session.py`, `guest/js/wsrun-session.js`), so templates and test guests cannot drift apart.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::process::ExitCode;

/// The WIT package this binary hosts: every file of the repository's `wit/` (a test checks none is missing).
/// `deps/` is whole: `cli.wit` defines worlds that name filesystem and sockets, so the package needs them to parse.
const WIT: &[(&str, &str)] = &[
    ("world.wit", include_str!("../../../wit/world.wit")),
    ("websocket.wit", include_str!("../../../wit/websocket.wit")),
    ("metrics.wit", include_str!("../../../wit/metrics.wit")),
    ("deps/cli/cli.wit", include_str!("../../../wit/deps/cli/cli.wit")),
    ("deps/clocks/clocks.wit", include_str!("../../../wit/deps/clocks/clocks.wit")),
    ("deps/filesystem/filesystem.wit", include_str!("../../../wit/deps/filesystem/filesystem.wit")),
    ("deps/io/io.wit", include_str!("../../../wit/deps/io/io.wit")),
    ("deps/random/random.wit", include_str!("../../../wit/deps/random/random.wit")),
    ("deps/http/http.wit", include_str!("../../../wit/deps/http/http.wit")),
    ("deps/sockets/sockets.wit", include_str!("../../../wit/deps/sockets/sockets.wit")),
];

/// A starter project. In its files, `{{name}}` is the project's name, `{{crate}}` the same with `_` for `-`,
/// `{{build}}` the build command and `{{wasm}}` the component it makes.
struct Template {
    language: &'static str,
    title: &'static str,
    summary: &'static str,
    files: &'static [(&'static str, &'static str)],
    build: &'static str,
    wasm: &'static str,
}

const TEMPLATES: &[Template] = &[
    Template {
        language: "rust",
        title: "Rust",
        summary: "bindings by wit-bindgen 0.57; needs the wasm32-wasip2 target (rustup)",
        files: &[
            ("Cargo.toml", include_str!("../templates/rust/Cargo.toml.template")),
            ("src/main.rs", include_str!("../templates/rust/src/main.rs")),
            (".cargo/config.toml", include_str!("../templates/rust/cargo/config.toml")),
            // The SDK's own helpers, one source for both.
            ("src/http.rs", include_str!("../../../guest/sdk/src/http.rs")),
            ("src/describe.rs", include_str!("../../../guest/sdk/src/describe.rs")),
            ("src/escape.rs", include_str!("../../../guest/sdk/src/escape.rs")),
            ("src/defaults.rs", include_str!("../../../guest/sdk/src/defaults.rs")),
            ("src/metrics.rs", include_str!("../../../guest/sdk/src/metrics.rs")),
            ("README.md", include_str!("../templates/rust/README.md")),
            (".gitignore", include_str!("../templates/rust/gitignore")),
        ],
        build: "cargo build --release",
        wasm: "target/wasm32-wasip2/release/{{name}}.wasm",
    },
    Template {
        language: "python",
        title: "Python",
        summary: "built by componentize-py 0.25.1 (pip install componentize-py==0.25.1)",
        files: &[
            ("app.py", include_str!("../templates/python/app.py")),
            ("wsrun_session.py", include_str!("../../../guest/python/wsrun_session.py")),
            ("README.md", include_str!("../templates/python/README.md")),
            (".gitignore", include_str!("../templates/python/gitignore")),
        ],
        build: "componentize-py -d wit -w wsrun:ws/client componentize app -o {{name}}.wasm",
        wasm: "{{name}}.wasm",
    },
    Template {
        language: "javascript",
        title: "JavaScript",
        summary: "built by componentize-js 0.23.0 (npm, Node.js 20 or later)",
        files: &[
            ("app.js", include_str!("../templates/javascript/app.js")),
            ("wsrun-session.js", include_str!("../../../guest/js/wsrun-session.js")),
            ("package.json", include_str!("../templates/javascript/package.json")),
            ("README.md", include_str!("../templates/javascript/README.md")),
            (".gitignore", include_str!("../templates/javascript/gitignore")),
        ],
        build: "npm install && npm run build",
        wasm: "{{name}}.wasm",
    },
];

const WIT_USAGE: &str = "\
Usage: wsrun wit [--update] [DIR]

Write the WIT package this wsrun hosts (the client world, the websocket interface and the WASI 0.2 packages they
use) into DIR (default: ./wit), for generating a guest's bindings. DIR must be new or empty.

  --update   DIR is a project's wit/ from an earlier wsrun: rewrite the files wsrun writes (each replaced whole,
             never written through a link), leave any other file there alone (alias: --force)
";

const NEW_USAGE: &str = "\
Usage: wsrun new LANGUAGE NAME
       wsrun new --list

Create the directory NAME holding a starter guest in LANGUAGE (rust, python or javascript): it connects to its
URL, sends its arguments (or its stdin lines) as messages, prints the replies and closes. The project has its own
wit/ (as `wsrun wit` writes it), a README and one build command. NAME must not exist yet.
";

/// `wsrun wit [DIR]`. `Err` is a usage error (one line, exit 2).
pub fn wit(args: &[String]) -> Result<ExitCode, String> {
    let mut dir = None;
    let mut update = false;
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{WIT_USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            "--update" | "--force" => update = true,
            path if !path.starts_with('-') && dir.is_none() => dir = Some(Path::new(path)),
            _ => return Err("usage: wsrun wit [--update] [DIR]".to_owned()),
        }
    }
    let dir = dir.unwrap_or(Path::new("wit"));
    if update {
        let rewritten = update_wit(dir)?;
        println!(
            "Updated the WIT package {} in {}/: {rewritten} of {} files rewritten, the others already the same.",
            package(),
            dir.display(),
            WIT.len()
        );
    } else {
        write_wit(dir)?;
        println!("Wrote the WIT package {} to {}/ (world client).", package(), dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `wsrun new LANGUAGE NAME` and `wsrun new --list`. `Err` is a usage error (one line, exit 2).
pub fn new(args: &[String]) -> Result<ExitCode, String> {
    match args {
        [flag] if flag == "-l" || flag == "--list" => {
            for template in TEMPLATES {
                println!("{:<12}{}, {}", template.language, template.title, template.summary);
            }
            Ok(ExitCode::SUCCESS)
        }
        [flag] if flag == "-h" || flag == "--help" => {
            print!("{NEW_USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        [language, name] if !language.starts_with('-') && !name.starts_with('-') => create(language, Path::new(name)),
        _ => Err("usage: wsrun new LANGUAGE NAME (wsrun new --list shows the languages)".to_owned()),
    }
}

/// Make the project `dir` from the template for `language`, then say how to build and run it.
fn create(language: &str, dir: &Path) -> Result<ExitCode, String> {
    let template = TEMPLATES.iter().find(|t| t.language == language).ok_or_else(|| {
        let languages: Vec<_> = TEMPLATES.iter().map(|t| t.language).collect();
        format!("no template for {language:?}: the languages are {} (wsrun new --list)", languages.join(", "))
    })?;
    let name = dir.file_name().and_then(|name| name.to_str()).filter(|name| valid_name(name)).ok_or_else(|| {
        format!(
            "invalid name {:?}: use lowercase letters, digits, - and _, starting with a letter (it names the package \
             and the component)",
            dir.display().to_string()
        )
    })?;
    // create_dir, not create_dir_all: an existing NAME, even empty, is someone's, and is left as it is.
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let dir = dir.display();
            return Err(format!("{dir} already exists: wsrun new creates a new directory and overwrites nothing"));
        }
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let fill = |text: &str| {
        text.replace("{{build}}", template.build)
            .replace("{{wasm}}", template.wasm)
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
    };
    let written = write_wit(&dir.join("wit"))
        .and_then(|()| template.files.iter().try_for_each(|(path, text)| write_file(&dir.join(path), &fill(text))));
    if let Err(e) = written {
        // Only what this call created.
        let _ = fs::remove_dir_all(dir);
        return Err(e);
    }
    println!("Created {}/, a {} guest of the wsrun:ws/client world. Build and run it:", dir.display(), template.title);
    println!();
    println!("    cd {}", dir.display());
    println!("    {}", fill(template.build));
    println!("    wsrun {} ws://127.0.0.1:9000/ hello", fill(template.wasm));
    Ok(ExitCode::SUCCESS)
}

/// A name every toolchain takes for a package and a file: `[a-z][a-z0-9_-]*`.
fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Write the WIT package into `dir`, which must be new or empty.
fn write_wit(dir: &Path) -> Result<(), String> {
    let empty = match fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == ErrorKind::NotFound => true,
        Err(e) => return Err(format!("cannot write the WIT into {}: {e}", dir.display())),
    };
    if !empty {
        return Err(format!(
            "{} is not empty: wsrun wit writes only into a new or empty directory, and overwrites nothing",
            dir.display()
        ));
    }
    WIT.iter().try_for_each(|(path, text)| write_file(&dir.join(path), text))
}

/// Rewrite the files of [`WIT`] in `dir` that differ from this wsrun's (or are missing); how many were.
fn update_wit(dir: &Path) -> Result<usize, String> {
    let mut rewritten = 0;
    for (path, text) in WIT {
        let path = dir.join(path);
        if fs::read_to_string(&path).is_ok_and(|old| old == *text) {
            continue;
        }
        // A new file renamed over the old one: a link there is replaced, not followed.
        let fresh = path.with_extension("wit.new");
        let _ = fs::remove_file(&fresh);
        write_file(&fresh, text)?;
        fs::rename(&fresh, &path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
        rewritten += 1;
    }
    Ok(rewritten)
}

/// Write a new file (never over an existing one), with its directories.
fn write_file(path: &Path, text: &str) -> Result<(), String> {
    let written = path.parent().map_or(Ok(()), fs::create_dir_all).and_then(|()| {
        use std::io::Write;
        fs::OpenOptions::new().write(true).create_new(true).open(path)?.write_all(text.as_bytes())
    });
    written.map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `wsrun:ws@0.2.0`, from world.wit's `package` line.
fn package() -> &'static str {
    WIT[0].1.lines().find_map(|line| line.strip_prefix("package ")?.strip_suffix(';')).unwrap_or("wsrun:ws")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repository() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn files_under(root: &Path, dir: &Path, files: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(root, &path, files);
            } else {
                files.push(path.strip_prefix(root).unwrap().to_str().unwrap().to_owned());
            }
        }
    }

    #[test]
    fn the_embedded_wit_is_all_of_wit() {
        let wit = repository().join("wit");
        let mut on_disk = Vec::new();
        files_under(&wit, &wit, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<_> = WIT.iter().map(|(path, _)| path.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "add the new file of wit/ to WIT");
        assert_eq!(package(), "wsrun:ws@0.2.0");
    }

    #[test]
    fn the_javascript_template_pins_what_the_bundled_guests_use() {
        let bundled = fs::read_to_string(repository().join("guest/js/package.json")).unwrap();
        let template = TEMPLATES.iter().find(|t| t.language == "javascript").unwrap();
        let package = template.files.iter().find(|(path, _)| *path == "package.json").unwrap().1;
        for dependency in ["@bytecodealliance/componentize-js", "@bytecodealliance/preview2-shim"] {
            assert_eq!(requirement(package, dependency), requirement(&bundled, dependency), "{dependency}");
        }
        let version = requirement(package, "@bytecodealliance/componentize-js");
        assert!(template.summary.contains(&format!("componentize-js {version}")), "{}", template.summary);
    }

    /// The version requirement of `dependency` in a package.json's `"name": "requirement"` line.
    fn requirement(package: &str, dependency: &str) -> String {
        let key = format!("\"{dependency}\":");
        let value = package.lines().find_map(|line| line.trim().strip_prefix(&key)).expect(dependency);
        value.trim().trim_end_matches(',').trim_matches('"').to_owned()
    }

    #[test]
    fn every_placeholder_is_filled() {
        for template in TEMPLATES {
            for (path, text) in template.files {
                let rest = ["{{build}}", "{{wasm}}", "{{name}}", "{{crate}}"]
                    .iter()
                    .fold(text.to_string(), |rest, placeholder| rest.replace(placeholder, ""));
                assert!(!rest.contains("{{"), "{}/{path} has a placeholder that is never filled", template.language);
            }
            let readme = template.files.iter().find(|(path, _)| *path == "README.md").unwrap().1;
            assert!(readme.contains("{{build}}") && readme.contains("{{wasm}}"), "{}: README", template.language);
        }
    }

    #[test]
    fn names() {
        for good in ["demo", "my-guest", "guest_2"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "2x", "-x", "My", "a b", "a.b", "a{b}"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
