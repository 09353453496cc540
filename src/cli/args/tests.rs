use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use super::*;
use crate::cli::{Cli, Command, GLOBAL};

const GLOBALS: &[Opt] = &[
    Opt::path("root", "DIR", "Store").env("BERTH_TEST_ARGS_ROOT"),
    Opt::value("level", "N", "A level").env("BERTH_TEST_ARGS_UNSET"),
];

static TOP: Cmd = Cmd {
    subcommands: &[
        Cmd {
            args: &[Pos::default("MANIFEST", "Manifest", "/etc/m.yaml")],
            opts: &[
                Opt::flag("json", "JSON"),
                Opt::flag("raw", "Raw"),
                Opt::flag("serve", "Serve").short('s'),
                Opt::value("interval", "SECS", "Every SECS").short('i'),
                Opt::value("var", "KEY=VALUE", "A variable").repeat(),
                Opt::value("mode", "MODE", "Mode").default("fast"),
            ],
            conflicts: &[("json", "raw")],
            requires: &[("interval", "serve")],
            ..Cmd::new("run", "Run a manifest")
        },
        Cmd {
            args: &[Pos::required("NAME", "Name")],
            opts: &[Opt::flag("tty", "TTY").short('t')],
            last: Some(("COMMAND", "The command")),
            ..Cmd::new("exec", "Run a command")
        },
        Cmd {
            opts: &[Opt::path("target", "DIR", "Target").required()],
            subcommands: &[Cmd::new("one", "First"), Cmd::new("two", "Second")],
            ..Cmd::new("group", "A group")
        },
    ],
    ..Cmd::new("berth", "Test root")
};

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn ok(args: &[&str]) -> Parsed {
    match parse(&TOP, GLOBALS, "9.9", os(args)) {
        Ok(p) => p,
        Err(e) => panic!("{args:?}: {e:?}"),
    }
}

fn usage_err(args: &[&str]) -> String {
    match parse(&TOP, GLOBALS, "9.9", os(args)) {
        Err(Stop::Usage(e)) => e.0,
        other => panic!("{args:?}: expected a usage error, got {other:?}"),
    }
}

fn printed(args: &[&str]) -> String {
    match parse(&TOP, GLOBALS, "9.9", os(args)) {
        Err(Stop::Print(text)) => text,
        other => panic!("{args:?}: expected help text, got {other:?}"),
    }
}

#[test]
fn both_value_forms_and_defaults() {
    let p = ok(&["run", "--interval=5", "--serve", "m.yaml"]);
    assert_eq!(p.commands, ["run"]);
    assert_eq!(p.num::<u64>("interval").unwrap(), Some(5));
    assert!(p.has("serve") && !p.has("json"));
    assert_eq!(p.arg(0).unwrap().as_deref(), Some("m.yaml"));
    assert_eq!(p.string("mode").unwrap().as_deref(), Some("fast"));
    let p = ok(&["run", "--interval", "7", "-s", "--mode", "slow"]);
    assert_eq!(p.num::<u64>("interval").unwrap(), Some(7));
    assert_eq!(p.arg(0).unwrap().as_deref(), Some("/etc/m.yaml"));
    assert_eq!(p.string("mode").unwrap().as_deref(), Some("slow"));
}

#[test]
fn short_clusters_and_attached_values() {
    let p = ok(&["run", "-si9"]);
    assert!(p.has("serve"));
    assert_eq!(p.string("interval").unwrap().as_deref(), Some("9"));
    let p = ok(&["run", "-s", "-i=3"]);
    assert_eq!(p.string("interval").unwrap().as_deref(), Some("3"));
    let p = ok(&["run", "-si", "4"]);
    assert_eq!(p.string("interval").unwrap().as_deref(), Some("4"));
}

#[test]
fn repeatable_options_collect_in_order() {
    let p = ok(&["run", "--var", "a=1", "--var=b=2"]);
    assert_eq!(p.strings("var").unwrap(), ["a=1", "b=2"]);
    assert!(ok(&["run"]).strings("var").unwrap().is_empty());
}

#[test]
fn unknown_options_and_commands_name_the_command_and_its_help() {
    assert_eq!(
        usage_err(&["run", "--foo"]),
        "unknown option `--foo` for `berth run`; see `berth run --help`"
    );
    assert_eq!(
        usage_err(&["run", "-x"]),
        "unknown option `-x` for `berth run`; see `berth run --help`"
    );
    assert_eq!(
        usage_err(&["run", "-sé"]),
        "unknown option `-sé` for `berth run`; see `berth run --help`"
    );
    assert_eq!(
        usage_err(&["frob"]),
        "unknown command `frob`; see `berth --help`"
    );
    assert_eq!(
        usage_err(&["group", "--target", "/t", "three"]),
        "unknown command `three` for `berth group`; see `berth group --help`"
    );
    assert_eq!(usage_err(&[]), "no command given; see `berth --help`");
    assert_eq!(
        usage_err(&["run", "a.yaml", "b.yaml"]),
        "unexpected argument `b.yaml` for `berth run`; see `berth run --help`"
    );
}

#[test]
fn missing_values_and_values_for_flags() {
    assert_eq!(
        usage_err(&["run", "--serve", "--interval"]),
        "option `--interval` needs a value: `--interval SECS`; see `berth run --help`"
    );
    assert_eq!(
        usage_err(&["run", "-s", "-i"]),
        "option `--interval` needs a value: `--interval SECS`; see `berth run --help`"
    );
    assert_eq!(
        usage_err(&["run", "--json=yes"]),
        "option `--json` takes no value; see `berth run --help`"
    );
    assert_eq!(
        usage_err(&["run", "--root="]),
        "option `--root` needs a value: `--root DIR`; see `berth run --help`"
    );
    assert_eq!(
        usage_err(&["run", "--json", "--json"]),
        "option `--json` given twice; see `berth run --help`"
    );
    let p = ok(&["run", "--serve", "--interval", "soon"]);
    assert_eq!(
        p.num::<u64>("interval").unwrap_err().0,
        "invalid value `soon` for `--interval`: invalid digit found in string; \
         see `berth run --help`"
    );
}

#[test]
fn conflicts_requires_and_required() {
    assert_eq!(
        usage_err(&["run", "--json", "--raw"]),
        "`--json` and `--raw` cannot be used together; see `berth run --help`"
    );
    assert_eq!(
        usage_err(&["run", "--interval", "5"]),
        "`--interval` needs `--serve`; see `berth run --help`"
    );
    assert_eq!(
        usage_err(&["group", "one"]),
        "`berth group one` needs `--target DIR`; see `berth group one --help`"
    );
    assert_eq!(
        usage_err(&["group", "--target", "/t"]),
        "`berth group` needs a subcommand; see `berth group --help`"
    );
    let p = ok(&["group", "--target", "/t", "two"]);
    assert_eq!(p.commands, ["group", "two"]);
    assert_eq!(p.path("target"), Some(PathBuf::from("/t")));
    assert_eq!(
        usage_err(&["exec"]),
        "`berth exec` needs NAME; see `berth exec --help`"
    );
}

#[test]
fn env_fallback_and_the_command_line_wins() {
    std::env::set_var("BERTH_TEST_ARGS_ROOT", "/from/env");
    assert_eq!(ok(&["run"]).path("root"), Some(PathBuf::from("/from/env")));
    let p = ok(&["--root", "/from/arg", "run"]);
    assert_eq!(p.path("root"), Some(PathBuf::from("/from/arg")));
    assert_eq!(p.string("level").unwrap(), None, "unset variable: no value");
    std::env::set_var("BERTH_TEST_ARGS_ROOT", "");
    assert_eq!(ok(&["run"]).path("root"), None, "empty counts as unset");
    std::env::remove_var("BERTH_TEST_ARGS_ROOT");
}

#[test]
fn global_options_before_and_after_the_command() {
    let before = ok(&["--root", "/a", "--level=3", "run", "m.yaml"]);
    let after = ok(&["run", "m.yaml", "--root=/a", "--level", "3"]);
    for p in [before, after] {
        assert_eq!(p.path("root"), Some(PathBuf::from("/a")));
        assert_eq!(p.string("level").unwrap().as_deref(), Some("3"));
        assert_eq!(p.arg(0).unwrap().as_deref(), Some("m.yaml"));
    }
    let p = ok(&[
        "group", "--root", "/r", "--target", "/t", "one", "--level", "1",
    ]);
    assert_eq!(p.path("root"), Some(PathBuf::from("/r")));
    assert_eq!(p.string("level").unwrap().as_deref(), Some("1"));
}

#[test]
fn double_dash_ends_options() {
    let p = ok(&[
        "exec", "--root", "/r", "-t", "box", "--", "sh", "-c", "--help",
    ]);
    assert_eq!(p.required_arg(0).unwrap(), "box");
    assert!(p.has("tty"));
    assert_eq!(p.last, ["sh", "-c", "--help"]);
    assert_eq!(
        usage_err(&["exec", "box", "sh"]),
        "unexpected argument `sh` for `berth exec`; put COMMAND after `--`; \
         see `berth exec --help`"
    );
    assert_eq!(
        usage_err(&["exec", "box", "--"]),
        "`berth exec` needs COMMAND after `--`; see `berth exec --help`"
    );
    // Without a trailing command, words after `--` are arguments, even `-x`.
    let p = ok(&["run", "--", "--odd.yaml"]);
    assert_eq!(p.arg(0).unwrap().as_deref(), Some("--odd.yaml"));
    // A lone `-` is an argument (stdin), not an option.
    assert_eq!(ok(&["run", "-"]).arg(0).unwrap().as_deref(), Some("-"));
}

#[test]
fn non_utf8_paths_pass_through() {
    let odd = OsString::from_vec(b"/tmp/\xff\xfe".to_vec());
    let mut args = os(&["run", "--root"]);
    args.push(odd.clone());
    let p = parse(&TOP, GLOBALS, "9.9", args).unwrap();
    assert_eq!(p.path("root"), Some(PathBuf::from(odd.clone())));
    let mut args = os(&["run", "--level"]);
    args.push(odd);
    let p = parse(&TOP, GLOBALS, "9.9", args).unwrap();
    assert!(p.string("level").unwrap_err().0.contains("not valid UTF-8"));
}

#[test]
fn help_and_version() {
    let top = printed(&["--help"]);
    assert!(
        top.starts_with("Test root\n\nUsage: berth [OPTIONS] COMMAND\n"),
        "{top}"
    );
    assert!(top.contains("\n  run    Run a manifest\n"), "{top}");
    assert!(top.contains("  -V, --version"), "{top}");
    let run = printed(&["run", "--json", "-h"]);
    assert!(
        run.starts_with("Run a manifest\n\nUsage: berth run [OPTIONS] [MANIFEST]\n"),
        "{run}"
    );
    assert!(run.contains("--interval SECS"), "{run}");
    assert!(run.contains("Mode [default: fast]"), "{run}");
    assert!(
        run.contains("  MANIFEST  Manifest [default: /etc/m.yaml]"),
        "{run}"
    );
    assert!(
        run.contains("      --root DIR  Store [env: BERTH_TEST_ARGS_ROOT]"),
        "{run}"
    );
    assert!(!run.contains("--version"), "{run}");
    assert_eq!(printed(&["help", "run"]), run);
    let exec = printed(&["exec", "--help"]);
    assert!(
        exec.contains("Usage: berth exec [OPTIONS] NAME -- COMMAND...\n"),
        "{exec}"
    );
    let group = printed(&["group", "--help"]);
    assert!(
        group.contains("Usage: berth group [OPTIONS] --target DIR COMMAND\n"),
        "{group}"
    );
    assert_eq!(printed(&["--version"]), "berth 9.9\n");
    assert_eq!(printed(&["-V"]), "berth 9.9\n");
    assert_eq!(
        usage_err(&["run", "--version"]),
        "unknown option `--version` for `berth run`; see `berth run --help`"
    );
}

#[test]
fn berths_own_table_parses_every_command() {
    let cli = |args: &[&str]| match Cli::parse(os(args)) {
        Ok(c) => c,
        Err(e) => panic!("{args:?}: {e:?}"),
    };
    let c = cli(&[
        "apply",
        "--serve",
        "--interval",
        "30",
        "m.yaml",
        "--root",
        "/s",
        "--jitter",
        "5s",
    ]);
    assert_eq!(c.global.root, Some(PathBuf::from("/s")));
    match c.command {
        Command::Apply {
            manifest,
            serve,
            polling,
            no_prune,
            waiting,
            broker,
        } => {
            assert_eq!(manifest.source, "m.yaml");
            assert!(serve && !no_prune);
            assert!(broker.url.is_none());
            assert_eq!(broker.prefix, "berth/");
            assert_eq!(waiting, crate::cli::apply::Waiting::default());
            assert_eq!(polling.interval, Some(30));
            assert_eq!(
                polling.jitter,
                crate::cli::schedule::Jitter::Fixed(std::time::Duration::from_secs(5))
            );
            assert_eq!(polling.backoff_max, None);
        }
        other => panic!("{other:?}"),
    }
    let c = cli(&[
        "apply",
        "--serve",
        "--interval",
        "9",
        "--backoff-max",
        "10m",
    ]);
    match c.command {
        Command::Apply { polling, .. } => {
            assert_eq!(polling.jitter, crate::cli::schedule::DEFAULT_JITTER);
            assert_eq!(
                polling.backoff_max,
                Some(std::time::Duration::from_secs(600))
            );
        }
        other => panic!("{other:?}"),
    }
    for (args, want) in [
        (
            &["apply", "--serve", "--jitter", "1s"][..],
            "`--jitter` needs `--interval`",
        ),
        (
            &["apply", "--serve", "--interval", "9", "--jitter", "1x"][..],
            "--jitter: \"1x\" is neither a duration nor a percentage; use e.g. 30s or 10%",
        ),
    ] {
        match Cli::parse(os(args)) {
            Err(Stop::Usage(e)) => assert!(e.0.contains(want), "{}", e.0),
            other => panic!("{args:?}: {other:?}"),
        }
    }
    let c = cli(&["install", "--target-root", "/fw"]);
    match c.command {
        Command::Install(a) => {
            assert_eq!(a.target_root, PathBuf::from("/fw"));
            assert_eq!(a.image_dir, crate::host::store::FIRMWARE_IMAGE_DIR);
            assert_eq!(a.manifest.source, crate::cli::source::DEFAULT_MANIFEST);
        }
        other => panic!("{other:?}"),
    }
    let c = cli(&["plan", "--ca-bundle", "/ca.pem", "--fetch-timeout", "2m"]);
    let want = crate::cli::FetchArgs {
        ca_bundle: Some(PathBuf::from("/ca.pem")),
        timeout: Some(120),
    };
    assert_eq!(c.global.fetch, want);
    match c.command {
        Command::Plan { manifest, .. } => assert_eq!(manifest.fetch, want),
        other => panic!("{other:?}"),
    }
    match Cli::parse(os(&["plan", "--fetch-timeout", "soon"])) {
        Err(Stop::Usage(e)) => assert_eq!(
            e.0,
            "--fetch-timeout: \"soon\" is not a duration; use e.g. 10s or 2m"
        ),
        other => panic!("{other:?}"),
    }
    let c = cli(&[
        "image",
        "--ca-bundle",
        "/ca.pem",
        "import",
        "a.tar",
        "--name",
        "x",
    ]);
    match c.command {
        Command::Image(a) => {
            assert!(matches!(
                a.command,
                crate::cli::image::ImageCommand::Import { ref name, .. } if name.as_deref() == Some("x")
            ));
        }
        other => panic!("{other:?}"),
    }
    let c = cli(&["kill", "web"]);
    assert!(
        matches!(c.command, Command::Container(crate::cli::containers::ContainerCommand::Kill(ref k)) if k.signal == "SIGKILL")
    );
    let c = cli(&["logs", "-fn", "5", "web"]);
    assert!(
        matches!(c.command, Command::Container(crate::cli::containers::ContainerCommand::Logs(ref l)) if l.follow && l.lines == Some(5))
    );
    // The hidden `image extract` parses but is not listed.
    assert!(matches!(
        cli(&["image", "extract", "a.tar", "d"]).command,
        Command::Image(_)
    ));
    let help = help(&crate::cli::image::CMD, GLOBAL, &["image"]);
    assert!(!help.contains("\n  extract"), "{help}");
    assert!(help.contains("  gc "), "{help}");
}

#[test]
fn apply_wait_options() {
    let c = Cli::parse(os(&["apply", "--wait-timeout", "2m", "--retry", "m.yaml"])).unwrap();
    let Command::Apply { waiting, .. } = c.command else {
        panic!("{:?}", c.command);
    };
    assert_eq!(
        waiting,
        crate::cli::apply::Waiting {
            wait: true,
            timeout: Some(std::time::Duration::from_secs(120)),
            retry: true,
        },
        "a timeout implies --wait"
    );
    match Cli::parse(os(&["apply", "--wait-timeout", "0", "m.yaml"])) {
        Err(Stop::Usage(e)) => assert!(e.0.contains("above zero"), "{}", e.0),
        other => panic!("{other:?}"),
    }
}
