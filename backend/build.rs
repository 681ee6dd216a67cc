//! The backend embeds the web app's production build (`web/dist`, see `src/web.rs`): without it there
//! is nothing to serve, so the build stops here and says how to make it.

fn main() {
    println!("cargo:rerun-if-changed=../web/dist");
    let index = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist/index.html");
    if !index.is_file() {
        eprintln!("web/dist is missing: run `make web` (npm ci and vite build in web/)");
        std::process::exit(1);
    }
}
