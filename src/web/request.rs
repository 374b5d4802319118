//! One request, start to end: which site it is for, what it may do, which
//! file it names, whether the client's copy is still good, and one line in
//! the access log.
//!
//! ```text
//!   lines end in CRLF, one Host? ──no──► 400 (and, after a lone LF, close)
//!   Host one of ours? ──no──► 404 "no site called …; this server serves …"
//!     │ /lab/…? ──► the stack's control endpoint (GET, POST), when given
//!     │ GET or HEAD? ──no──► 405, Allow: GET, HEAD
//!     │   /trace.json? ──► the demo's trace, or 404
//!     │   path clean? ──no──► 400 (`..`, `\`, NUL) or 404 (dot-files)
//!     │   a file of the site (never outside it)? ──no──► 404
//!     │   client's ETag / date still current? ──yes──► 304, no body
//!     ▼
//!   200 with the file (HEAD: the same headers, no body)
//! ```

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{Either, Full};
use hyper::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HOST, HeaderMap, HeaderValue,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION, SERVER, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode, Version};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::files::{self, BadPath, Lookup, StaticFile};
use super::heads::LineEnds;
use super::{TraceDocument, Website, pages};

/// Every response body: bytes in memory, or a large file streamed from disk.
pub(super) type Body = Either<Full<Bytes>, UnsyncBoxBody<Bytes, io::Error>>;

/// Where the demo's trace is published.
const TRACE_PATH: &str = "/trace.json";
/// Where the stack's control endpoint answers on the site's own origin.
const LAB_PREFIX: &str = "/lab";

/// A request under `/lab/` answered by the control endpoint, as if sent to
/// it directly: the path without the prefix, the same headers (so its
/// cross-site check sees the page's `Origin`).
async fn lab_response<B>(
    lab: &crate::control::Control,
    request: &Request<B>,
    rest: &str,
) -> Response<Body> {
    use http_body_util::BodyExt;
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_string(),
    };
    let mut forwarded =
        Request::builder()
            .method(request.method().clone())
            .uri(if path_and_query.is_empty() {
                "/".to_string()
            } else {
                path_and_query
            });
    for (name, value) in request.headers() {
        forwarded = forwarded.header(name, value);
    }
    let Ok(forwarded) = forwarded.body(()) else {
        return pages::bad_request("The path under /lab/ is not one the control endpoint takes.");
    };
    // Our own address as the control endpoint would see it: the page's
    // Origin is checked against the Host it used.
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    lab.route(&forwarded, local)
        .await
        .map(|body| Either::Right(body.map_err(|never| match never {}).boxed_unsync()))
}

/// What a path segment must escape to go back into a `Location` header.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

impl Website {
    /// Answer one request from `client`, and log it. `line_ends` is how the
    /// lines of its head ended (from [`super::heads`]).
    pub(super) async fn respond<B: hyper::body::Body>(
        &self,
        request: Request<B>,
        client: SocketAddr,
        line_ends: LineEnds,
    ) -> Response<Body> {
        let started = Instant::now();
        let mut response = if line_ends == LineEnds::BareLf {
            pages::bad_request(
                "Each line of a request must end with CR LF; this one has a lone LF, \
                 which servers and proxies read in different ways.",
            )
        } else {
            self.route(&request).await
        };
        let headers = response.headers_mut();
        // After a lone LF the request's framing is in doubt; after a body
        // (never read), the next bytes are not a request head. Either way,
        // the connection ends with this response.
        if line_ends == LineEnds::BareLf || !request.body().is_end_stream() {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        headers.insert(SERVER, HeaderValue::from_static("dnstrail"));
        // Types come from our table, never from the browser's guess at the
        // bytes (a .txt that looks like HTML stays text).
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        log_access(client, &request, &response, started.elapsed());
        response
    }

    async fn route<B>(&self, request: &Request<B>) -> Response<Body> {
        if request.headers().get_all(HOST).iter().nth(1).is_some() {
            // RFC 9112 §3.2: more than one Host line is a bad request.
            return pages::bad_request(
                "The request has more than one <code>Host</code> header, so it names \
                 no one site.",
            );
        }
        if let Some(refusal) = self.refuse_host(request) {
            return refusal;
        }
        if let Some(lab) = self.lab.get()
            && let Some(rest) = request
                .uri()
                .path()
                .strip_prefix(LAB_PREFIX)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            return lab_response(lab, request, rest).await;
        }
        let head = match *request.method() {
            Method::GET => false,
            Method::HEAD => true,
            ref other => return pages::method_not_allowed(other.as_str()),
        };
        let path = request.uri().path();
        if path == TRACE_PATH {
            return self.trace(path, head);
        }
        let key = match files::clean_path(path) {
            Ok(key) => key,
            Err(BadPath::Hidden) => return pages::not_found(path),
            Err(BadPath::Climbs) => {
                return pages::bad_request(
                    "The path climbs out of the site with <code>..</code>; \
                     nothing outside the site is served.",
                );
            }
            Err(BadPath::Malformed) => {
                return pages::bad_request(
                    "The path cannot name a file here (a backslash, a NUL byte, \
                     or an escape that is not UTF-8).",
                );
            }
        };
        match self.files.lookup(&key).await {
            Ok(Lookup::File(file)) => file_response(&file, request.headers(), head),
            Ok(Lookup::Directory) => to_directory(&key, request.uri().query()),
            Ok(Lookup::Missing) => pages::not_found(path),
            Ok(Lookup::Outside(real)) => {
                tracing::warn!(
                    target: "dnstrail::http",
                    "{path} leads outside the site (to {}): not served",
                    real.display()
                );
                pages::not_found(path)
            }
            Err(error) if error.kind() == io::ErrorKind::TimedOut => pages::unavailable(),
            Err(error) => {
                tracing::error!(target: "dnstrail::http", "reading {path}: {error}");
                pages::internal_error()
            }
        }
    }

    /// The answer to a request for some other site (or none), if it is one.
    fn refuse_host<B>(&self, request: &Request<B>) -> Option<Response<Body>> {
        if self.any_host {
            return None;
        }
        match requested_host(request) {
            Some(asked) if self.hosts.iter().any(|host| same_host(&asked, host)) => None,
            Some(asked) => Some(pages::unknown_host(&asked, &self.hosts)),
            // RFC 9112 §3.2: an HTTP/1.1 request without Host is malformed;
            // HTTP/1.0 predates Host, so it just names no site of ours.
            None if request.version() >= Version::HTTP_11 => Some(pages::bad_request(
                "An HTTP/1.1 request must say which site it is for, in a \
                 <code>Host</code> header.",
            )),
            None => Some(pages::unknown_host("", &self.hosts)),
        }
    }

    fn trace(&self, path: &str, head: bool) -> Response<Body> {
        let Some(published) = self.trace.as_ref().and_then(TraceDocument::published) else {
            return pages::not_found(path);
        };
        let mut response = Response::new(Either::Left(Full::new(if head {
            Bytes::new()
        } else {
            published.json.clone()
        })));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(published.json.len()));
        // The demo may publish a newer trace at any moment.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The site a request names: the authority of an absolute-form target
/// (`GET http://www.example.com/ HTTP/1.1`, which RFC 9112 §3.2.2 says wins),
/// else the Host header.
fn requested_host<B>(request: &Request<B>) -> Option<Cow<'_, str>> {
    if let Some(host) = request.uri().host() {
        return Some(Cow::Borrowed(host));
    }
    request
        .headers()
        .get(HOST)
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
}

/// `WWW.Example.com:8080` and `www.example.com.` are `www.example.com`.
fn same_host(asked: &str, served: &str) -> bool {
    let name = match asked.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => asked,
    };
    name.trim_end_matches('.').eq_ignore_ascii_case(served)
}

/// 200 with the file, or 304 when the client's copy is current.
fn file_response(file: &StaticFile, request: &HeaderMap, head: bool) -> Response<Body> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::new())));
    let headers = response.headers_mut();
    headers.insert(ETAG, file.etag.clone());
    headers.insert(LAST_MODIFIED, file.last_modified.clone());
    // Keep a copy, but ask before using it: the demo's pages change while
    // it runs, and the question costs a 304 without a body.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if is_not_modified(file, request) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    headers.insert(CONTENT_TYPE, file.content_type.clone());
    headers.insert(CONTENT_LENGTH, file.content_length.clone());
    if !head {
        *response.body_mut() = file.body();
    }
    response
}

/// RFC 9110 §13.1: `If-None-Match` decides when present (a list of tags, or
/// `*`, compared weakly); only without it does `If-Modified-Since` count.
fn is_not_modified(file: &StaticFile, request: &HeaderMap) -> bool {
    let mut tag_lists = request.get_all(IF_NONE_MATCH).iter().peekable();
    if tag_lists.peek().is_some() {
        let ours = weak(file.etag.as_bytes());
        return tag_lists
            .flat_map(|list| list.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .any(|tag| tag == b"*" || weak(tag) == ours);
    }
    request
        .get(IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| httpdate::parse_http_date(value).ok())
        .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
        .is_some_and(|since| file.modified_secs() <= since.as_secs())
}

/// An entity tag without its weakness marker (`W/"x"` is `"x"`).
fn weak(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

/// `/docs` is a directory: send the client to `/docs/`, built from the
/// cleaned path (so `//evil.example/` can never become the target).
fn to_directory(key: &str, query: Option<&str>) -> Response<Body> {
    let mut location = String::with_capacity(key.len() + 2);
    location.push('/');
    location.extend(utf8_percent_encode(key.trim_end_matches('/'), PATH_SEGMENT));
    location.push('/');
    if let Some(query) = query {
        location.push('?');
        location.push_str(query);
    }
    let mut response = pages::moved(&location);
    if let Ok(value) = HeaderValue::try_from(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// One line per request, on the `dnstrail::http` target: who asked for what,
/// of which site, and what they got.
fn log_access<B>(
    client: SocketAddr,
    request: &Request<B>,
    response: &Response<Body>,
    elapsed: Duration,
) {
    if !tracing::enabled!(target: "dnstrail::http", tracing::Level::INFO) {
        return;
    }
    let status = response.status();
    let bytes = if request.method() == Method::HEAD || status == StatusCode::NOT_MODIFIED {
        0
    } else {
        response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let host = requested_host(request).unwrap_or(Cow::Borrowed("-"));
    tracing::info!(
        target: "dnstrail::http",
        "{client} {method} {path} host={host} -> {status} {bytes} bytes in {elapsed:?}",
        method = request.method(),
        path = request.uri().path(),
        status = status.as_u16(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_match_without_port_case_or_final_dot() {
        let ours = "www.example.com";
        for asked in [
            "www.example.com",
            "WWW.Example.COM",
            "www.example.com:8080",
            "www.example.com.",
            "www.example.com.:80",
        ] {
            assert!(same_host(asked, ours), "{asked}");
        }
        for asked in [
            "example.com",
            "www.example.com.evil",
            "www.example.com:x",
            "",
        ] {
            assert!(!same_host(asked, ours), "{asked}");
        }
    }

    #[test]
    fn weak_tags_compare_equal_to_strong_ones() {
        assert_eq!(weak(b"W/\"a\""), b"\"a\"");
        assert_eq!(weak(b"\"a\""), b"\"a\"");
    }
}
