//! The registry's documents, read as untrusted input: image indexes and
//! manifests (OCI and Docker v2.2), bearer token answers and the
//! `WWW-Authenticate` challenge. Every count and size is bounded and every
//! media type must be one berth knows; registry.rs fetches, this reads.
//! The fuzz target `registry` feeds bytes to [`parse_document`],
//! [`parse_token`] and [`parse_challenge`].

use serde_json::Value;

use super::platform::Platform;

/// Largest manifest or index read: real ones are a few KiB; Docker Hub's
/// own limit is 4 MiB.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest token answer read (a JWT with a long scope list is a few KiB).
pub const MAX_TOKEN_ANSWER: u64 = 64 << 10;
/// Longest token kept: it goes back in a header line of at most 8 KiB.
pub const MAX_TOKEN: usize = 7 << 10;
/// Entries of an index (a multi-arch image lists one per platform, a dozen).
pub const MAX_INDEX_ENTRIES: usize = 256;
/// Layers of one image (Docker refuses more than 127).
pub const MAX_LAYERS: usize = 128;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The `Accept` of a manifest request: the four types above.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Layer media types berth unpacks (the compression is sniffed anyway).
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
];
/// Config media types.
const CONFIG_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// A content descriptor: what a blob or manifest is, by digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Its media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Descriptor {
    /// The 64 hex digits of the digest.
    pub fn hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}

/// One entry of an index: a manifest and the platform it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The manifest (or a nested index).
    pub manifest: Descriptor,
    /// Its platform; `None` when the entry names none (attestations).
    pub platform: Option<Platform>,
}

/// A manifest or index, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    /// A multi-platform index (or Docker manifest list).
    Index(Vec<IndexEntry>),
    /// One image: its config and layers, bottom first.
    Image {
        /// The config blob.
        config: Descriptor,
        /// The layer blobs.
        layers: Vec<Descriptor>,
    },
}

/// What a token endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The bearer token.
    pub token: String,
    /// Seconds it is valid for (60 when the answer does not say, as the
    /// distribution spec's token auth does).
    pub expires_in: u64,
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`: send the user name and password on each request.
    Basic,
    /// `Bearer realm=...,service=...,scope=...`: get a token from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// `service`, passed back as a query parameter.
        service: Option<String>,
        /// `scope`, passed back as a query parameter.
        scope: Option<String>,
    },
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A descriptor at `at` (a field path for errors) whose media type must
/// be one of `types` (`None`: any of the manifest types).
fn descriptor(v: &Value, at: &str, types: Option<&[&str]>) -> Result<Descriptor, String> {
    let digest = text(v, "digest").ok_or_else(|| format!("{at}: no `digest`"))?;
    let digest =
        crate::manifest::reference::parse_digest(digest).map_err(|e| format!("{at}: {e}"))?;
    let size = v
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("{at}: no `size`, or not a whole number"))?;
    let media_type = text(v, "mediaType").unwrap_or_default().to_owned();
    let known = match types {
        Some(t) => t.contains(&media_type.as_str()),
        None => {
            [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].contains(&media_type.as_str())
        }
    };
    if !known {
        return Err(format!(
            "{at}: unknown media type `{}`",
            media_type.escape_debug()
        ));
    }
    Ok(Descriptor {
        media_type,
        digest,
        size,
    })
}

/// Read a manifest or index. `content_type` is the response's header,
/// used when the document names no `mediaType` of its own (OCI allows
/// that); a document that names one must agree with a header that names
/// a known type.
pub fn parse_document(bytes: &[u8], content_type: Option<&str>) -> Result<Document, String> {
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_MANIFEST {
        return Err(format!("larger than {MAX_MANIFEST} bytes"));
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim())
        .filter(|c| !c.is_empty());
    let media_type = text(&v, "mediaType").or(header).unwrap_or_default();
    if v.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err("`schemaVersion` is not 2 (Docker schema 1 manifests are not supported; push the image again with a current tool)".into());
    }
    match media_type {
        OCI_INDEX | DOCKER_LIST => {
            let list = v
                .get("manifests")
                .and_then(Value::as_array)
                .ok_or("an index without `manifests`")?;
            if list.len() > MAX_INDEX_ENTRIES {
                return Err(format!("an index of more than {MAX_INDEX_ENTRIES} entries"));
            }
            let mut out = Vec::new();
            for (i, e) in list.iter().enumerate() {
                let at = format!("manifests[{i}]");
                let manifest = descriptor(e, &at, None)?;
                let platform = e.get("platform").map(|p| platform(p, &at)).transpose()?;
                out.push(IndexEntry { manifest, platform });
            }
            Ok(Document::Index(out))
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = v.get("config").ok_or("a manifest without `config`")?;
            let config = descriptor(config, "config", Some(CONFIG_TYPES))?;
            let list = v
                .get("layers")
                .and_then(Value::as_array)
                .ok_or("a manifest without `layers`")?;
            if list.len() > MAX_LAYERS {
                return Err(format!("more than {MAX_LAYERS} layers"));
            }
            let layers = list
                .iter()
                .enumerate()
                .map(|(i, l)| descriptor(l, &format!("layers[{i}]"), Some(LAYER_TYPES)))
                .collect::<Result<_, _>>()?;
            Ok(Document::Image { config, layers })
        }
        other => Err(format!(
            "unknown media type `{}`; berth reads OCI and Docker v2 manifests and indexes",
            other.escape_debug()
        )),
    }
}

fn platform(v: &Value, at: &str) -> Result<Platform, String> {
    let word = |k: &str| -> Result<Option<String>, String> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= 32 && !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("{at}.platform.{k}: not a short string")),
        }
    };
    Ok(Platform {
        os: word("os")?.unwrap_or_default(),
        architecture: word("architecture")?.unwrap_or_default(),
        variant: word("variant")?,
    })
}

/// The `os`, `architecture` and `variant` of an image config blob, when it
/// names them.
pub fn config_platform(bytes: &[u8]) -> Option<Platform> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    platform(&v, "config")
        .ok()
        .filter(|p| !p.architecture.is_empty())
}

/// Read a token endpoint's answer (`token` or `access_token`, `expires_in`).
pub fn parse_token(bytes: &[u8]) -> Result<Token, String> {
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_TOKEN_ANSWER {
        return Err(format!("larger than {MAX_TOKEN_ANSWER} bytes"));
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let token = text(&v, "token")
        .or_else(|| text(&v, "access_token"))
        .filter(|t| !t.is_empty())
        .ok_or("no `token` in the answer")?;
    if token.len() > MAX_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "a token longer than {MAX_TOKEN} bytes, or with characters a header cannot carry"
        ));
    }
    let expires_in = v
        .get("expires_in")
        .and_then(Value::as_u64)
        .unwrap_or(60)
        .clamp(1, 24 * 3600);
    Ok(Token {
        token: token.to_owned(),
        expires_in,
    })
}

/// Read a `WWW-Authenticate` value: the scheme, then `key="value"` pairs
/// (quoted strings with backslash escapes, or bare tokens).
pub fn parse_challenge(header: &str) -> Result<Challenge, String> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params: Vec<(String, String)> = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err("an unterminated quoted string".into()),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                value.push(c);
                chars.next();
            }
        }
        if params.len() >= 16 {
            return Err("more than 16 parameters".into());
        }
        params.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if scheme.eq_ignore_ascii_case("basic") {
        return Ok(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "the scheme `{}`; berth speaks Basic and Bearer",
            scheme.escape_debug()
        ));
    }
    let realm = get("realm").ok_or("a Bearer challenge without `realm`")?;
    Ok(Challenge::Bearer {
        realm,
        service: get("service"),
        scope: get("scope"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn an_image_manifest_and_an_index_are_read() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":5}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":7}}]}}"#,
            d('a'),
            d('b')
        );
        let Document::Image { config, layers } = parse_document(m.as_bytes(), None).unwrap() else {
            panic!("not an image")
        };
        assert_eq!(
            (config.size, layers.len(), layers[0].hex()),
            (5, 1, &*"b".repeat(64))
        );
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":9,"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}}]}}"#,
            d('c')
        );
        let Document::Index(list) = parse_document(i.as_bytes(), Some(DOCKER_LIST)).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(
            list[0].platform.as_ref().unwrap().to_string(),
            "linux/arm/v7"
        );
    }

    #[test]
    fn hostile_documents_are_refused() {
        for (doc, want) in [
            (
                r#"{"schemaVersion":1,"mediaType":"x"}"#.to_owned(),
                "schema 1",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/x-evil"}"#.to_owned(),
                "unknown media type",
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:12","size":1}},"layers":[]}}"#
                ),
                "64 hex",
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"text/html","digest":"{}","size":1}},"layers":[]}}"#,
                    d('a')
                ),
                "config: unknown media type",
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":-1}},"layers":[]}}"#,
                    d('a')
                ),
                "size",
            ),
            ("[]".to_owned(), "object"),
        ] {
            let e = parse_document(doc.as_bytes(), None).unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
        }
        let big = vec![b' '; usize::try_from(MAX_MANIFEST).unwrap() + 1];
        assert!(parse_document(&big, None).unwrap_err().contains("larger"));
    }

    #[test]
    fn challenges_and_tokens_are_read() {
        let c = parse_challenge(r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull""#).unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull".into())
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#).unwrap(),
            Challenge::Basic
        );
        assert!(parse_challenge("Digest realm=x").is_err());
        assert!(parse_challenge(r#"Bearer realm="x"#).is_err());
        let t = parse_token(br#"{"access_token":"abc","expires_in":300}"#).unwrap();
        assert_eq!((t.token.as_str(), t.expires_in), ("abc", 300));
        assert_eq!(parse_token(br#"{"token":"t"}"#).unwrap().expires_in, 60);
        assert!(parse_token(br#"{"token":"a\nb"}"#).is_err());
        assert!(parse_token(b"{}").is_err());
    }
}
