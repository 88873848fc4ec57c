//! Test guest: a component that exports a function but not `wasi:cli/run`, so it does not fit the client world.

wit_bindgen::generate!({
    inline: "
        package wsrun:test-no-run;
        world library {
            export describe: func() -> string;
        }
    ",
    world: "wsrun:test-no-run/library",
});

struct Library;

impl Guest for Library {
    fn describe() -> String {
        "not a command".into()
    }
}

export!(Library);
