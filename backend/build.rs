//! The backend embeds the web app's production build (`web/dist`, see `src/web.rs`): without it there
//! is nothing to serve, so the build stops here and says how to make it.

fn main() {
    println!("cargo:rerun-if-changed=../web/dist");
    // Read when the script runs, not when it was compiled: cargo may reuse one compiled script for
    // another checkout of the same sources (a git worktree), whose own web/dist is the one to check.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for build scripts");
    let index = std::path::Path::new(&manifest_dir).join("../web/dist/index.html");
    if !index.is_file() {
        eprintln!("web/dist is missing: run `make web` (npm ci and vite build in web/)");
        std::process::exit(1);
    }
}
