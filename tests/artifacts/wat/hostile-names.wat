;; A hand-made guest that traps in a function it named with what a terminal acts on (an OSC title, a screen clear,
;; a C1 CSI, a bidi override): wsrun prints a trap's backtrace, so it must print the name escaped.
;; Built into a component by tests/artifacts/build.rs (the `wat` crate); it exports only wasi:cli/run.
(component
  (core module $named
    (func (@name "\1b]0;pwned\07\1b[2J\c2\9b31m\e2\80\aeevil") (export "run") (result i32)
      unreachable)
  )
  (core instance $instance (instantiate $named))
  (func $run (result (result)) (canon lift (core func $instance "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.12" (instance $run-instance))
)
