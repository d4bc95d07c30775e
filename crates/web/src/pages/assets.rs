//! The embedded assets (stylesheets, the page script, icons), each named
//! by a hash of its bytes (`/static/live.1a2b3c4d5e6f.js`), so a browser or
//! the service worker may keep a versioned URL forever: a new build of an
//! asset is a new URL. The hashes are computed once at startup from the
//! bytes compiled into the binary. The unversioned URLs (`/static/live.js`)
//! still answer, without caching, for pages rendered by an older build.
//!
//! `/sw.js` is the service worker (`assets/sw.js`) headed by this build's
//! version and the URLs of its shell; it changes whenever any asset does,
//! which is how a browser learns of an upgrade.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::extract::ApiPath;
use crate::routes::Routes;

/// One embedded file.
struct Asset {
    /// Its plain name (`live.js`).
    name: &'static str,
    content_type: &'static str,
    body: bytes::Bytes,
    /// Its versioned name (`live.1a2b3c4d5e6f.js`).
    versioned: String,
}

/// The embedded files of this build, with their versioned names.
pub struct Assets {
    files: Vec<Asset>,
    /// A hash of every file: this build of the assets.
    version: String,
    /// The service worker, headed by the version and the shell's URLs.
    service_worker: bytes::Bytes,
}

/// The files compiled in: name, content type, bytes.
const EMBEDDED: [(&str, &str, &[u8]); 7] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "receipt.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/receipt.css"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/live.js"),
    ),
    (
        "sw-push.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/sw-push.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/icon.svg"),
    ),
    (
        "icon-192.png",
        "image/png",
        include_bytes!("../../assets/icon-192.png"),
    ),
    (
        "icon-512.png",
        "image/png",
        include_bytes!("../../assets/icon-512.png"),
    ),
];

const SERVICE_WORKER: &str = include_str!("../../assets/sw.js");

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..6])
}

impl Assets {
    /// The assets compiled into this binary. `salt`, in tests only, is
    /// appended to the script as a comment: a stand-in for another build
    /// of the binary (another hash, another version).
    pub fn embedded(salt: Option<&str>) -> Assets {
        let files: Vec<Asset> = EMBEDDED
            .iter()
            .map(|&(name, content_type, body)| {
                let body = match salt {
                    Some(salt) if name == "live.js" => {
                        let mut salted = body.to_vec();
                        salted.extend_from_slice(format!("\n// build {salt}\n").as_bytes());
                        bytes::Bytes::from(salted)
                    }
                    _ => bytes::Bytes::from_static(body),
                };
                let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
                let versioned = format!("{stem}.{}.{extension}", short_hash(&body));
                Asset {
                    name,
                    content_type,
                    body,
                    versioned,
                }
            })
            .collect();
        let mut all = Sha256::new();
        all.update(SERVICE_WORKER.as_bytes());
        for file in &files {
            all.update(file.versioned.as_bytes());
        }
        let version = hex::encode(&all.finalize()[..6]);
        let shell: Vec<String> = files
            .iter()
            .filter(|file| !matches!(file.name, "receipt.css" | "sw-push.js"))
            .map(|file| format!("/static/{}", file.versioned))
            .collect();
        // Web Push's handlers (`assets/sw-push.js`) by their versioned URL:
        // a new build of them is a new service worker too.
        let push_handlers = files
            .iter()
            .find(|file| file.name == "sw-push.js")
            .map(|file| format!("/static/{}", file.versioned))
            .unwrap_or_else(|| "/static/sw-push.js".to_owned());
        let service_worker = format!(
            "// ordertrack service worker, build {version}.\nconst VERSION = {};\nconst SHELL = {};\nimportScripts({});\n{SERVICE_WORKER}",
            serde_json::Value::from(version.clone()),
            serde_json::Value::from(shell),
            serde_json::Value::from(push_handlers),
        );
        Assets {
            files,
            version,
            service_worker: bytes::Bytes::from(service_worker),
        }
    }

    /// The versioned URL of the embedded file `name` (its plain URL if
    /// there is none by that name).
    pub fn url(&self, name: &str) -> String {
        match self.files.iter().find(|file| file.name == name) {
            Some(file) => format!("/static/{}", file.versioned),
            None => format!("/static/{name}"),
        }
    }

    /// This build of the assets.
    pub fn version(&self) -> &str {
        &self.version
    }
}

tokio::task_local! {
    /// The assets of the server answering the current request, for the
    /// page frame's URLs (set by [`with_assets`]).
    static CURRENT: Arc<Assets>;
}

/// Runs a request with its server's assets at hand for the pages.
pub(crate) async fn with_assets(
    State(state): State<AppState>, request: axum::extract::Request, next: axum::middleware::Next,
) -> Response {
    CURRENT.scope(state.assets.clone(), next.run(request)).await
}

/// The versioned URL of `name` among the current server's assets.
pub fn asset_url(name: &str) -> String {
    CURRENT
        .try_with(|assets| assets.url(name))
        .unwrap_or_else(|_| format!("/static/{name}"))
}

/// `/static/{file}`, `/sw.js` and `/manifest.webmanifest`.
pub fn routes() -> Routes {
    Routes::new()
        .get("/static/{file}", file)
        .get("/sw.js", service_worker)
        .get("/manifest.webmanifest", manifest)
}

/// A file by its versioned name (kept a year: the name changes with the
/// bytes), or by its plain name (revalidated every time).
async fn file(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Response {
    let assets = &state.assets;
    let (file, immutable) = match assets.files.iter().find(|file| file.versioned == name) {
        Some(file) => (file, true),
        None => match assets.files.iter().find(|file| file.name == name) {
            Some(file) => (file, false),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        file.body.clone(),
    )
        .into_response()
}

/// The service worker, at the root so that it controls every page.
async fn service_worker(State(state): State<AppState>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        state.assets.service_worker.clone(),
    )
        .into_response()
}

/// The web app manifest: installable on a kitchen tablet, full screen.
async fn manifest(State(state): State<AppState>) -> Response {
    let assets = &state.assets;
    let body = serde_json::json!({
        "name": "ordertrack",
        "short_name": "ordertrack",
        "description": "Orders, kitchen display and tracking",
        "start_url": "/",
        "scope": "/",
        "display": "fullscreen",
        "display_override": ["fullscreen", "standalone"],
        "background_color": "#ffffff",
        "theme_color": "#1f6f5c",
        "icons": [
            { "src": assets.url("icon.svg"), "sizes": "any", "type": "image/svg+xml" },
            { "src": assets.url("icon-192.png"), "sizes": "192x192", "type": "image/png" },
            { "src": assets.url("icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any maskable" },
        ],
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/manifest+json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_names_follow_the_bytes() {
        let a = Assets::embedded(None);
        let b = Assets::embedded(Some("B"));
        assert_eq!(a.url("app.css"), b.url("app.css"), "unchanged file");
        assert_ne!(a.url("live.js"), b.url("live.js"), "changed file");
        assert_ne!(a.version(), b.version());
        assert!(a.url("live.js").starts_with("/static/live.") && a.url("live.js").ends_with(".js"));
        let worker = String::from_utf8(a.service_worker.to_vec()).expect("utf-8");
        assert!(worker.contains(&a.url("live.js")) && worker.contains(a.version()));
    }
}
