//! Which steps of a plan may run at the same time: the plan is cut into
//! jobs (the consecutive steps of one container, or one image fetch, or one
//! network removal), and each job lists the earlier jobs it must wait for.
//!
//! A job waits for the earlier jobs of the containers it depends on and of
//! the containers that depend on it (so removals still go dependents first
//! and starts dependencies first), and for the last barrier before it. Image
//! fetches, network removals and a container whose dependencies are unknown
//! (a damaged record) are barriers: they wait for everything before them and
//! everything after waits for them. Related jobs thus run in plan order, as a
//! one-at-a-time run would; unrelated ones may overlap. Pure: no I/O.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::plan::{Action, Plan};

/// One unit of work for a worker thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The steps, as indices into `plan.actions`, run in order.
    pub steps: Range<usize>,
    /// Earlier jobs (indices into the job list) that must finish first.
    pub after: Vec<usize>,
}

/// Cut `plan` into jobs. `deps(name)` gives what container `name` depends
/// on, or None when that is not known (the job then becomes a barrier).
pub fn jobs(plan: &Plan, deps: impl Fn(&str) -> Option<Vec<String>>) -> Vec<Job> {
    // (container name or None for a barrier, its dependencies) per job.
    let mut made: Vec<(Option<String>, Vec<String>)> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut last_barrier: Option<usize> = None;
    let mut i = 0;
    while i < plan.actions.len() {
        let name = container_of(&plan.actions[i]);
        let mut end = i + 1;
        if let Some(n) = name {
            while end < plan.actions.len() && container_of(&plan.actions[end]) == Some(n) {
                end += 1;
            }
        }
        let known = name.and_then(|n| deps(n).map(|d| (n.to_string(), d)));
        let here = jobs.len();
        let after: Vec<usize> = match &known {
            None => (0..here).collect(),
            Some((n, ds)) => {
                let start = last_barrier.map_or(0, |b| b + 1);
                let related: BTreeSet<usize> = (start..here)
                    .filter(|&j| match &made[j] {
                        (Some(other), their) => {
                            other == n || ds.contains(other) || their.contains(n)
                        }
                        (None, _) => true,
                    })
                    .chain(last_barrier)
                    .collect();
                related.into_iter().collect()
            }
        };
        if known.is_none() {
            last_barrier = Some(here);
        }
        made.push(match known {
            Some((n, ds)) => (Some(n), ds),
            None => (None, Vec::new()),
        });
        jobs.push(Job {
            steps: i..end,
            after,
        });
        i = end;
    }
    jobs
}

/// The container a step acts on; None for an image or a network.
pub fn container_of(action: &Action) -> Option<&str> {
    match action {
        Action::FetchImage { .. } | Action::RemoveNetwork { .. } => None,
        other => Some(other.target()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn create(c: &str) -> [Action; 2] {
        [
            Action::Create {
                container: c.into(),
            },
            Action::Start {
                container: c.into(),
            },
        ]
    }

    fn deps_of<'a>(
        table: &'a [(&'a str, &'a [&'a str])],
    ) -> impl Fn(&str) -> Option<Vec<String>> + 'a {
        let map: BTreeMap<&str, Vec<String>> = table
            .iter()
            .map(|(n, ds)| (*n, ds.iter().map(|d| d.to_string()).collect()))
            .collect();
        move |n| map.get(n).cloned()
    }

    #[test]
    fn independent_containers_wait_for_nothing_but_the_fetch() {
        let mut actions = vec![Action::FetchImage {
            image: "bb".into(),
            sha256: None,
        }];
        for c in ["a", "b", "c"] {
            actions.extend(create(c));
        }
        let plan = Plan { actions };
        let jobs = jobs(&plan, deps_of(&[("a", &[]), ("b", &[]), ("c", &[])]));
        assert_eq!(
            jobs,
            [
                Job {
                    steps: 0..1,
                    after: vec![]
                },
                Job {
                    steps: 1..3,
                    after: vec![0]
                },
                Job {
                    steps: 3..5,
                    after: vec![0]
                },
                Job {
                    steps: 5..7,
                    after: vec![0]
                },
            ]
        );
    }

    #[test]
    fn a_dependant_waits_for_its_dependencies_only() {
        let mut actions = Vec::new();
        for c in ["db", "solo", "cache", "web"] {
            actions.extend(create(c));
        }
        let plan = Plan { actions };
        let table: &[(&str, &[&str])] = &[
            ("db", &[]),
            ("solo", &[]),
            ("cache", &["db"]),
            ("web", &["db", "cache"]),
        ];
        let after: Vec<Vec<usize>> = jobs(&plan, deps_of(table))
            .into_iter()
            .map(|j| j.after)
            .collect();
        assert_eq!(after, [vec![], vec![], vec![0], vec![0, 2]]);
    }

    #[test]
    fn removals_wait_for_their_dependants_and_networks_for_everything() {
        // web depended on db: the plan removes web first; db must wait.
        let plan = Plan {
            actions: vec![
                Action::Remove {
                    container: "web".into(),
                },
                Action::Remove {
                    container: "other".into(),
                },
                Action::Remove {
                    container: "db".into(),
                },
                Action::RemoveNetwork {
                    network: "lan".into(),
                },
            ],
        };
        let table: &[(&str, &[&str])] = &[("web", &["db"]), ("other", &[]), ("db", &[])];
        let after: Vec<Vec<usize>> = jobs(&plan, deps_of(table))
            .into_iter()
            .map(|j| j.after)
            .collect();
        assert_eq!(after, [vec![], vec![], vec![0], vec![0, 1, 2]]);
    }

    #[test]
    fn unknown_dependencies_make_a_barrier() {
        let plan = Plan {
            actions: vec![
                Action::Remove {
                    container: "a".into(),
                },
                Action::Remove {
                    container: "damaged".into(),
                },
                Action::Remove {
                    container: "b".into(),
                },
            ],
        };
        let after: Vec<Vec<usize>> = jobs(&plan, deps_of(&[("a", &[]), ("b", &[])]))
            .into_iter()
            .map(|j| j.after)
            .collect();
        assert_eq!(after, [vec![], vec![0], vec![1]]);
    }

    #[test]
    fn the_steps_of_one_container_stay_in_one_job() {
        let plan = Plan {
            actions: vec![
                Action::UpdateLimits {
                    container: "a".into(),
                    from: Default::default(),
                    to: Default::default(),
                },
                Action::Start {
                    container: "a".into(),
                },
                Action::Stop {
                    container: "b".into(),
                },
            ],
        };
        let steps: Vec<Range<usize>> = jobs(&plan, deps_of(&[("a", &[]), ("b", &[])]))
            .into_iter()
            .map(|j| j.steps)
            .collect();
        assert_eq!(steps, [0..2, 2..3]);
    }
}
