//! Before Wasmtime compiles (minutes on a small machine), the Rust targets `rust-toolchain.toml`
//! lists are made available, so that the first `cargo run -- up --build` on a machine whose
//! Rust was installed without them does not fail only once the host is built. The host's
//! build step checks again before each build (src/toolchain.rs).

use std::path::PathBuf;

#[allow(dead_code)]
#[path = "src/toolchain.rs"]
mod toolchain;

fn main() {
    let Some(root) =
        std::env::var_os("CARGO_MANIFEST_DIR").map(|dir| PathBuf::from(dir).join("../.."))
    else {
        return;
    };
    let file = root.join("rust-toolchain.toml");
    println!("cargo:rerun-if-changed={}", file.display());
    let Ok(text) = std::fs::read_to_string(&file) else {
        return;
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    for target in toolchain::toolchain_targets(&text) {
        if let Err(e) = toolchain::ensure(&rustc, &target, &root, |line| {
            println!("cargo:warning={line} (rust-toolchain.toml lists it)");
        }) {
            println!("cargo:warning={e}");
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
