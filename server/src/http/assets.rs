//! Static assets, embedded in the binary so one file is the whole application.
//!
//! `make site` writes the front end to `target/site/`: `pkg/mudmap-<hash>.{js,wasm,css}` (content
//! hashed, so they are served `immutable` for a year) and the files from `public/` (short cache
//! with an ETag). Release builds embed that directory at compile time; debug builds read it from
//! disk, so a rebuilt front end shows without recompiling the server.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "../target/site/"]
#[allow_missing = true]
struct Site;

/// Cache policy of a served file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Content-hashed: never changes under this name.
    Immutable,
    /// Stable name: revalidate hourly, with an ETag.
    Revalidate,
}

/// The hashed front-end file names found at start.
#[derive(Debug, Clone)]
pub struct SiteAssets {
    /// wasm-bindgen's output name, e.g. `mudmap-3f2a9c1b`: `pkg/<name>.js` and `pkg/<name>_bg.wasm`.
    pub output_name: String,
    /// URL of the stylesheet, e.g. `/pkg/mudmap-77ab01c2.css`.
    pub stylesheet: String,
    /// False when the front end was not built into this binary (pages render but do not hydrate).
    pub complete: bool,
}

impl SiteAssets {
    /// Find the hashed files among the embedded ones.
    pub fn discover() -> Self {
        let mut output_name = None;
        let mut stylesheet = None;
        let mut wasm = false;
        for path in Site::iter() {
            let Some(name) = path.strip_prefix("pkg/") else {
                continue;
            };
            if let Some(stem) = name.strip_suffix(".js") {
                output_name = Some(stem.to_owned());
            } else if name.ends_with(".css") {
                stylesheet = Some(format!("/pkg/{name}"));
            } else if name.ends_with("_bg.wasm") {
                wasm = true;
            }
        }
        let complete = output_name.is_some() && stylesheet.is_some() && wasm;
        Self {
            output_name: output_name.unwrap_or_else(|| "mudmap".to_owned()),
            stylesheet: stylesheet.unwrap_or_else(|| "/pkg/mudmap.css".to_owned()),
            complete,
        }
    }
}

/// Serve an embedded file, or `None` when there is no such file.
pub fn serve(path: &str, caching: Caching, request: &HeaderMap) -> Option<Response> {
    let file = Site::get(path)?;
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..12]));
    let cache_control = match caching {
        Caching::Immutable => "public, max-age=31536000, immutable",
        Caching::Revalidate => "public, max-age=3600, must-revalidate",
    };
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(file.data.into_owned()));
        if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
            response.headers_mut().insert(header::CONTENT_TYPE, mime);
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    Some(response)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
