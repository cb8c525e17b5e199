//! `inventory-dev-token`: prints an access token the app accepts, for calling a local
//! deployment with curl (`TOKEN=$(cargo run --release -q -p inventory-dev-token -- --sub alice)`).

use clap::Parser;

fn main() {
    match inventory_dev_token::sign(&inventory_dev_token::TokenArgs::parse()) {
        Ok(token) => println!("{token}"),
        Err(err) => {
            eprintln!("Error: {err:#}");
            std::process::exit(1);
        }
    }
}
