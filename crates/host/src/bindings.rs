//! Host bindings for the Spin interfaces in `wit/`.

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-subset",
    imports: { default: trappable },
    with: {
        "fermyon:spin/sqlite.connection": crate::sqlite::Connection,
        "spin:sqlite/sqlite.connection": crate::sqlite::Connection,
        "fermyon:spin/key-value.store": crate::key_value::Store,
        "wasi:keyvalue/store.bucket": crate::key_value::Store,
        "wasi:keyvalue/atomics.cas": crate::key_value::Cas,
    },
});
