//! `berth fleet status --mqtt URL`: the operator's view of a fleet, from
//! nothing but the broker. It subscribes to every device's retained status
//! and presence (`PREFIX+/status`, `PREFIX+/presence`), collects for a few
//! seconds, and prints a row per device and a summary.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::args::{Cmd, Opt, Parsed};
use super::broker::{self, BrokerArgs, MAX_STATUS};
use super::error::Result;
use super::schedule::random_u64;
use super::{Global, UsageError};
use crate::fleet::mqtt::{check_name, Shown};
use crate::host::mqtt::Session;

/// `berth fleet`'s table.
pub const CMD: Cmd = Cmd {
    subcommands: &[Cmd {
        opts: &[
            broker::MQTT.required(),
            broker::MQTT_USER,
            broker::MQTT_PASSWORD_FILE,
            broker::TOPIC_PREFIX,
            Opt::value(
                "collect",
                "DURATION",
                "How long to collect the retained messages [default: 3s]",
            ),
            Opt::flag("json", "Print JSON"),
        ],
        ..Cmd::new(
            "status",
            "Every device's version, last apply and unhealthy containers, from the broker",
        )
    }],
    ..Cmd::new("fleet", "The fleet as its MQTT broker sees it")
};

/// Arguments of `berth fleet status`.
#[derive(Debug)]
pub struct FleetArgs {
    pub broker: BrokerArgs,
    pub collect: Duration,
    pub json: bool,
}

impl FleetArgs {
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        let collect = match p.string("collect")? {
            None => Duration::from_secs(3),
            Some(t) => match crate::manifest::units::duration_secs(&t) {
                Ok(s) if s > 0 => Duration::from_secs(u64::from(s)),
                _ => {
                    return Err(UsageError(format!(
                        "--collect: \"{t}\" is not a duration above zero; use e.g. 3s"
                    )))
                }
            },
        };
        Ok(FleetArgs {
            broker: BrokerArgs::from_parsed(p)?,
            collect,
            json: p.has("json"),
        })
    }
}

/// Devices collected at most: anyone who may publish on the broker can
/// invent ids, and each entry may hold a 16 KiB status.
const MAX_DEVICES: usize = 100_000;

/// What the broker holds for one device.
#[derive(Debug, Default, Serialize)]
pub struct Device {
    pub device: String,
    /// From the presence topic: `None` when it has none.
    pub online: Option<bool>,
    /// The status document as published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    /// Why the status could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Connect, collect, print.
pub fn run(global: &Global, args: &FleetArgs) -> Result<ExitCode> {
    let Some(url) = &args.broker.url else {
        return Err(UsageError("`fleet status` needs --mqtt URL".into()).into());
    };
    let ca = global.fetch.manifest_options().ca_bundle;
    let id = format!("berth-fleet-{:08x}", random_u64() % (1 << 32));
    let mut options = args.broker.options(url, &id, ca, None)?;
    options.max_packet = 4 * MAX_STATUS;
    options.max_queued = MAX_DEVICES;
    let prefix = &args.broker.prefix;
    let mut s = Session::connect(&options)?;
    s.subscribe(&[format!("{prefix}+/status"), format!("{prefix}+/presence")])?;
    let mut devices: BTreeMap<String, Device> = BTreeMap::new();
    let until = Instant::now() + args.collect;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Some(msg) = s.next(left)? else { continue };
        take(&mut devices, prefix, &msg.topic, &msg.payload);
    }
    s.disconnect();
    let devices: Vec<Device> = devices.into_values().collect();
    if args.json {
        let doc = FleetDoc {
            devices: &devices,
            summary: summary(&devices),
        };
        outln!("{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        print_table(&devices)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// File one message under its device.
pub fn take(devices: &mut BTreeMap<String, Device>, prefix: &str, topic: &str, payload: &[u8]) {
    let Some((id, kind)) = topic
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once('/'))
    else {
        return;
    };
    if check_name("device id", id).is_err() {
        return;
    }
    if devices.len() >= MAX_DEVICES && !devices.contains_key(id) {
        return;
    }
    let d = devices.entry(id.to_string()).or_insert_with(|| Device {
        device: id.to_string(),
        ..Device::default()
    });
    match kind {
        "presence" => d.online = Some(payload == b"online"),
        "status" if payload.len() > MAX_STATUS => {
            d.problem = Some(format!("status of {} bytes, over the limit", payload.len()))
        }
        "status" => match serde_json::from_slice::<Value>(payload) {
            Ok(v) if v["device"].as_str() == Some(id) => d.status = Some(v),
            Ok(v) => {
                d.problem = Some(format!(
                    "status names device `{}`, not `{id}` (check the broker's ACL)",
                    Shown(v["device"].as_str().unwrap_or_default().as_bytes())
                ))
            }
            Err(_) => d.problem = Some(format!("unreadable status \"{}\"", Shown(payload))),
        },
        _ => {}
    }
}

/// The version a device runs healthy: `12`, or a sha256 prefix, or `-`.
fn version(status: Option<&Value>) -> String {
    let m = status.map(|s| &s["manifest"]);
    match m {
        Some(m) if m["version"].is_u64() => m["version"].to_string(),
        Some(m) if m["sha256"].is_string() => {
            let s = m["sha256"].as_str().unwrap_or_default();
            format!("sha256:{}", &s[..s.len().min(12)])
        }
        _ => "-".into(),
    }
}

fn unhealthy(status: &Value) -> Vec<String> {
    status["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["health"] == "unhealthy" || !matches!(c["state"].as_str(), Some("running")))
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// How many devices run each version, are online, rolled back, unhealthy.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub devices: usize,
    pub online: usize,
    /// Devices per version running healthy, in order of first sight.
    pub versions: Vec<Count>,
    /// Devices per last apply's result.
    pub results: Vec<Count>,
    /// Devices with a container not running, or unhealthy.
    pub unhealthy: usize,
}

#[derive(Debug, Serialize)]
pub struct Count {
    pub value: String,
    pub devices: usize,
}

fn count(counts: &mut Vec<Count>, value: String) {
    match counts.iter_mut().find(|c| c.value == value) {
        Some(c) => c.devices += 1,
        None => counts.push(Count { value, devices: 1 }),
    }
}

fn summary(devices: &[Device]) -> Summary {
    let mut sum = Summary {
        devices: devices.len(),
        ..Summary::default()
    };
    for d in devices {
        count(&mut sum.versions, version(d.status.as_ref()));
        if let Some(r) = d
            .status
            .as_ref()
            .and_then(|s| s["last_apply"]["result"].as_str())
        {
            count(&mut sum.results, r.to_string());
        }
        sum.online += usize::from(d.online == Some(true));
        sum.unhealthy += usize::from(d.status.as_ref().is_some_and(|s| !unhealthy(s).is_empty()));
    }
    sum
}

/// `fleet status --json`.
#[derive(Serialize)]
struct FleetDoc<'a> {
    devices: &'a [Device],
    summary: Summary,
}

fn print_table(devices: &[Device]) -> Result<()> {
    outln!(
        "{:<24} {:<12} {:<20} {:<20} {:<20} {:<7}",
        "DEVICE",
        "VERSION",
        "LAST-APPLY",
        "NOT-RUNNING-WELL",
        "LAST-SEEN",
        "ONLINE"
    )?;
    for d in devices {
        let s = d.status.as_ref();
        let result = s
            .and_then(|s| {
                let a = &s["last_apply"];
                let r = a["result"].as_str()?;
                Some(match a["version"].as_u64() {
                    Some(v) => format!("{r} {v}"),
                    None => r.to_string(),
                })
            })
            .unwrap_or_else(|| "-".into());
        let bad = s.map(unhealthy).unwrap_or_default();
        let bad = if bad.is_empty() {
            "-".into()
        } else {
            bad.join(",")
        };
        let seen = s.and_then(|s| s["time"].as_str()).unwrap_or("-");
        let online = match d.online {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        outln!(
            "{:<24} {:<12} {:<20} {:<20} {:<20} {:<7}",
            d.device,
            version(s),
            result,
            bad,
            seen,
            online
        )?;
        if let Some(why) = s.and_then(|s| s["last_apply"]["reason"].as_str()) {
            outln!("  reason: {}", why.chars().take(200).collect::<String>())?;
        }
        if let Some(p) = &d.problem {
            outln!("  problem: {p}")?;
        }
    }
    let sum = summary(devices);
    let list = |counts: &[Count], sep: &str| {
        let items: Vec<String> = counts
            .iter()
            .map(|c| format!("{}{sep}{}", c.devices, c.value))
            .collect();
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(", ")
        }
    };
    outln!(
        "\n{} device(s), {} online; {}; last apply: {}; {} with a container not running well",
        sum.devices,
        sum.online,
        list(&sum.versions, " on "),
        list(&sum.results, " "),
        sum.unhealthy
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_filed_by_device_and_checked() {
        let mut ds = BTreeMap::new();
        let ok = br#"{"device":"d1","manifest":{"sha256":"ab","version":2},"last_apply":{"result":"applied","version":2},"containers":[{"name":"web","state":"running","health":"unhealthy","restarts":1}]}"#;
        take(&mut ds, "berth/", "berth/d1/status", ok);
        take(&mut ds, "berth/", "berth/d1/presence", b"online");
        take(&mut ds, "berth/", "berth/d2/presence", b"offline");
        take(&mut ds, "berth/", "berth/d3/status", br#"{"device":"d1"}"#);
        take(&mut ds, "berth/", "berth/d4/status", b"\xff garbage");
        take(&mut ds, "berth/", "other/d5/status", ok);
        assert_eq!(ds.len(), 4);
        assert_eq!(version(ds["d1"].status.as_ref()), "2");
        assert_eq!(ds["d1"].online, Some(true));
        assert_eq!(ds["d2"].online, Some(false));
        assert!(ds["d3"].problem.as_ref().unwrap().contains("not `d3`"));
        assert!(ds["d4"].problem.as_ref().unwrap().contains("unreadable"));
        assert_eq!(unhealthy(ds["d1"].status.as_ref().unwrap()), ["web"]);
        let devices: Vec<Device> = ds.into_values().collect();
        let s = summary(&devices);
        assert_eq!((s.devices, s.online, s.unhealthy), (4, 1, 1));
        let n = |c: &[Count], v: &str| c.iter().find(|c| c.value == v).map(|c| c.devices);
        assert_eq!(n(&s.versions, "2"), Some(1));
        assert_eq!(n(&s.versions, "-"), Some(3));
        assert_eq!(n(&s.results, "applied"), Some(1));
    }

    #[test]
    fn invented_ids_and_oversized_statuses_are_bounded() {
        let mut ds = BTreeMap::new();
        for i in 0..MAX_DEVICES + 10 {
            take(
                &mut ds,
                "berth/",
                &format!("berth/x{i}/presence"),
                b"online",
            );
        }
        assert_eq!(ds.len(), MAX_DEVICES);
        let big = vec![b' '; MAX_STATUS + 1];
        take(&mut ds, "berth/", "berth/x1/status", &big);
        assert!(ds["x1"]
            .problem
            .as_ref()
            .unwrap()
            .contains("over the limit"));
        assert!(ds["x1"].status.is_none());
    }
}
