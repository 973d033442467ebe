//! Makes sure `target/site/` exists before the server compiles: rust-embed resolves the asset
//! folder to its canonical path at compile time, and when the folder is missing it keeps the
//! `server/../target/site` spelling, which no served file path ever starts with — a debug server
//! built before the first `make site` would then answer 404 for every asset until rebuilt.

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let site = std::path::Path::new(&manifest).join("../target/site");
    if let Err(error) = std::fs::create_dir_all(&site) {
        println!(
            "cargo:warning=cannot create {}: {error}; build the front end before the server",
            site.display()
        );
    }
    println!("cargo:rerun-if-changed=build.rs");
}
