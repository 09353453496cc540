//! Profile merging, as LXD profiles work: a container lists profiles; they are
//! applied in order and the container's own fields go on top.
//!
//! Rules (docs/manifest.md, "Profiles"):
//! - single values (image, command, hostname, resources.memory, ...): the last one set wins;
//! - maps (env, rlimits) merge key by key, the last one wins per key;
//! - `resources`, `namespaces` and `capabilities` merge field by field;
//! - set-like lists are unions in order: capabilities.keep and .drop, devices.allow
//!   and .deny, depends_on, namespaces.host;
//! - mounts merge by target and network attachments by network name: a later entry
//!   with the same key replaces the earlier one in place;
//! - other lists (command, args, dns, dns_search) are replaced whole.

use crate::manifest::schema::{
    Attachment, Capabilities, ContainerFields, Cpu, Cpuset, Devices, Io, Mount, Namespaces,
    Resources,
};

/// `over` applied on top of `base`.
pub fn merge(base: &ContainerFields, over: &ContainerFields) -> ContainerFields {
    let mut env = base.env.clone();
    env.extend(over.env.clone());
    let mut rlimits = base.rlimits.clone();
    rlimits.extend(over.rlimits.clone());
    ContainerFields {
        profiles: over.profiles.clone(),
        image: last(&base.image, &over.image),
        command: last(&base.command, &over.command),
        args: last(&base.args, &over.args),
        boot: last(&base.boot, &over.boot),
        init: last(&base.init, &over.init),
        env,
        workdir: last(&base.workdir, &over.workdir),
        user: last(&base.user, &over.user),
        hostname: last(&base.hostname, &over.hostname),
        autostart: last(&base.autostart, &over.autostart),
        restart: last(&base.restart, &over.restart),
        stop_signal: last(&base.stop_signal, &over.stop_signal),
        stop_timeout: last(&base.stop_timeout, &over.stop_timeout),
        depends_on: union(&base.depends_on, &over.depends_on),
        capabilities: both(&base.capabilities, &over.capabilities, |b, o| {
            Capabilities {
                keep: union(&b.keep, &o.keep),
                drop: union(&b.drop, &o.drop),
            }
        }),
        namespaces: both(&base.namespaces, &over.namespaces, |b, o| Namespaces {
            user: last(&b.user, &o.user),
            time: last(&b.time, &o.time),
            host: union(&b.host, &o.host),
        }),
        resources: both(&base.resources, &over.resources, merge_resources),
        devices: both(&base.devices, &over.devices, |b, o| Devices {
            allow: union(&b.allow, &o.allow),
            deny: union(&b.deny, &o.deny),
        }),
        mounts: by_key(&base.mounts, &over.mounts, |m: &Mount| m.target.clone()),
        network: by_key(&base.network, &over.network, |a: &Attachment| {
            a.network.clone()
        }),
        dns: last(&base.dns, &over.dns),
        dns_search: last(&base.dns_search, &over.dns_search),
        volatile: last(&base.volatile, &over.volatile),
        readonly: last(&base.readonly, &over.readonly),
        seccomp: last(&base.seccomp, &over.seccomp),
        rlimits,
        // One probe: the last one set wins whole.
        health: last(&base.health, &over.health),
    }
}

fn merge_resources(b: &Resources, o: &Resources) -> Resources {
    Resources {
        memory: last(&b.memory, &o.memory),
        memory_low: last(&b.memory_low, &o.memory_low),
        swap: last(&b.swap, &o.swap),
        cpu: both(&b.cpu, &o.cpu, |b, o| Cpu {
            weight: last(&b.weight, &o.weight),
            max: last(&b.max, &o.max),
        }),
        pids: last(&b.pids, &o.pids),
        cpuset: both(&b.cpuset, &o.cpuset, |b, o| Cpuset {
            cpus: last(&b.cpus, &o.cpus),
            mems: last(&b.mems, &o.mems),
        }),
        io: both(&b.io, &o.io, |b, o| Io {
            weight: last(&b.weight, &o.weight),
        }),
    }
}

fn last<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
    over.clone().or_else(|| base.clone())
}

fn both<T: Clone>(base: &Option<T>, over: &Option<T>, f: impl Fn(&T, &T) -> T) -> Option<T> {
    match (base, over) {
        (Some(b), Some(o)) => Some(f(b, o)),
        _ => last(base, over),
    }
}

fn union(base: &[String], over: &[String]) -> Vec<String> {
    let mut out = base.to_vec();
    for item in over {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// Entries of `over` replace the `base` entry with the same key; duplicates within
/// `over` itself are kept so that validation reports them.
fn by_key<T: Clone>(base: &[T], over: &[T], key: impl Fn(&T) -> String) -> Vec<T> {
    let mut out = base.to_vec();
    let mut replaced = vec![false; base.len()];
    for item in over {
        let slot = (0..base.len()).find(|i| !replaced[*i] && key(&base[*i]) == key(item));
        match slot {
            Some(i) => {
                out[i] = item.clone();
                replaced[i] = true;
            }
            None => out.push(item.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> ContainerFields {
        crate::manifest::yaml::from_str(text).expect("test yaml")
    }

    #[test]
    fn scalars_last_wins_and_maps_merge_by_key() {
        let base = yaml(
            "{image: a, hostname: h1, env: {A: '1', B: '2'}, resources: {memory: 16M, pids: 10}}",
        );
        let over = yaml("{hostname: h2, env: {B: '3'}, resources: {pids: 20}}");
        let m = merge(&base, &over);
        assert_eq!(m.image.as_deref(), Some("a"));
        assert_eq!(m.hostname.as_deref(), Some("h2"));
        assert_eq!(m.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(m.env.get("B").map(String::as_str), Some("3"));
        let r = m.resources.expect("resources");
        assert_eq!((r.memory.as_deref(), r.pids), (Some("16M"), Some(20)));
    }

    #[test]
    fn sets_union_and_keyed_lists_replace_in_place() {
        let base = yaml(
            "{capabilities: {drop: [all], keep: [net_bind_service]}, depends_on: [db],
              mounts: [{type: tmpfs, target: /tmp, size: 4M}, {type: bind, source: /a, target: /a}]}",
        );
        let over = yaml(
            "{capabilities: {keep: [net_raw, net_bind_service]}, depends_on: [db, dns],
              mounts: [{type: tmpfs, target: /tmp, size: 8M}]}",
        );
        let m = merge(&base, &over);
        let caps = m.capabilities.expect("caps");
        assert_eq!(caps.drop, ["all"]);
        assert_eq!(caps.keep, ["net_bind_service", "net_raw"]);
        assert_eq!(m.depends_on, ["db", "dns"]);
        assert_eq!(m.mounts.len(), 2);
        assert_eq!(m.mounts[0].size.as_deref(), Some("8M"));
        assert_eq!(m.mounts[1].target, "/a");
    }

    #[test]
    fn duplicates_within_one_list_survive_for_validation() {
        let m = merge(
            &ContainerFields::default(),
            &yaml("{mounts: [{type: tmpfs, target: /a}, {type: tmpfs, target: /a}]}"),
        );
        assert_eq!(m.mounts.len(), 2);
    }

    #[test]
    fn whole_lists_are_replaced() {
        let m = merge(
            &yaml("{command: [a, b], dns: [1.1.1.1]}"),
            &yaml("{command: [c]}"),
        );
        assert_eq!(m.command, Some(vec!["c".to_string()]));
        assert_eq!(m.dns, Some(vec!["1.1.1.1".to_string()]));
    }
}
