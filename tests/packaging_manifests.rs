//! The manifest fragments shipped with the container recipes (recipes/*/) and
//! the Yocto example image parse as berth manifests (the serde model rejects
//! unknown fields), once their digest placeholders are filled in as the build
//! scripts and berth_bundle do.

// Test and bench setup: a failed step panics with its location.
#![allow(clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use berth::manifest::schema::Manifest;

const FAKE_DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn fill(text: &str) -> String {
    // recipes use @SHA256@, berth_bundle uses @BERTH_SHA256_<name>@
    let mut out = text.replace("@SHA256@", FAKE_DIGEST);
    while let Some(start) = out.find("@BERTH_SHA256_") {
        let rest = &out[start + 1..];
        let Some(end) = rest.find('@') else { break };
        out.replace_range(start..start + end + 2, FAKE_DIGEST);
    }
    out
}

fn parse(path: &Path) -> Manifest {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    berth::manifest::yaml::from_str(&fill(&text))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn recipe_manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut out: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("recipes/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("manifest.yaml"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_recipe_has_a_manifest_that_parses() {
    let manifests = recipe_manifests();
    assert!(
        manifests.len() >= 4,
        "expected busybox, dnsmasq, debian-systemd, openwrt: {manifests:?}"
    );
    for path in manifests {
        let m = parse(&path);
        assert_eq!(m.version, 1, "{}", path.display());
        assert_eq!(
            m.images.len(),
            1,
            "{}: one image per recipe",
            path.display()
        );
        for (name, c) in &m.containers {
            let image = c.image.as_deref().unwrap_or_default();
            assert!(
                m.images.contains_key(image),
                "{}: container {name} names unknown image {image}",
                path.display()
            );
        }
        for img in m.images.values() {
            assert_eq!(
                img.sha256.as_deref(),
                Some(FAKE_DIGEST),
                "{}: digest placeholder",
                path.display()
            );
        }
    }
}

#[test]
fn yocto_example_manifest_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("yocto-layer/recipes-core/images/files/berth-image-example.yaml");
    let m = parse(&path);
    assert!(m.containers.contains_key("web"));
    assert_eq!(m.images["busybox"].sha256.as_deref(), Some(FAKE_DIGEST));
}

#[test]
fn unknown_field_is_rejected() {
    // guards the two tests above: the model must refuse what it does not know
    let bad = "version: 1\ncontainers:\n  x:\n    imagee: busybox\n";
    assert!(berth::manifest::yaml::from_str::<Manifest>(bad).is_err());
}

/// Run `berth validate` on the filled-in text; return (success, stderr).
fn validate(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("manifest.yaml");
    fs::write(&path, fill(text)).expect("write manifest");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run berth validate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn shipped_manifests_pass_berth_validate() {
    let mut paths = recipe_manifests();
    paths.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("yocto-layer/recipes-core/images/files/berth-image-example.yaml"),
    );
    for path in paths {
        let text = fs::read_to_string(&path).expect("read manifest");
        let (ok, stderr) = validate(&text);
        assert!(ok, "{}: berth validate failed: {stderr}", path.display());
    }
}

#[test]
fn validate_rejects_a_container_on_an_unknown_network() {
    // guards the test above: validate must be able to fail on a recipe-shaped manifest
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/dnsmasq/manifest.yaml");
    let text = fs::read_to_string(path).expect("read manifest");
    let (ok, _) = validate(&text.replace("network: lan,", "network: nosuch,"));
    assert!(!ok);
}
