//! The web app's production build (`web/dist`, built by `make web`: Vite), embedded in the binary and
//! served by the API's router: each file at its path, and `index.html` for every other GET that is
//! not under `/api/` (the app's client-side routes: `/agreement/7`, `/history`, `/join/7`, …).
//! `backend/build.rs` refuses to compile without the build.

use axum::{
    http::{HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};

use super::error::ApiError;

/// Every file of `web/dist` (debug builds embed them too: the binary never reads the disk for them).
#[derive(rust_embed::Embed)]
#[folder = "../web/dist"]
struct Dist;

/// Files under `assets/` carry a hash of their content in their name (Vite): cached for good.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else (`index.html` above all) is checked with the service on every load.
const REVALIDATE: &str = "no-cache";

/// The router's fallback: a file of the build, the app's `index.html` for any other GET outside
/// `/api/`, or the API's JSON 404.
pub async fn serve(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let api = path == "/api" || path.starts_with("/api/");
    if api || !(method == Method::GET || method == Method::HEAD) {
        return ApiError::NotFound(format!("no such path: {path}")).into_response();
    }
    let name = path.trim_start_matches('/');
    match Dist::get(if name.is_empty() { "index.html" } else { name }) {
        Some(file) => {
            let cache = if name.starts_with("assets/") { IMMUTABLE } else { REVALIDATE };
            file_response(file, cache)
        }
        // A missing asset is a 404, never the app's page served as a script or a style.
        None if name.starts_with("assets/") => ApiError::NotFound(format!("no such file: {path}")).into_response(),
        None => match Dist::get("index.html") {
            Some(index) => file_response(index, REVALIDATE),
            None => ApiError::NotFound(format!("no such path: {path}")).into_response(),
        },
    }
}

fn file_response(file: rust_embed::EmbeddedFile, cache: &'static str) -> Response {
    let content_type =
        HeaderValue::from_str(file.metadata.mimetype()).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, HeaderValue::from_static(cache))],
        file.data,
    )
        .into_response()
}
