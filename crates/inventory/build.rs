//! Compiles the migrations in: every `migrations/NNNN_name.sql` file of the repository, in
//! order, becomes a line of `MIGRATIONS` (`store/migrations.rs`), so a new migration is a new
//! file and nothing else.

// A build script reports a broken migrations folder by failing the build.
#![allow(clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<(u32, String, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .unwrap_or_else(|| panic!("{}: not a UTF-8 name", path.display()))
                .to_owned();
            let number = name
                .split('_')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| {
                    panic!("{}: a migration is named NNNN_name.sql", path.display())
                });
            (number, name, path)
        })
        .collect();
    files.sort();
    let mut out = String::from("&[\n");
    for (number, name, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let path = path.canonicalize().unwrap_or_else(|_| path.clone());
        writeln!(
            out,
            "    ({number}, {name:?}, include_str!({:?})),",
            path.display()
        )
        .unwrap_or_default();
    }
    out.push(']');
    let target = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("migrations.rs");
    std::fs::write(&target, out)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", target.display()));
}
