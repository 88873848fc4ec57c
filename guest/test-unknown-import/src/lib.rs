//! Test guest: a component that imports an interface the host does not provide, so it must fail to link.

wit_bindgen::generate!({
    inline: "
        package wsrun:test-unknown;
        interface gadget {
            frob: func();
        }
        world needs-gadget {
            import gadget;
            export wasi:cli/run@0.2.12;
        }
    ",
    path: "../../wit",
    world: "wsrun:test-unknown/needs-gadget",
    generate_all,
});

struct NeedsGadget;

impl exports::wasi::cli::run::Guest for NeedsGadget {
    fn run() -> Result<(), ()> {
        wsrun::test_unknown::gadget::frob();
        Ok(())
    }
}

export!(NeedsGadget);
