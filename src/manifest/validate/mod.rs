//! Validation: turns a parsed `Manifest` into the typed `Desired`, collecting
//! every error at once, each with its line, column, field path and fix.
//!
//! A value that came from a profile is reported where the profile wrote it.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use crate::manifest::pos::PosIndex;
use crate::manifest::profile::merge;
use crate::manifest::schema::{ContainerFields, Manifest, NetworkDef};
use crate::manifest::units;
use crate::manifest::{Diagnostic, ManifestError};
use crate::model::*;

/// Container names: used in paths, cgroup names and (hashed) interface names.
const CONTAINER_NAME_MAX: usize = 32;
/// Network names may become a bridge's interface name.
const NETWORK_NAME_MAX: usize = 15;

/// Validate `manifest` (parsed from `text`, named `file`) into `Desired`.
pub fn validate(
    file: &str,
    text: &str,
    manifest: &Manifest,
    base_dir: &str,
) -> Result<Desired, ManifestError> {
    let mut v = Validator {
        file,
        text,
        pos: OnceCell::new(),
        diags: Vec::new(),
        seen: HashSet::new(),
        profiles_of: None,
    };
    let desired = v.manifest(manifest, base_dir);
    if v.diags.is_empty() {
        Ok(desired)
    } else {
        v.diags.sort_by_key(|d| (d.line, d.col));
        Err(ManifestError::Invalid(v.diags))
    }
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
    /// Built at the first error: a valid manifest never pays for it.
    pos: OnceCell<PosIndex>,
    diags: Vec<Diagnostic>,
    seen: HashSet<(usize, usize, String)>,
    /// While checking a container: its path prefix and profiles, so a value
    /// inherited from a profile is located in that profile.
    profiles_of: Option<(String, Vec<String>)>,
}

impl Validator<'_> {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        let message = message.into();
        let (shown, pos) = self.locate(path);
        let (line, col) = pos.map_or((1, 1), |p| (p.line, p.col));
        if self.seen.insert((line, col, message.clone())) {
            self.diags.push(Diagnostic {
                file: self.file.to_string(),
                line,
                col,
                path: shown,
                message,
            });
        }
    }

    fn locate(&self, path: &str) -> (String, Option<crate::manifest::pos::Pos>) {
        let pos = self.pos.get_or_init(|| PosIndex::build(self.text));
        if let Some(p) = pos.exact(path) {
            return (path.to_string(), Some(p));
        }
        if let Some((prefix, profiles)) = &self.profiles_of {
            if let Some(rest) = path.strip_prefix(prefix.as_str()) {
                for profile in profiles.iter().rev() {
                    let alt = format!("profiles.{profile}{rest}");
                    if let Some(p) = pos.exact(&alt) {
                        return (alt, Some(p));
                    }
                }
            }
        }
        (path.to_string(), pos.find(path).map(|(p, _)| p))
    }

    /// Run a parser on an optional value, reporting its error at `path`.
    fn check<T>(
        &mut self,
        path: &str,
        value: Option<&str>,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match f(value?) {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    fn manifest(&mut self, m: &Manifest, base_dir: &str) -> Desired {
        if m.version != 1 {
            self.err(
                "version",
                format!(
                    "version {} is not supported; this berth reads version 1",
                    m.version
                ),
            );
        }
        let settings = self.settings(m);
        let images = m
            .images
            .iter()
            .map(|(n, d)| (n.clone(), self.image(n, d, base_dir)))
            .collect();
        let networks: BTreeMap<String, NetworkSpec> = m
            .networks
            .iter()
            .filter_map(|(n, d)| Some((n.clone(), self.network(n, d)?)))
            .collect();

        for (name, fields) in &m.profiles {
            let path = format!("profiles.{name}");
            self.name_at(&path, name, "profile", CONTAINER_NAME_MAX);
            if !fields.profiles.is_empty() {
                self.err(
                    &format!("{path}.profiles"),
                    "profiles cannot list other profiles; list them all on the container",
                );
            }
            self.container(&path, name, fields, m, &networks, true);
        }
        let mut containers = BTreeMap::new();
        for (name, own) in &m.containers {
            let path = format!("containers.{name}");
            self.name_at(&path, name, "container", CONTAINER_NAME_MAX);
            let mut merged = ContainerFields::default();
            for (i, p) in own.profiles.iter().enumerate() {
                match m.profiles.get(p) {
                    Some(profile) => merged = merge(&merged, profile),
                    None => self.err(
                        &format!("{path}.profiles[{i}]"),
                        unknown("profile", p, m.profiles.keys()),
                    ),
                }
            }
            let merged = merge(&merged, own);
            self.profiles_of = Some((path.clone(), own.profiles.clone()));
            let spec = self.container(&path, name, &merged, m, &networks, false);
            self.profiles_of = None;
            if let Some(spec) = spec {
                containers.insert(name.clone(), spec);
            }
        }
        self.dependency_cycles(m);
        self.duplicate_addresses(&containers);
        Desired {
            settings,
            images,
            networks,
            containers,
        }
    }

    /// Two containers with the same static address on one network would fight
    /// over it; a MAC given twice on one network likewise.
    fn duplicate_addresses(&mut self, containers: &BTreeMap<String, Spec>) {
        let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
        for (name, spec) in containers {
            for (i, a) in spec.network.iter().enumerate() {
                let ips = a
                    .addresses
                    .iter()
                    .enumerate()
                    .map(|(j, c)| (format!("address[{j}]"), c.addr.to_string()));
                let mac = a.mac.iter().map(|m| ("mac".to_string(), m.to_string()));
                for (field, value) in ips.chain(mac) {
                    let key = (a.network.clone(), value.clone());
                    match seen.get(&key) {
                        Some(other) if other != name => {
                            let msg = format!("{value} is also given to container `{other}` on network `{}`; give each container its own", a.network);
                            self.err(&format!("containers.{name}.network[{i}].{field}"), msg);
                        }
                        _ => {
                            seen.insert(key, name.clone());
                        }
                    }
                }
            }
        }
    }

    fn name_at(&mut self, path: &str, name: &str, what: &str, max: usize) {
        if let Err(e) = units::name(name, what, max) {
            self.err(path, e);
        }
    }

    fn settings(&mut self, m: &Manifest) -> SettingsSpec {
        let s = &m.settings;
        for (field, value) in [
            ("root", &s.root),
            ("runtime_dir", &s.runtime_dir),
            ("ca_bundle", &s.ca_bundle),
        ] {
            self.check(
                &format!("settings.{field}"),
                value.as_deref(),
                units::abs_path,
            );
        }
        for (i, dir) in s.image_dirs.iter().enumerate() {
            self.check(
                &format!("settings.image_dirs[{i}]"),
                Some(dir),
                units::abs_path,
            );
        }
        SettingsSpec {
            root: s.root.clone(),
            runtime_dir: s.runtime_dir.clone(),
            log_size: self.check("settings.log_size", s.log_size.as_deref(), units::size),
            image_dirs: s.image_dirs.clone(),
            max_image_size: self.check(
                "settings.max_image_size",
                s.max_image_size.as_deref(),
                units::size,
            ),
            ca_bundle: s.ca_bundle.clone(),
            fetch_timeout: self.check(
                "settings.fetch_timeout",
                s.fetch_timeout.as_deref(),
                units::deadline_secs,
            ),
            fetch_min_rate: self.check(
                "settings.fetch_min_rate",
                s.fetch_min_rate.as_deref(),
                units::size,
            ),
            gc_after_apply: s.gc_after_apply.unwrap_or(false),
            parallel: self.check("settings.parallel", s.parallel.as_deref(), units::parallel),
        }
    }

    fn image(
        &mut self,
        name: &str,
        d: &crate::manifest::schema::ImageDef,
        base_dir: &str,
    ) -> ImageSpec {
        let path = format!("images.{name}");
        self.name_at(&path, name, "image", 64);
        let sha256 = d.sha256.as_ref().and_then(|s| {
            let lower = s.to_ascii_lowercase();
            if lower.len() == 64 && lower.chars().all(|c| c.is_ascii_hexdigit()) {
                Some(lower)
            } else {
                self.err(
                    &format!("{path}.sha256"),
                    format!(
                        "\"{s}\" is not a sha256; give the 64 hex digits `sha256sum FILE` prints"
                    ),
                );
                None
            }
        });
        if d.reference.is_some() || d.digest.is_some() || d.plain_http.is_some() || d.auth.is_some()
        {
            return self.registry_image(name, d, base_dir, sha256);
        }
        let source = match (&d.path, &d.url) {
            (Some(p), None) if p.starts_with('/') => ImageSource::Path(p.clone()),
            (Some(p), None) => ImageSource::Path(format!("{}/{p}", base_dir.trim_end_matches('/'))),
            (None, Some(u)) => {
                let scheme_ok = ["http://", "https://", "file://"]
                    .iter()
                    .any(|s| u.starts_with(s));
                if !scheme_ok {
                    self.err(
                        &format!("{path}.url"),
                        format!("\"{u}\" is not an http://, https:// or file:// URL"),
                    );
                } else if let Some(feature) = missing_feature(u) {
                    self.err(
                        &format!("{path}.url"),
                        format!("this berth is built without `{feature}`, which \"{u}\" needs; use a file or another scheme, or a berth built with it (OpenWrt: BERTH_HTTP/BERTH_HTTPS in menuconfig; Yocto: PACKAGECONFIG)"),
                    );
                }
                if d.sha256.is_none() && !u.starts_with("file://") {
                    self.err(&path, format!("image `{name}` has a URL but no sha256; add `sha256:` (the output of `sha256sum` on the tarball)"));
                }
                ImageSource::Url(u.clone())
            }
            (Some(_), Some(_)) => {
                self.err(
                    &format!("{path}.url"),
                    "an image has either `path` or `url`, not both",
                );
                ImageSource::Url(String::new())
            }
            (None, None) => {
                self.err(&path, format!("image `{name}` needs a `path` or a `url`"));
                ImageSource::Path(String::new())
            }
        };
        ImageSpec {
            name: name.to_string(),
            source,
            sha256,
        }
    }

    /// Without the `registry` feature: refused, naming the build option.
    #[cfg(not(feature = "registry"))]
    fn registry_image(
        &mut self,
        name: &str,
        d: &crate::manifest::schema::ImageDef,
        _base_dir: &str,
        _sha256: Option<String>,
    ) -> ImageSpec {
        self.err(&format!("images.{name}.ref"), "this berth is built without `registry`, which registry images need; use a berth built with it (cargo --features registry; OpenWrt: BERTH_REGISTRY in menuconfig; Yocto: PACKAGECONFIG registry), or an image `path`/`url`");
        ImageSpec {
            name: name.to_string(),
            source: ImageSource::Registry(crate::model::RegistrySource {
                reference: d.reference.clone().unwrap_or_default(),
                plain_http: false,
                auth: None,
            }),
            sha256: None,
        }
    }

    /// An image by registry reference (`ref`, `digest`, `plain_http`, `auth`).
    #[cfg(feature = "registry")]
    fn registry_image(
        &mut self,
        name: &str,
        d: &crate::manifest::schema::ImageDef,
        base_dir: &str,
        sha256: Option<String>,
    ) -> ImageSpec {
        use crate::manifest::reference::{parse_digest, Reference};
        let path = format!("images.{name}");
        let f = |field: &str| format!("{path}.{field}");
        if d.path.is_some() || d.url.is_some() || sha256.is_some() {
            self.err(&path, "an image has `ref` (a registry), or `path`/`url` with `sha256`, not both; pin a registry image with `digest: sha256:...`");
        }
        let reference = d.reference.clone().unwrap_or_default();
        let parsed = match Reference::parse(&reference) {
            Ok(r) => Some(r),
            Err(e) if d.reference.is_none() => {
                let _ = e;
                self.err(&path, format!("image `{name}` has registry fields but no `ref`; add e.g. `ref: ghcr.io/org/web:1.4`"));
                None
            }
            Err(e) => {
                self.err(&f("ref"), format!("\"{reference}\" is not an image reference: {e}; write e.g. ghcr.io/org/web:1.4"));
                None
            }
        };
        let mut pinned = d.digest.as_ref().and_then(|g| match parse_digest(g) {
            Ok(g) => Some(g),
            Err(e) => {
                self.err(
                    &f("digest"),
                    format!("{e}; give the manifest's digest, e.g. from `skopeo inspect`"),
                );
                None
            }
        });
        if let Some(in_ref) = parsed.as_ref().and_then(|r| r.digest.clone()) {
            match &pinned {
                Some(p) if *p != in_ref => self.err(
                    &f("digest"),
                    format!("\"{p}\" differs from the digest in `ref` ({in_ref}); keep one"),
                ),
                _ => pinned = Some(in_ref),
            }
        }
        let auth = d.auth.as_ref().map(|a| {
            if a.starts_with('/') {
                a.clone()
            } else {
                format!("{}/{a}", base_dir.trim_end_matches('/'))
            }
        });
        ImageSpec {
            name: name.to_string(),
            source: ImageSource::Registry(crate::model::RegistrySource {
                reference,
                plain_http: d.plain_http.unwrap_or(false),
                auth,
            }),
            sha256: pinned.map(|p| p[7..].to_owned()),
        }
    }

    fn network(&mut self, name: &str, d: &NetworkDef) -> Option<NetworkSpec> {
        let path = format!("networks.{name}");
        self.name_at(&path, name, "network", NETWORK_NAME_MAX);
        let f = |field: &str| format!("{path}.{field}");
        // Fields that only some kinds take.
        let only = |v: &mut Self, field: &str, set: bool, kinds: &str| {
            if set {
                v.err(
                    &f(field),
                    format!(
                        "`{field}` does not apply to a {} network; it is for {kinds}",
                        d.kind
                    ),
                );
            }
        };
        let is = |k: &str| d.kind == k;
        only(
            self,
            "bridge",
            d.bridge.is_some() && !is("bridge"),
            "bridge networks",
        );
        only(
            self,
            "create",
            d.create.is_some() && !is("bridge"),
            "bridge networks",
        );
        only(
            self,
            "address",
            !d.address.is_empty() && !is("bridge") && !is("macvlan"),
            "bridge networks with `create: true` and macvlan networks with `host_link: true`",
        );
        only(
            self,
            "parent",
            d.parent.is_some() && !is("macvlan") && !is("ipvlan"),
            "macvlan and ipvlan networks",
        );
        only(
            self,
            "mode",
            d.mode.is_some() && !is("macvlan") && !is("ipvlan"),
            "macvlan and ipvlan networks",
        );
        only(
            self,
            "vlan",
            d.vlan.is_some() && !is("macvlan") && !is("ipvlan"),
            "macvlan and ipvlan networks",
        );
        only(
            self,
            "host_link",
            d.host_link.is_some() && !is("macvlan"),
            "macvlan networks",
        );
        if let Some(mtu) = d.mtu {
            if !(68..=65535).contains(&mtu) {
                self.err(&f("mtu"), format!("MTU {mtu} is outside 68..=65535"));
            }
        }
        if let Some(vlan) = d.vlan {
            if !(1..=4094).contains(&vlan) {
                self.err(&f("vlan"), format!("VLAN id {vlan} is outside 1..=4094"));
            }
        }
        let parent = || d.parent.clone().unwrap_or_default();
        if (is("macvlan") || is("ipvlan")) && d.parent.is_none() {
            self.err(
                &path,
                format!(
                    "a {} network needs `parent:`, the host interface it hangs off (e.g. eth1)",
                    d.kind
                ),
            );
        }
        if let Some(p) = &d.parent {
            self.check(&f("parent"), Some(p), units::ifname);
        }
        let kind = match d.kind.as_str() {
            "bridge" => {
                let bridge = d.bridge.clone().unwrap_or_else(|| name.to_string());
                if let Err(e) = units::ifname(&bridge) {
                    self.err(&f("bridge"), e);
                }
                let address = self.host_addresses(&path, d);
                if !address.is_empty() && d.create != Some(true) {
                    self.err(&f("address"), "`address` sets the address of a bridge berth creates; add `create: true` or drop it");
                }
                NetworkKind::Bridge {
                    bridge,
                    create: d.create.unwrap_or(false),
                    address,
                }
            }
            "macvlan" => {
                let mode = match d.mode.as_deref().unwrap_or("bridge") {
                    "bridge" => MacvlanMode::Bridge,
                    "private" => MacvlanMode::Private,
                    "vepa" => MacvlanMode::Vepa,
                    "passthru" => MacvlanMode::Passthru,
                    other => {
                        self.err(&f("mode"), format!("\"{other}\" is not a macvlan mode; use bridge, private, vepa or passthru"));
                        MacvlanMode::Bridge
                    }
                };
                let host_address = self.host_addresses(&path, d);
                if !host_address.is_empty() && d.host_link != Some(true) {
                    self.err(&f("address"), "`address` is the router's address on its host link; add `host_link: true` or drop it");
                }
                NetworkKind::Macvlan {
                    parent: parent(),
                    mode,
                    vlan: d.vlan,
                    host_link: d.host_link.unwrap_or(false),
                    host_address,
                }
            }
            "ipvlan" => {
                let mode = match d.mode.as_deref().unwrap_or("l2") {
                    "l2" => IpvlanMode::L2,
                    "l3" => IpvlanMode::L3,
                    other => {
                        self.err(
                            &f("mode"),
                            format!("\"{other}\" is not an ipvlan mode; use l2 or l3"),
                        );
                        IpvlanMode::L2
                    }
                };
                NetworkKind::Ipvlan {
                    parent: parent(),
                    mode,
                    vlan: d.vlan,
                }
            }
            "none" => NetworkKind::None,
            "host" => NetworkKind::Host,
            other => {
                self.err(&f("type"), format!("\"{other}\" is not a network type; use bridge, macvlan, ipvlan, none or host"));
                return None;
            }
        };
        Some(NetworkSpec {
            name: name.to_string(),
            kind,
            mtu: d.mtu,
        })
    }

    /// A network's own `address:` list: the host side's addresses.
    fn host_addresses(&mut self, path: &str, d: &NetworkDef) -> Vec<Cidr> {
        d.address
            .iter()
            .enumerate()
            .filter_map(|(i, a)| self.cidr(&format!("{path}.address[{i}]"), a))
            .collect()
    }

    fn cidr(&mut self, path: &str, text: &str) -> Option<Cidr> {
        self.check(path, Some(text), |t| {
            t.parse::<Cidr>().map_err(|e| format!("\"{t}\" is not an address in CIDR form ({e}); use e.g. 192.168.1.50/24 or fd00::50/64"))
        })
    }

    fn ip(&mut self, path: &str, text: Option<&str>, v4: Option<bool>) -> Option<IpAddr> {
        self.check(path, text, |t| {
            let ip: IpAddr = t
                .parse()
                .map_err(|_| format!("\"{t}\" is not an IP address; use e.g. 192.168.1.1"))?;
            match v4 {
                Some(true) if !ip.is_ipv4() => Err(format!(
                    "\"{t}\" is not IPv4; put IPv6 gateways in `gateway6`"
                )),
                Some(false) if ip.is_ipv4() => Err(format!(
                    "\"{t}\" is not IPv6; put IPv4 gateways in `gateway`"
                )),
                _ => Ok(ip),
            }
        })
    }

    /// Check one container (or, with `profile`, one profile's fields alone).
    fn dependency_cycles(&mut self, m: &Manifest) {
        // Depth-first search; each cycle is reported once, at its first member.
        let mut done: HashSet<&str> = HashSet::new();
        for start in m.containers.keys() {
            let mut stack: Vec<&str> = Vec::new();
            self.visit(m, start, &mut stack, &mut done);
        }
    }

    fn visit<'m>(
        &mut self,
        m: &'m Manifest,
        name: &'m str,
        stack: &mut Vec<&'m str>,
        done: &mut HashSet<&'m str>,
    ) {
        if done.contains(name) {
            return;
        }
        if let Some(at) = stack.iter().position(|n| *n == name) {
            let cycle: Vec<&str> = stack[at..].iter().copied().chain([name]).collect();
            self.err(
                &format!("containers.{name}.depends_on"),
                format!(
                    "dependency cycle {}; remove one of these depends_on entries",
                    cycle.join(" -> ")
                ),
            );
            return;
        }
        stack.push(name);
        if let Some(c) = m.containers.get(name) {
            for dep in &c.depends_on {
                if m.containers.contains_key(dep) && dep != name {
                    self.visit(m, dep, stack, done);
                }
            }
        }
        stack.pop();
        done.insert(name);
    }
}

/// `uid`, `uid:gid` or a user name.
pub(crate) fn parse_user(text: &str) -> Result<User, String> {
    let (u, g) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    match (u.parse::<u32>(), g.map(str::parse::<u32>)) {
        (Ok(uid), None) => Ok(User::Id { uid, gid: None }),
        (Ok(uid), Some(Ok(gid))) => Ok(User::Id { uid, gid: Some(gid) }),
        (Err(_), None) if units::name(u, "user", 32).is_ok() => Ok(User::Name(u.to_string())),
        _ => Err(format!("\"{text}\" is not a user; use UID, UID:GID or a user name from the image's /etc/passwd")),
    }
}

fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<&str> = known.map(String::as_str).collect();
    if known.is_empty() {
        format!("unknown {what} `{name}`; the manifest defines no {what}s")
    } else {
        format!("unknown {what} `{name}`; defined: {}", known.join(", "))
    }
}

mod container;

#[cfg(test)]
mod tests;

/// The cargo feature a URL's scheme needs that this build left out.
fn missing_feature(url: &str) -> Option<&'static str> {
    if url.starts_with("https://") && !cfg!(feature = "tls") {
        Some("tls")
    } else if url.starts_with("http://") && !cfg!(feature = "http") {
        Some("http")
    } else {
        None
    }
}
