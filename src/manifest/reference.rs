//! Image references as registries name them: `[HOST[:PORT]/]REPO[:TAG][@sha256:HEX]`,
//! e.g. `ghcr.io/org/web:1.4` or `alpine` (Docker Hub's `library/alpine:latest`).
//! Pure text rules, shared by manifest validation (`images.NAME.ref`) and
//! the registry client (host/store/registry.rs), so both refuse the same
//! names with the same words.

use std::fmt;

/// The longest reference accepted (the distribution spec caps a repository
/// name at 255 characters; a tag adds at most 128, a digest 71).
pub const MAX_REFERENCE: usize = 512;
/// Docker Hub's name in references, and the host its API answers on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written (`docker.io` when none was).
    pub registry: String,
    /// The repository path, e.g. `org/web` (`library/alpine` on Docker Hub).
    pub repository: String,
    /// The tag, when one was written.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`, when one was written.
    pub digest: Option<String>,
}

impl Reference {
    /// Parse `text`; `Err` says what is wrong, for "... is not an image reference: ...".
    pub fn parse(text: &str) -> Result<Reference, String> {
        if text.is_empty() || text.len() > MAX_REFERENCE {
            return Err(format!("empty, or longer than {MAX_REFERENCE} characters"));
        }
        if text.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err("a reference has no spaces or control characters".into());
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => (r, Some(parse_digest(d)?)),
            None => (text, None),
        };
        // The first component is a registry host when it looks like one.
        let (registry, path) = match rest.split_once('/') {
            Some((first, p))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), p)
            }
            _ => (DOCKER_HUB.to_owned(), rest),
        };
        check_host(&registry)?;
        // A tag is after the last `:` of the last path component.
        let last = path.rsplit('/').next().unwrap_or_default();
        let (path, tag) = match last.rsplit_once(':') {
            Some((_, t)) => (&path[..path.len() - t.len() - 1], Some(t.to_owned())),
            None => (path, None),
        };
        if let Some(t) = &tag {
            let first_ok = t
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !first_ok
                || t.len() > 128
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            {
                return Err(format!(
                    "tag `{t}`: 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
                ));
            }
        }
        for comp in path.split('/') {
            let seps_ok = !comp.starts_with(['.', '_', '-']) && !comp.ends_with(['.', '_', '-']);
            let chars_ok = comp
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
            if comp.is_empty() || !seps_ok || !chars_ok {
                return Err(format!(
                    "repository `{path}`: components of lowercase letters and digits, separated by `/` and joined by `.`, `_` or `-`"
                ));
            }
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What goes after `/manifests/`: the digest, else the tag, else `latest`.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The host (and port) the registry's API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The same image by digest (for a pinned pull of a tagged reference).
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    /// The canonical text: registry always written, tag `latest` when none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match (&self.tag, &self.digest) {
            (Some(t), _) => write!(f, ":{t}")?,
            (None, None) => write!(f, ":latest")?,
            (None, Some(_)) => {}
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `sha256:<64 hex>`, lowercased; other algorithms are refused.
pub fn parse_digest(d: &str) -> Result<String, String> {
    match d.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
        }
        _ => Err(format!("digest `{d}`: expected sha256: and 64 hex digits")),
    }
}

fn check_host(h: &str) -> Result<(), String> {
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || h.starts_with('[') => (n, Some(p)),
        _ => (h, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("registry `{h}`: bad port `{p}`"));
        }
    }
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("registry `{h}` is not a host name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_registries_write_them() {
        let r = Reference::parse("ghcr.io/org/web:1.4").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("ghcr.io", "org/web", Some("1.4"))
        );
        assert_eq!(r.manifest_ref(), "1.4");
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let d = format!("sha256:{}", "A".repeat(64));
        let r = Reference::parse(&format!("127.0.0.1:5000/a/b@{d}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.manifest_ref(), format!("sha256:{}", "a".repeat(64)));
        let r = Reference::parse("localhost/x:y").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost", "x")
        );
    }

    #[test]
    fn bad_references_are_refused_with_the_rule() {
        for (text, want) in [
            ("", "empty"),
            ("Org/Web", "lowercase"),
            ("a//b", "components"),
            ("a:-x", "tag"),
            ("a@sha256:12", "64 hex"),
            ("a@md5:0011", "sha256"),
            ("host:99999/a", "bad port"),
            ("a b", "spaces"),
            ("a/.b", "components"),
        ] {
            let e = Reference::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
