//! The http(s) URLs the HTTP client (http.rs) asks for: parsing, and the
//! resolution of a redirect's `Location` against the URL that sent it, as
//! RFC 3986 section 5.2 defines it (a naive join turns `../x` or `?q` into a
//! wrong request).

use std::fmt;

/// The parts of an http(s) URL a GET needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`; no fragment.
    pub path: String,
}

impl Url {
    /// An absolute http or https URL; `None` for anything else, and for
    /// credentials in the authority (refused rather than leaked).
    pub fn parse(url: &str) -> Option<Url> {
        let (https, rest) = match url.split_once("://")? {
            (s, r) if s.eq_ignore_ascii_case("http") => (false, r),
            (s, r) if s.eq_ignore_ascii_case("https") => (true, r),
            _ => return None,
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = authority_parts(authority, https)?;
        let (path, query) = split_query(path);
        let path = format!("{}{query}", remove_dot_segments(path));
        Some(Url {
            https,
            host,
            port,
            path: request_target(&path)?,
        })
    }

    /// The Host header's value.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Scheme, host and port: what credentials are bound to.
    pub fn origin(&self) -> (bool, String, u16) {
        (self.https, self.host.to_ascii_lowercase(), self.port)
    }

    fn default_port(&self) -> u16 {
        if self.https {
            443
        } else {
            80
        }
    }

    fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// Resolve a `Location` against this URL (RFC 3986 section 5.2.2): an
    /// absolute URL, `//host/path` (this scheme), `/path`, `?query`, or a
    /// relative path merged with this one's directory; dot segments are
    /// removed in every case. `None`: not an http(s) target.
    pub fn join(&self, reference: &str) -> Option<Url> {
        let reference = reference.split('#').next().unwrap_or_default();
        if has_scheme(reference) {
            return Url::parse(reference);
        }
        if let Some(rest) = reference.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme()));
        }
        let (base_path, base_query) = split_query(&self.path);
        let (path, query) = split_query(reference);
        let path = if path.is_empty() {
            // `?q` keeps the path; an empty reference keeps the query too.
            let query = if query.is_empty() { base_query } else { query };
            format!("{base_path}{query}")
        } else if path.starts_with('/') {
            format!("{}{query}", remove_dot_segments(path))
        } else {
            let dir = base_path.rsplit_once('/').map_or("", |(d, _)| d);
            format!("{}{query}", remove_dot_segments(&format!("{dir}/{path}")))
        };
        Some(Url {
            path: request_target(&path)?,
            ..self.clone()
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme(), self.host_header(), self.path)
    }
}

/// The path as it may go on the request line: spaces and non-ASCII bytes
/// (which servers do put in a `Location`) percent-encoded; control
/// characters refused, as they could split or corrupt the request.
fn request_target(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            0..=0x1f | 0x7f => return None,
            b' ' | 0x80..=0xff => out.push_str(&format!("%{b:02X}")),
            _ => out.push(char::from(b)),
        }
    }
    Some(out)
}

/// Host and port of an authority; IPv6 in brackets.
fn authority_parts(authority: &str, https: bool) -> Option<(String, u16)> {
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    let default = if https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        (h.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().ok()?),
            None => (authority.to_owned(), default),
        }
    };
    let ok = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
    (!host.is_empty() && host.chars().all(ok)).then_some((host, port))
}

/// `/a/b?q` -> (`/a/b`, `?q`); a leading `?` gives an empty path.
fn split_query(s: &str) -> (&str, &str) {
    match s.find('?') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// RFC 3986 section 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":".
fn has_scheme(s: &str) -> bool {
    let Some(colon) = s.find(':') else {
        return false;
    };
    let scheme = &s[..colon];
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// RFC 3986 section 5.2.4, on a path that starts with `/` (every path here
/// does once merged): `.` and `..` segments go, `..` never above the root.
fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." | ".." => {
                if *seg == ".." {
                    out.pop();
                }
                // A final dot segment leaves a directory: `/a/b/..` is `/a/`.
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8080/a/b.tar.gz?x=1").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 8080, "/a/b.tar.gz?x=1")
        );
        let u = Url::parse("https://example.net").unwrap();
        assert_eq!(
            (u.port, u.path.as_str(), u.host_header()),
            (443, "/", "example.net".to_string())
        );
        let u = Url::parse("http://[::1]:81/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.host_header()),
            ("::1", 81, "[::1]:81".to_string())
        );
        assert_eq!(u.to_string(), "http://[::1]:81/x");
        assert_eq!(Url::parse("http://h?q").unwrap().path, "/?q");
        for bad in [
            "ftp://x/y",
            "http://user:pw@x/y",
            "http://",
            "http://x:port/",
            "http://a b/",
        ] {
            assert!(Url::parse(bad).is_none(), "{bad}");
        }
    }

    /// RFC 3986 section 5.4's examples that apply to http (base
    /// `http://a/b/c/d;p?q`), and the forms a redirect uses.
    #[test]
    fn location_resolution_follows_rfc_3986() {
        let base = Url::parse("http://a/b/c/d;p?q").unwrap();
        let table = [
            // absolute
            ("https://x:8443/y?z#f", "https://x:8443/y?z"),
            ("HTTP://a/g", "http://a/g"),
            // scheme-relative
            ("//g", "http://g/"),
            ("//g:81/x/../y", "http://g:81/y"),
            // absolute path
            ("/g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            // relative path with dot segments
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("g?y", "http://a/b/c/g?y"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/../y", "http://a/b/c/y"),
            // query only, empty, fragment only
            ("?y", "http://a/b/c/d;p?y"),
            ("", "http://a/b/c/d;p?q"),
            ("#s", "http://a/b/c/d;p?q"),
        ];
        for (reference, want) in table {
            let got = base.join(reference).map(|u| u.to_string());
            assert_eq!(got.as_deref(), Some(want), "{reference:?}");
        }
        // The port and scheme of the base carry over to relative forms.
        let tls = Url::parse("https://h:8443/dir/file").unwrap();
        assert_eq!(
            tls.join("next").unwrap().to_string(),
            "https://h:8443/dir/next"
        );
        assert_eq!(tls.join("//o/p").unwrap().to_string(), "https://o/p");
        assert_eq!(base.join("a b/é").unwrap().path, "/b/c/a%20b/%C3%A9");
        for bad in ["ftp://x/y", "mailto:a@b", "//user@h/x", "x\ty", "/\u{7f}"] {
            assert!(base.join(bad).is_none(), "{bad}");
        }
    }
}
