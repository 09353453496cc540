//! The executor against a fake host that records calls and fails chosen ones.

use std::collections::BTreeMap;
use std::sync::Mutex;

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

impl Calls for FakeHost {
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

/// Every host call of a fake goes through `Calls::call` (name and op).
trait Calls {
    fn call(&mut self, op: &str, name: &str) -> Result<(), HostError>;
}

impl<T: Calls> Host for T {
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

/// A host for the workers of a parallel run: every worker's handle shares
/// one log; each call takes a little time, so overlapping calls show.
#[derive(Clone, Default)]
struct SharedFake {
    log: std::sync::Arc<Mutex<Log>>,
    fail: BTreeMap<String, String>,
}

#[derive(Default)]
struct Log {
    calls: Vec<String>,
    active: usize,
    most_active: usize,
}

impl SharedFake {
    fn call(&self, op: &str, name: &str) -> Result<(), HostError> {
        let key = format!("{op} {name}");
        {
            let mut log = lock(&self.log);
            log.active += 1;
            log.most_active = log.most_active.max(log.active);
        }
        std::thread::sleep(std::time::Duration::from_millis(15));
        let mut log = lock(&self.log);
        log.active -= 1;
        log.calls.push(key.clone());
        match self.fail.get(&key) {
            Some(msg) => Err(RuntimeError::Sys {
                verb: "fake step",
                source: std::io::Error::other(msg.clone()),
            }
            .into()),
            None => Ok(()),
        }
    }

    fn calls(&self) -> Vec<String> {
        lock(&self.log).calls.clone()
    }

    fn most_active(&self) -> usize {
        lock(&self.log).most_active
    }

    fn run(&self, yaml: &str, state: &RecordStore, jobs: usize) -> Report {
        let d = desired(yaml);
        let observed = Observed {
            containers: state
                .load()
                .unwrap_or_default()
                .into_iter()
                .map(|(n, r)| (n, r.observed(Liveness::Running)))
                .collect(),
            ..Default::default()
        };
        let make = || Box::new(self.clone()) as Box<dyn Host>;
        let workers = Workers { jobs, host: &make };
        execute_parallel(&plan(&d, &observed, true), &d, state, &workers)
    }
}

impl Calls for SharedFake {
    fn call(&mut self, op: &str, name: &str) -> Result<(), HostError> {
        SharedFake::call(self, op, name)
    }
}

/// `count` containers on one image; `c3` depends on `c1` and `c2`, `c5` on `c3`.
fn many(count: usize) -> String {
    let mut yaml = String::from(
        "version: 1\nimages:\n  bb: { path: /bb.tar, sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa }\ncontainers:\n",
    );
    for i in 0..count {
        let deps = match i {
            3 => ", depends_on: [c1, c2]",
            5 => ", depends_on: [c3]",
            _ => "",
        };
        yaml.push_str(&format!("  c{i}: {{ image: bb{deps} }}\n"));
    }
    yaml
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("no `{call}` in {calls:?}"))
}

#[test]
fn parallel_run_keeps_dependencies_in_order_and_overlaps_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = RecordStore::new(tmp.path());
    let host = SharedFake::default();
    let report = host.run(&many(8), &state, 4);
    assert!(report.failed.is_empty() && report.skipped.is_empty());
    let calls = host.calls();
    assert_eq!(calls.len(), 1 + 8 * 2, "{calls:?}");
    assert_eq!(calls[0], "image bb", "the fetch comes before any create");
    for (dep, dependant) in [("c1", "c3"), ("c2", "c3"), ("c3", "c5")] {
        assert!(
            position(&calls, &format!("start {dep}"))
                < position(&calls, &format!("create {dependant}")),
            "{dependant} was created before {dep} started: {calls:?}"
        );
    }
    assert!(host.most_active() > 1, "nothing ran at the same time");
    // The report reads as a one-at-a-time run's: plan order.
    let serial = run(
        &mut FakeHost::default(),
        &many(8),
        &RecordStore::new(tempfile::tempdir().expect("tempdir").path()),
    );
    assert_eq!(report.done, serial.done);
    assert_eq!(state.load().expect("load").len(), 8);
}

#[test]
fn parallel_run_stays_within_its_bound() {
    for jobs in [1, 3] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = RecordStore::new(tmp.path());
        let host = SharedFake::default();
        let report = host.run(&many(9), &state, jobs);
        assert_eq!(report.done.len(), 1 + 9 * 2);
        assert_eq!(host.most_active(), jobs, "jobs = {jobs}");
    }
}

#[test]
fn parallel_failure_skips_dependants_and_leaves_nothing_half_made() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = RecordStore::new(tmp.path());
    let mut host = SharedFake::default();
    host.fail.insert("start c3".into(), "no such file".into());
    let report = host.run(&many(8), &state, 4);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        report.failed[0].to_string(),
        "start `c3`: fake step: no such file"
    );
    // c5 depends on c3: never touched; everything else went on.
    assert_eq!(
        report
            .skipped
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["+ create c5", "> start c5"]
    );
    let calls = host.calls();
    assert!(!calls.iter().any(|c| c.ends_with(" c5")), "{calls:?}");
    for i in [0, 1, 2, 4, 6, 7] {
        assert!(calls.contains(&format!("start c{i}")), "c{i}: {calls:?}");
    }
    let recorded = state.load().expect("load");
    assert!(!recorded.contains_key("c5"));
    assert_eq!(recorded.len(), 7, "c3 was created, so it is recorded");
}

#[test]
fn parallel_create_whose_record_fails_is_rolled_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = unwritable_store(tmp.path());
    let host = SharedFake::default();
    let report = host.run(&many(4), &state, 4);
    assert_eq!(report.failed.len(), 3, "every create failed to record");
    assert!(report.failed.iter().all(|f| f.rollback.is_none()));
    // The starts of c0..c2, and c3 (it depends on c1 and c2) whole.
    assert_eq!(report.skipped.len(), 3 + 2);
    let calls = host.calls();
    for i in 0..3 {
        assert!(calls.contains(&format!("remove c{i}")), "c{i}: {calls:?}");
        assert!(!calls.contains(&format!("start c{i}")), "c{i}: {calls:?}");
    }
    assert!(!calls.iter().any(|c| c.ends_with(" c3")), "{calls:?}");
}

#[test]
fn parallel_removal_goes_dependants_first() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = RecordStore::new(tmp.path());
    let host = SharedFake::default();
    host.run(&many(8), &state, 4);
    let empty = SharedFake::default();
    let report = empty.run(
        "version: 1\nimages: { bb: { path: /bb.tar } }\ncontainers: {}\n",
        &state,
        4,
    );
    assert_eq!(report.done.len(), 8);
    let calls = empty.calls();
    for (dep, dependant) in [("c1", "c3"), ("c2", "c3"), ("c3", "c5")] {
        assert!(
            position(&calls, &format!("remove {dependant}"))
                < position(&calls, &format!("remove {dep}")),
            "{dep} removed before {dependant}: {calls:?}"
        );
    }
    assert!(empty.most_active() > 1, "nothing removed at the same time");
    assert!(state.load().expect("load").is_empty());
}
