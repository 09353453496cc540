//! The executor against a fake host that records calls and fails chosen ones.

use std::collections::BTreeMap;

use super::*;
use crate::host::runtime::RuntimeError;
use crate::host::Liveness;
use crate::manifest::{self, RenderInput};
use crate::model::{ImageSpec, ResourceSpec};
use crate::plan::{plan, Observed};

#[derive(Default)]
struct FakeHost {
    calls: Vec<String>,
    /// "op name" -> error text: that call fails.
    fail: BTreeMap<String, String>,
}

impl FakeHost {
    fn call(&mut self, op: &str, name: &str) -> Result<(), HostError> {
        let key = format!("{op} {name}");
        self.calls.push(key.clone());
        match self.fail.get(&key) {
            Some(msg) => Err(RuntimeError::Sys {
                verb: "fake step",
                source: std::io::Error::other(msg.clone()),
            }
            .into()),
            None => Ok(()),
        }
    }
}

impl Host for FakeHost {
    fn liveness(&mut self, _: &str) -> Result<Liveness, HostError> {
        Ok(Liveness::Running)
    }
    fn present_images(&mut self) -> std::collections::BTreeSet<String> {
        Default::default()
    }
    fn ensure_image(&mut self, image: &ImageSpec) -> Result<(), HostError> {
        self.call("image", &image.name)
    }
    fn create(&mut self, spec: &Spec, _: &Desired) -> Result<(), HostError> {
        self.call("create", &spec.name)
    }
    fn start(&mut self, spec: &Spec, _: &Desired) -> Result<(), HostError> {
        self.call("start", &spec.name)
    }
    fn stop(&mut self, name: &str) -> Result<(), HostError> {
        self.call("stop", name)
    }
    fn update_limits(&mut self, name: &str, _: &ResourceSpec) -> Result<(), HostError> {
        self.call("limits", name)
    }
    fn remove(&mut self, name: &str) -> Result<(), HostError> {
        self.call("remove", name)
    }
    fn remove_network(&mut self, name: &str) -> Result<(), HostError> {
        self.call("remove-network", name)
    }
}

const YAML: &str = "
version: 1
images:
  bb: { path: /bb.tar, sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa }
  other: { path: /o.tar, sha256: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb }
containers:
  db: { image: bb }
  web: { image: bb, depends_on: [db] }
  solo: { image: other }
";

fn desired(yaml: &str) -> Desired {
    manifest::load("m.yaml", yaml, "/", &RenderInput::default())
        .expect("valid")
        .desired
}

fn run(host: &mut FakeHost, yaml: &str, state: &RecordStore) -> Report {
    let d = desired(yaml);
    let observed = Observed {
        containers: state
            .load_all()
            .expect("load")
            .into_iter()
            .map(|(n, r)| match r {
                Ok(r) => (n, r.observed(Liveness::Running)),
                Err(_) => (n, crate::plan::ObservedContainer::damaged()),
            })
            .collect(),
        images: Default::default(),
        networks: Default::default(),
    };
    execute(&plan(&d, &observed, true), &d, host, state)
}

#[test]
fn everything_succeeds_and_is_recorded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = RecordStore::new(tmp.path());
    let mut host = FakeHost::default();
    let report = run(&mut host, YAML, &state);
    assert!(report.failed.is_empty() && report.skipped.is_empty());
    assert_eq!(
        host.calls,
        [
            "image bb",
            "image other",
            "create db",
            "start db",
            "create solo",
            "start solo",
            "create web",
            "start web"
        ]
    );
    assert_eq!(state.load().expect("load").len(), 3);
}

#[test]
fn a_damaged_record_is_recreated_and_the_rest_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = RecordStore::new(tmp.path());
    run(&mut FakeHost::default(), YAML, &state);
    let path = state.container_dir("solo").join("applied.json");
    std::fs::write(&path, b"{half").expect("damage");
    let mut host = FakeHost::default();
    let report = run(&mut host, YAML, &state);
    assert!(report.failed.is_empty() && report.skipped.is_empty());
    assert_eq!(
        host.calls,
        ["image other", "remove solo", "create solo", "start solo"]
    );
    assert!(state.get("solo").expect("repaired").is_some());
}

#[test]
fn failed_create_rolls_back_and_skips_dependents_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = RecordStore::new(tmp.path());
    let mut host = FakeHost::default();
    host.fail.insert("create db".into(), "disk full".into());
    let report = run(&mut host, YAML, &state);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        report.failed[0].to_string(),
        "create `db`: fake step: disk full"
    );
    // db's start and all of web are skipped; solo goes on.
    assert_eq!(
        report
            .skipped
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["> start db", "+ create web", "> start web"]
    );
    assert!(host.calls.contains(&"start solo".to_string()));
    let recorded = state.load().expect("load");
    assert_eq!(
        recorded.keys().collect::<Vec<_>>(),
        ["solo"],
        "nothing recorded for the failed container"
    );
}

#[test]
fn failed_image_skips_only_its_containers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = RecordStore::new(tmp.path());
    let mut host = FakeHost::default();
    host.fail
        .insert("image other".into(), "sha256 mismatch".into());
    let report = run(&mut host, YAML, &state);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        report
            .skipped
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["+ create solo", "> start solo"]
    );
    assert!(host.calls.contains(&"start web".to_string()));
}

/// A store whose root is a file: every record write fails.
fn unwritable_store(dir: &std::path::Path) -> RecordStore {
    let root = dir.join("not-a-dir");
    std::fs::write(&root, b"").expect("write");
    RecordStore::new(&root)
}

#[test]
fn failed_record_write_rolls_back_the_create() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = unwritable_store(tmp.path());
    let mut host = FakeHost::default();
    let d = desired(YAML);
    let p = Plan {
        actions: vec![Action::Create {
            container: "solo".into(),
        }],
    };
    let report = execute(&p, &d, &mut host, &state);
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].rollback.is_none(), "rollback succeeded");
    assert_eq!(host.calls, ["create solo", "remove solo"]);
}

#[test]
fn failed_rollback_is_reported_with_the_first_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = unwritable_store(tmp.path());
    let mut host = FakeHost::default();
    host.fail.insert("remove solo".into(), "device busy".into());
    let d = desired(YAML);
    let p = Plan {
        actions: vec![Action::Create {
            container: "solo".into(),
        }],
    };
    let report = execute(&p, &d, &mut host, &state);
    let msg = report.failed[0].to_string();
    assert!(
        msg.starts_with("create `solo`: create state directory")
            && msg.ends_with("rolling back also failed: fake step: device busy"),
        "{msg}"
    );
}

#[test]
fn second_apply_does_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = RecordStore::new(tmp.path());
    let mut host = FakeHost::default();
    run(&mut host, YAML, &state);
    let mut again = FakeHost::default();
    let report = run(&mut again, YAML, &state);
    assert!(
        report.done.is_empty() && again.calls.is_empty(),
        "{:?}",
        again.calls
    );
}
