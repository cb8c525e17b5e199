//! Nothing to use: this crate only turns on, for the host, the features the rest of the
//! workspace turns on in the same dependencies (see its `Cargo.toml`).
