//! The pages a visitor sees when there is no page to serve. They are made
//! here, not read from the site, so that they work even when the site
//! directory is empty or broken; whatever came from the request (a path, a
//! host name) is HTML-escaped before it is shown.

use std::borrow::Cow;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use super::request::Body;

/// Nothing at `path` (as the request spelled it).
pub(super) fn not_found(path: &str) -> Response<Body> {
    page(
        StatusCode::NOT_FOUND,
        &format!(
            "There is no page at <code>{}</code> on this site.",
            escape(path)
        ),
    )
}

/// The request named a site this server does not serve. `asked` is the Host
/// header as sent (or empty), `served` every name served.
pub(super) fn unknown_host(asked: &str, served: &[String]) -> Response<Body> {
    let asked = if asked.is_empty() {
        "The request did not say which site it wants (it has no Host header)".to_string()
    } else {
        format!(
            "There is no site called <code>{}</code> here",
            escape(asked)
        )
    };
    page(
        StatusCode::NOT_FOUND,
        &format!(
            "{asked}. One address can serve many sites, and the <code>Host</code> header \
             picks one: this server serves {}.",
            list_names(served)
        ),
    )
}

/// `<code>a</code> only`, `<code>a</code> and <code>b</code>`,
/// `<code>a</code>, <code>b</code> and <code>c</code>`.
fn list_names(names: &[String]) -> String {
    let code: Vec<String> = names
        .iter()
        .map(|name| format!("<code>{}</code>", escape(name)))
        .collect();
    match code.as_slice() {
        [] => "no site at all".to_string(),
        [only] => format!("{only} only"),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A directory asked for without its trailing slash; the caller sets
/// `Location`.
pub(super) fn moved(location: &str) -> Response<Body> {
    page(
        StatusCode::MOVED_PERMANENTLY,
        &format!(
            "This is a directory; its page is at <a href=\"{0}\">{0}</a>.",
            escape(location)
        ),
    )
}

/// A request that cannot name anything (`why` is ours, not the client's).
pub(super) fn bad_request(why: &str) -> Response<Body> {
    page(StatusCode::BAD_REQUEST, why)
}

/// Anything but GET and HEAD: a static site has nothing to change.
pub(super) fn method_not_allowed(method: &str) -> Response<Body> {
    let mut response = page(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "<code>{}</code> is not something this site can do: it only serves \
             files, with <code>GET</code> and <code>HEAD</code>.",
            escape(method)
        ),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// The disk did not answer in time.
pub(super) fn unavailable() -> Response<Body> {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The server could not read the page in time. Try again in a moment.",
    )
}

/// Something broke on our side; the log says what.
pub(super) fn internal_error() -> Response<Body> {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server could not read the page. Its log says why.",
    )
}

fn page(status: StatusCode, message: &str) -> Response<Body> {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n\
         body {{ font: 17px/1.55 system-ui, -apple-system, \"Segoe UI\", sans-serif; \
         color: #1f2430; background: #f7f6f2; max-width: 38rem; margin: 5rem auto; \
         padding: 0 1.25rem; }}\n\
         h1 {{ font-size: 1.5rem; margin-bottom: .5rem; }}\n\
         code {{ font: .9em ui-monospace, Menlo, Consolas, monospace; background: #ebe8df; \
         padding: .1em .35em; border-radius: 4px; overflow-wrap: anywhere; }}\n\
         footer {{ margin-top: 2.5rem; color: #6b6f7a; font-size: .85rem; }}\n\
         </style>\n</head>\n<body>\n<h1>{title}</h1>\n<p>{message}</p>\n\
         <footer>dnstrail web server</footer>\n</body>\n</html>\n"
    );
    let len = html.len();
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(html))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `text` made safe to put in HTML text or a quoted attribute.
pub(super) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_listed_as_a_sentence_says_them() {
        let names =
            |list: &[&str]| list_names(&list.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(names(&["a"]), "<code>a</code> only");
        assert_eq!(names(&["a", "b"]), "<code>a</code> and <code>b</code>");
        assert_eq!(
            names(&["www.example.com", "blog.example.com", "example.com"]),
            "<code>www.example.com</code>, <code>blog.example.com</code> and \
             <code>example.com</code>"
        );
        assert_eq!(names(&["<x>"]), "<code>&lt;x&gt;</code> only");
    }

    #[test]
    fn escape_leaves_plain_text_alone() {
        assert!(matches!(escape("www.example.com"), Cow::Borrowed(_)));
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
