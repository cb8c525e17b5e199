//! Empty: a package needs a build script for its `[build-dependencies]` to be built.
fn main() {}
