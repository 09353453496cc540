//! The tokenizer of the command line: walks the words once, telling
//! `--long[=VALUE]`, clusters of short options (`-fn 5`), `--`, subcommand
//! names and positional arguments apart, and records each against the
//! [`Cmd`] tables. Separate from the parent, which holds the tables and the
//! checks that need the whole command line (`finish`), and from `help`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use super::help::{help, help_for};
use super::{command_line, usage, utf8, Cmd, Opt, Parsed, Stop};

/// Walk `args` against `root` and its subcommands: each word is an option
/// (its value taken), a subcommand, or a positional argument. Returns what
/// was given and the chain of commands named, outermost first.
pub(super) fn walk(
    root: &'static Cmd,
    global: &'static [Opt],
    version: &str,
    args: impl IntoIterator<Item = OsString>,
) -> Result<(Parsed, Vec<&'static Cmd>), Stop> {
    let mut p = Parsed::default();
    let mut chain: Vec<&'static Cmd> = vec![root];
    let mut cmd = root;
    let mut dashdash = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if !dashdash && bytes == b"--" {
            dashdash = true;
            continue;
        }
        if !dashdash && bytes.starts_with(b"--") {
            let body = &bytes[2..];
            let (name, inline) = match body.iter().position(|&b| b == b'=') {
                Some(i) => (&body[..i], Some(OsStr::from_bytes(&body[i + 1..]))),
                None => (body, None),
            };
            let name = String::from_utf8_lossy(name);
            match (name.as_ref(), inline) {
                ("help", None) => return Err(Stop::Print(help(cmd, global, &p.commands))),
                ("version", None) if p.commands.is_empty() => {
                    return Err(Stop::Print(format!("berth {version}\n")))
                }
                _ => {}
            }
            let opt = find(cmd, global, |o| o.long == name)
                .ok_or_else(|| unknown(&format!("--{name}"), &p.commands))?;
            let value = match (opt.value, inline) {
                (None, None) => OsString::new(),
                (None, Some(_)) => {
                    return Err(usage(
                        &p.commands,
                        format!("option `--{name}` takes no value"),
                    ))
                }
                (Some(_), Some(v)) => v.to_os_string(),
                (Some(_), None) => args.next().ok_or_else(|| missing_value(opt, &p.commands))?,
            };
            set(&mut p, opt, value)?;
            continue;
        }
        if !dashdash && bytes.len() > 1 && bytes[0] == b'-' {
            // A cluster of short options: `-fn 5`, `-n5`, `-t`.
            let cluster = &bytes[1..];
            let mut i = 0;
            while i < cluster.len() {
                if !cluster[i].is_ascii() {
                    return Err(unknown(&arg.to_string_lossy(), &p.commands));
                }
                let c = char::from(cluster[i]);
                i += 1;
                if c == 'h' {
                    return Err(Stop::Print(help(cmd, global, &p.commands)));
                }
                if c == 'V' && p.commands.is_empty() {
                    return Err(Stop::Print(format!("berth {version}\n")));
                }
                let opt = find(cmd, global, |o| o.short == Some(c))
                    .ok_or_else(|| unknown(&format!("-{c}"), &p.commands))?;
                if opt.value.is_none() {
                    set(&mut p, opt, OsString::new())?;
                    continue;
                }
                let rest = &cluster[i..];
                let rest = rest.strip_prefix(b"=").unwrap_or(rest);
                let value = if rest.is_empty() {
                    args.next().ok_or_else(|| missing_value(opt, &p.commands))?
                } else {
                    OsStr::from_bytes(rest).to_os_string()
                };
                set(&mut p, opt, value)?;
                break;
            }
            continue;
        }
        // A positional word.
        if !cmd.subcommands.is_empty() {
            let name = arg.to_string_lossy();
            if p.commands.is_empty() && name == "help" {
                return Err(Stop::Print(help_for(root, global, args)?));
            }
            cmd = cmd
                .subcommands
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| {
                    let parent = if p.commands.is_empty() {
                        String::new()
                    } else {
                        format!(" for `{}`", command_line(&p.commands))
                    };
                    usage(&p.commands, format!("unknown command `{name}`{parent}"))
                })?;
            p.commands.push(cmd.name);
            chain.push(cmd);
        } else if dashdash && cmd.last.is_some() {
            p.last.push(utf8(&arg, "command word")?);
        } else if p.args.len() < cmd.args.len() {
            p.args.push(arg);
        } else {
            let hint = match cmd.last {
                Some((name, _)) => format!("; put {name} after `--`"),
                None => String::new(),
            };
            return Err(usage(
                &p.commands,
                format!(
                    "unexpected argument `{}` for `{}`{hint}",
                    arg.to_string_lossy(),
                    command_line(&p.commands)
                ),
            ));
        }
    }
    Ok((p, chain))
}

/// The command's own option, else a global one, that `pred` picks.
fn find(
    cmd: &'static Cmd,
    global: &'static [Opt],
    pred: impl Fn(&Opt) -> bool,
) -> Option<&'static Opt> {
    cmd.opts.iter().chain(global.iter()).find(|o| pred(o))
}

fn set(p: &mut Parsed, opt: &'static Opt, value: OsString) -> Result<(), Stop> {
    if !opt.repeat && p.has(opt.long) {
        return Err(usage(
            &p.commands,
            format!("option `--{}` given twice", opt.long),
        ));
    }
    if opt.path && value.is_empty() {
        return Err(missing_value(opt, &p.commands));
    }
    p.opts.push((opt.long, value));
    Ok(())
}

fn unknown(option: &str, path: &[&str]) -> Stop {
    usage(
        path,
        format!("unknown option `{option}` for `{}`", command_line(path)),
    )
}

fn missing_value(opt: &Opt, path: &[&str]) -> Stop {
    usage(
        path,
        format!("option `--{}` needs a value: `{}`", opt.long, opt.usage()),
    )
}
