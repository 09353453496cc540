//! Argument parsing, the first step of `main`. Each subcommand declares its
//! options and arguments in a static [`Cmd`] table beside its code; [`parse`]
//! walks the command line against those tables once (`tokens`) and fills a
//! [`Parsed`] that the subcommand reads its values from. Help text is made
//! from the same tables (`help`). Bad usage is a [`UsageError`] naming the
//! option and the command's `--help`, which `main` maps to exit code 2.

mod help;
mod tokens;

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::str::FromStr;

use super::UsageError;

pub use help::help;

/// One `--long` option (with an optional `-s` short form) of a command.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// Long name without the dashes (`runtime-dir`).
    pub long: &'static str,
    /// Short name (`t` for `-t`).
    pub short: Option<char>,
    /// Value name shown in help (`DIR`); `None` for a flag.
    pub value: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
    /// Environment variable read when the option is not given.
    pub env: Option<&'static str>,
    /// Value used when the option is neither given nor in the environment.
    pub default: Option<&'static str>,
    /// May be given more than once (values collect).
    pub repeat: bool,
    /// Must be given.
    pub required: bool,
    /// The value is a path: kept as bytes (not UTF-8 checked), never empty.
    pub path: bool,
}

impl Opt {
    /// A flag: `--json`.
    pub const fn flag(long: &'static str, help: &'static str) -> Self {
        Self {
            long,
            short: None,
            value: None,
            help,
            env: None,
            default: None,
            repeat: false,
            required: false,
            path: false,
        }
    }

    /// An option with a value: `--vars-file FILE`.
    pub const fn value(long: &'static str, value: &'static str, help: &'static str) -> Self {
        Self {
            value: Some(value),
            ..Self::flag(long, help)
        }
    }

    /// An option whose value is a path: `--root DIR`.
    pub const fn path(long: &'static str, value: &'static str, help: &'static str) -> Self {
        Self {
            path: true,
            ..Self::value(long, value, help)
        }
    }

    /// With a short form.
    pub const fn short(self, c: char) -> Self {
        Self {
            short: Some(c),
            ..self
        }
    }

    /// Read from `var` when not given.
    pub const fn env(self, var: &'static str) -> Self {
        Self {
            env: Some(var),
            ..self
        }
    }

    /// With a default value.
    pub const fn default(self, value: &'static str) -> Self {
        Self {
            default: Some(value),
            ..self
        }
    }

    /// Repeatable.
    pub const fn repeat(self) -> Self {
        Self {
            repeat: true,
            ..self
        }
    }

    /// Required.
    pub const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }

    /// `--long VALUE` or `--long`, as usage shows it.
    fn usage(&self) -> String {
        match self.value {
            Some(v) => format!("--{} {v}", self.long),
            None => format!("--{}", self.long),
        }
    }
}

/// A positional argument.
#[derive(Debug, Clone, Copy)]
pub struct Pos {
    /// Name shown in help (`NAME`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Must be given.
    pub required: bool,
    /// Value when not given.
    pub default: Option<&'static str>,
}

impl Pos {
    /// A required argument.
    pub const fn required(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            required: true,
            default: None,
        }
    }

    /// An optional argument.
    pub const fn optional(name: &'static str, help: &'static str) -> Self {
        Self {
            required: false,
            ..Self::required(name, help)
        }
    }

    /// An optional argument with a default.
    pub const fn default(name: &'static str, help: &'static str, value: &'static str) -> Self {
        Self {
            default: Some(value),
            ..Self::optional(name, help)
        }
    }
}

/// A command or subcommand: its options, arguments and rules.
#[derive(Debug, Clone, Copy)]
pub struct Cmd {
    /// The name the user types (`plan`).
    pub name: &'static str,
    /// One line saying what it does.
    pub about: &'static str,
    /// Its options (the global ones are added by [`parse`]).
    pub opts: &'static [Opt],
    /// Its positional arguments, in order.
    pub args: &'static [Pos],
    /// Name and help of the required words after `--` (exec's command).
    pub last: Option<(&'static str, &'static str)>,
    /// Its subcommands; when set, the first positional names one.
    pub subcommands: &'static [Cmd],
    /// Pairs of options that cannot be given together.
    pub conflicts: &'static [(&'static str, &'static str)],
    /// (a, b): option a needs option b.
    pub requires: &'static [(&'static str, &'static str)],
    /// Left out of the parent's command list.
    pub hidden: bool,
}

impl Cmd {
    /// A command with nothing but a name and a line of help.
    pub const fn new(name: &'static str, about: &'static str) -> Self {
        Self {
            name,
            about,
            opts: &[],
            args: &[],
            last: None,
            subcommands: &[],
            conflicts: &[],
            requires: &[],
            hidden: false,
        }
    }
}

/// What the command line said, as the tables define it.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The subcommand names, outermost first (`["image", "import"]`).
    pub commands: Vec<&'static str>,
    /// Option values by long name, in command-line order (flags: empty).
    opts: Vec<(&'static str, OsString)>,
    /// The deepest command's positional arguments, defaults filled in.
    args: Vec<OsString>,
    /// The words after `--` of a command with [`Cmd::last`].
    pub last: Vec<String>,
}

/// Why parsing stopped without a command to run.
#[derive(Debug)]
pub enum Stop {
    /// `--help` or `--version`: print this to stdout, exit 0.
    Print(String),
    /// Bad usage: exit 2.
    Usage(UsageError),
}

impl From<UsageError> for Stop {
    fn from(e: UsageError) -> Self {
        Stop::Usage(e)
    }
}

impl Parsed {
    /// Whether the flag or option `long` was given (or came from env/default).
    pub fn has(&self, long: &str) -> bool {
        self.opts.iter().any(|(k, _)| *k == long)
    }

    /// The raw value of option `long`, the last one given.
    pub fn os(&self, long: &str) -> Option<&OsStr> {
        self.opts
            .iter()
            .rev()
            .find(|(k, _)| *k == long)
            .map(|(_, v)| v.as_os_str())
    }

    /// The value of a path option.
    pub fn path(&self, long: &str) -> Option<PathBuf> {
        self.os(long).map(PathBuf::from)
    }

    /// The value of option `long` as text.
    pub fn string(&self, long: &str) -> Result<Option<String>, UsageError> {
        self.os(long)
            .map(|v| utf8(v, &format!("--{long}")))
            .transpose()
    }

    /// Every value of the repeatable option `long`, in order.
    pub fn strings(&self, long: &str) -> Result<Vec<String>, UsageError> {
        self.opts
            .iter()
            .filter(|(k, _)| *k == long)
            .map(|(_, v)| utf8(v, &format!("--{long}")))
            .collect()
    }

    /// The value of option `long` parsed as a number (or other `FromStr`).
    pub fn num<T: FromStr>(&self, long: &str) -> Result<Option<T>, UsageError>
    where
        T::Err: std::fmt::Display,
    {
        let Some(text) = self.string(long)? else {
            return Ok(None);
        };
        text.parse().map(Some).map_err(|e| {
            UsageError(format!(
                "invalid value `{text}` for `--{long}`: {e}; {}",
                self.see_help()
            ))
        })
    }

    /// Positional argument `i` (defaults filled in) as text.
    pub fn arg(&self, i: usize) -> Result<Option<String>, UsageError> {
        self.args.get(i).map(|v| utf8(v, "argument")).transpose()
    }

    /// Positional argument `i` as a path.
    pub fn arg_path(&self, i: usize) -> Option<PathBuf> {
        self.args.get(i).map(PathBuf::from)
    }

    /// A required positional argument (the parser made sure it is there).
    pub fn required_arg(&self, i: usize) -> Result<String, UsageError> {
        self.arg(i)?
            .ok_or_else(|| UsageError(format!("missing argument; {}", self.see_help())))
    }

    /// A required path argument (the parser made sure it is there).
    pub fn required_path(&self, i: usize) -> Result<PathBuf, UsageError> {
        self.arg_path(i)
            .ok_or_else(|| UsageError(format!("missing argument; {}", self.see_help())))
    }

    /// `berth image import`.
    fn command_line(&self) -> String {
        command_line(&self.commands)
    }

    fn see_help(&self) -> String {
        format!("see `{} --help`", self.command_line())
    }
}

fn command_line(path: &[&str]) -> String {
    let mut s = String::from("berth");
    for p in path {
        s.push(' ');
        s.push_str(p);
    }
    s
}

fn utf8(v: &OsStr, what: &str) -> Result<String, UsageError> {
    v.to_str().map(str::to_owned).ok_or_else(|| {
        UsageError(format!(
            "{what} `{}` is not valid UTF-8",
            v.to_string_lossy()
        ))
    })
}

/// Parse `args` (without the program name) against `root` and its
/// subcommands; `global` options are taken before and after any subcommand.
pub fn parse(
    root: &'static Cmd,
    global: &'static [Opt],
    version: &str,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Parsed, Stop> {
    let (mut p, chain) = tokens::walk(root, global, version, args)?;
    finish(&mut p, &chain, global)?;
    Ok(p)
}

/// Defaults, environment, and the checks that need the whole command line.
fn finish(p: &mut Parsed, chain: &[&'static Cmd], global: &'static [Opt]) -> Result<(), Stop> {
    let Some(&cmd) = chain.last() else {
        return Ok(());
    };
    if !cmd.subcommands.is_empty() {
        let what = if p.commands.is_empty() {
            "no command given".to_owned()
        } else {
            format!("`{}` needs a subcommand", command_line(&p.commands))
        };
        return Err(usage(&p.commands, what));
    }
    let opts = global
        .iter()
        .chain(chain.iter().flat_map(|c| c.opts.iter()));
    for opt in opts {
        if p.has(opt.long) {
            continue;
        }
        // An empty variable counts as unset (`BERTH_ROOT= berth ...` in scripts).
        if let Some(v) = opt.env.and_then(std::env::var_os).filter(|v| !v.is_empty()) {
            p.opts.push((opt.long, v));
        } else if let Some(d) = opt.default {
            p.opts.push((opt.long, d.into()));
        } else if opt.required {
            return Err(usage(
                &p.commands,
                format!("`{}` needs `{}`", command_line(&p.commands), opt.usage()),
            ));
        }
    }
    for c in chain {
        for (a, b) in c.conflicts {
            if p.has(a) && p.has(b) {
                return Err(usage(
                    &p.commands,
                    format!("`--{a}` and `--{b}` cannot be used together"),
                ));
            }
        }
        for (a, b) in c.requires {
            if p.has(a) && !p.has(b) {
                return Err(usage(&p.commands, format!("`--{a}` needs `--{b}`")));
            }
        }
    }
    for pos in cmd.args.iter().skip(p.args.len()) {
        match pos.default {
            Some(d) => p.args.push(d.into()),
            None if pos.required => {
                return Err(usage(
                    &p.commands,
                    format!("`{}` needs {}", command_line(&p.commands), pos.name),
                ))
            }
            None => break,
        }
    }
    if let Some((name, _)) = cmd.last {
        if p.last.is_empty() {
            return Err(usage(
                &p.commands,
                format!("`{}` needs {name} after `--`", command_line(&p.commands)),
            ));
        }
    }
    Ok(())
}

/// A usage error that ends with where to read more.
fn usage(path: &[&str], what: String) -> Stop {
    Stop::Usage(UsageError(format!(
        "{what}; see `{} --help`",
        command_line(path)
    )))
}

#[cfg(test)]
mod tests;
