//! The web app's production build (`web/dist`, built by `make web`: Vite), embedded in the binary and
//! served by the API's router: each file at its path, and `index.html` for every other GET that is
//! not under `/api/` and does not name a file (the app's client-side routes: `/agreement/7`,
//! `/history`, `/join/7`, …). A name with an extension that the build does not have (`/favicon.ico`,
//! `/assets/gone-1234abcd.js`) is a 404: never the app's page served as a script, a style or a
//! crawler's file. The build carries a brotli (`.br`) and a gzip (`.gz`) copy of each text file worth
//! compressing (web/vite.config.ts); a client that accepts one gets it as is, compressed once at build
//! time at the best ratio rather than on every request. `backend/build.rs` refuses to compile without
//! the build.

use axum::{
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
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
/// The precompressed copies a file of the build may have: the encoding and the copy's suffix, the
/// smallest first.
const PRECOMPRESSED: [(&str, &str); 2] = [("br", ".br"), ("gzip", ".gz")];

/// The router's fallback: a file of the build, the app's `index.html` for any other GET outside
/// `/api/` that names no file, or a JSON 404.
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let api = path == "/api" || path.starts_with("/api/");
    if api || !(method == Method::GET || method == Method::HEAD) {
        return ApiError::NotFound(format!("no such path: {path}")).into_response();
    }
    let name = path.trim_start_matches('/');
    let name = if name.is_empty() { "index.html" } else { name };
    let accepted = headers.get(header::ACCEPT_ENCODING).and_then(|value| value.to_str().ok()).unwrap_or("");
    match Dist::get(name) {
        Some(file) => {
            let cache = if name.starts_with("assets/") { IMMUTABLE } else { REVALIDATE };
            file_response(name, file, cache, accepted)
        }
        None if names_a_file(name) => ApiError::NotFound(format!("no such file: {path}")).into_response(),
        None => match Dist::get("index.html") {
            Some(index) => file_response("index.html", index, REVALIDATE, accepted),
            None => ApiError::NotFound(format!("no such path: {path}")).into_response(),
        },
    }
}

/// Whether a path the build does not have asks for a file rather than a page of the app: anything
/// under `assets/`, or a last segment with an extension (the app's routes have none).
fn names_a_file(name: &str) -> bool {
    name.starts_with("assets/") || name.rsplit('/').next().is_some_and(|last| last.contains('.'))
}

/// Whether an `Accept-Encoding` value accepts `coding` (by name, with a quality above zero; `*` is not
/// taken as a promise to decode brotli).
fn accepts(accepted: &str, coding: &str) -> bool {
    accepted.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let quality = parts
            .find_map(|param| param.trim().strip_prefix("q=").map(|q| q.trim().parse::<f32>().unwrap_or(0.0)))
            .unwrap_or(1.0);
        name.eq_ignore_ascii_case(coding) && quality > 0.0
    })
}

/// `file` (the build's `name`), or its precompressed copy in the first encoding the client accepts.
fn file_response(name: &str, file: rust_embed::EmbeddedFile, cache: &'static str, accepted: &str) -> Response {
    let content_type =
        HeaderValue::from_str(file.metadata.mimetype()).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::VARY, HeaderValue::from_static("accept-encoding")),
    ];
    for (encoding, suffix) in PRECOMPRESSED {
        if accepts(accepted, encoding)
            && let Some(copy) = Dist::get(&format!("{name}{suffix}"))
        {
            return (
                StatusCode::OK,
                headers,
                [(header::CONTENT_ENCODING, HeaderValue::from_static(encoding))],
                copy.data,
            )
                .into_response();
        }
    }
    (StatusCode::OK, headers, file.data).into_response()
}

#[cfg(test)]
mod tests {
    use super::{accepts, names_a_file};

    #[test]
    fn an_encoding_is_accepted_by_name_with_a_quality_above_zero() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("gzip;q=0.5, br;q=1.0", "gzip"));
        assert!(accepts("BR", "br"));
        assert!(!accepts("gzip, br;q=0", "br"));
        assert!(!accepts("identity", "gzip"));
        assert!(!accepts("*", "br"));
        assert!(!accepts("", "gzip"));
        assert!(!accepts("gzip;q=nonsense", "gzip"));
    }

    #[test]
    fn a_name_with_an_extension_or_under_assets_is_a_file_and_a_route_is_not() {
        for file in ["favicon.ico", "robots.txt", "assets/gone-1234abcd.js", "assets/x", "wp/login.php"] {
            assert!(names_a_file(file), "{file}");
        }
        for route in ["agreement/7", "join/7", "history", "provider", "audit"] {
            assert!(!names_a_file(route), "{route}");
        }
    }
}
