//! Help text, made from the same [`Cmd`] tables the parser walks, so an
//! option's help is written once: the usage line, the command list, the
//! arguments and options in two aligned columns wrapped at [`HELP_WIDTH`].
//! Separate from the tokenizer: only `--help`, `-h` and `berth help` get here.

use std::ffi::OsString;
use std::fmt::Write as _;

use super::{command_line, usage, Cmd, Opt, Stop};

/// The help of `cmd`: usage line, arguments, options, global options.
pub fn help(cmd: &Cmd, global: &[Opt], path: &[&str]) -> String {
    let mut out = String::new();
    let line = command_line(path);
    let _ = writeln!(out, "{}\n", cmd.about);
    let mut usage = format!("Usage: {line} [OPTIONS]");
    for o in cmd.opts.iter().filter(|o| o.required) {
        let _ = write!(usage, " {}", o.usage());
    }
    if !cmd.subcommands.is_empty() {
        usage.push_str(" COMMAND");
    }
    for a in cmd.args {
        if a.required {
            let _ = write!(usage, " {}", a.name);
        } else {
            let _ = write!(usage, " [{}]", a.name);
        }
    }
    if let Some((name, _)) = cmd.last {
        let _ = write!(usage, " -- {name}...");
    }
    let _ = writeln!(out, "{usage}");
    let visible: Vec<&Cmd> = cmd.subcommands.iter().filter(|c| !c.hidden).collect();
    if !visible.is_empty() {
        out.push_str("\nCommands:\n");
        table(
            &mut out,
            visible
                .iter()
                .map(|c| (c.name.to_owned(), c.about.to_owned())),
        );
    }
    let mut rows: Vec<(String, String)> = Vec::new();
    for a in cmd.args {
        let mut help = a.help.to_owned();
        if let Some(d) = a.default {
            let _ = write!(help, " [default: {d}]");
        }
        rows.push((a.name.to_owned(), help));
    }
    if let Some((name, help)) = cmd.last {
        rows.push((format!("{name}..."), help.to_owned()));
    }
    if !rows.is_empty() {
        out.push_str("\nArguments:\n");
        table(&mut out, rows.into_iter());
    }
    let mut own: Vec<(String, String)> = cmd.opts.iter().map(opt_row).collect();
    own.push(("-h, --help".to_owned(), "Print help".to_owned()));
    if path.is_empty() {
        own.push(("-V, --version".to_owned(), "Print version".to_owned()));
    }
    out.push_str("\nOptions:\n");
    table(&mut out, own.into_iter());
    if !global.is_empty() {
        out.push_str("\nGlobal options (before or after the command):\n");
        table(&mut out, global.iter().map(opt_row));
    }
    out
}

fn opt_row(o: &Opt) -> (String, String) {
    let short = match o.short {
        Some(c) => format!("-{c}, "),
        None => "    ".to_owned(),
    };
    let value = o.value.map(|v| format!(" {v}")).unwrap_or_default();
    let mut help = o.help.to_owned();
    if let Some(d) = o.default {
        let _ = write!(help, " [default: {d}]");
    }
    if let Some(e) = o.env {
        let _ = write!(help, " [env: {e}]");
    }
    (format!("{short}--{}{value}", o.long), help)
}

/// Help lines are wrapped to this many columns (a serial console's 80 would
/// leave too little room beside the option names).
const HELP_WIDTH: usize = 100;

/// Two aligned columns, indented by two spaces; the right one wraps at word
/// boundaries, continued under itself.
fn table(out: &mut String, rows: impl Iterator<Item = (String, String)>) {
    let rows: Vec<(String, String)> = rows.collect();
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let room = HELP_WIDTH.saturating_sub(width + 4).max(30);
    for (left, right) in rows {
        let mut lines = wrap(&right, room).into_iter();
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(out, "  {left:<width$}  {first}");
        for line in lines {
            let _ = writeln!(out, "  {:width$}  {line}", "");
        }
    }
}

/// `text` split into lines of at most `room` characters where it has spaces.
fn wrap(text: &str, room: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// `berth help [COMMAND...]`: the help of the named command.
pub(super) fn help_for(
    root: &'static Cmd,
    global: &'static [Opt],
    words: impl Iterator<Item = OsString>,
) -> Result<String, Stop> {
    let mut cmd = root;
    let mut path = Vec::new();
    for w in words {
        let name = w.to_string_lossy();
        cmd = cmd
            .subcommands
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| usage(&path, format!("no command `{name}` to show help for")))?;
        path.push(cmd.name);
    }
    Ok(help(cmd, global, &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_help_lines_wrap_under_their_column() {
        let lines = wrap("one two three four five six", 9);
        assert_eq!(lines, ["one two", "three", "four five", "six"]);
        // A word longer than the room stays whole on its own line.
        assert_eq!(wrap("a verylongword b", 5), ["a", "verylongword", "b"]);
        let mut out = String::new();
        table(
            &mut out,
            [("--x".to_owned(), "word ".repeat(40).trim_end().to_owned())].into_iter(),
        );
        assert!(out.lines().count() > 1, "{out}");
        for line in out.lines() {
            assert!(line.chars().count() <= HELP_WIDTH, "{line}");
        }
        for line in out.lines().skip(1) {
            assert!(
                line.starts_with("       word"),
                "continued under the column: {line:?}"
            );
        }
    }
}
