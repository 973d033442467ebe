//! Release builds embed `target/site/`; its file names change with every front-end build, which
//! cargo cannot see through `include_bytes!`, so the directory itself is watched. Debug builds read
//! the site from disk at run time and need no rebuild when it changes.

fn main() {
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rerun-if-changed=../target/site");
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
}
