//! `berth __run`: one container in the foreground, no monitor: the same
//! prepare/clone/pivot_root/caps/seccomp/exec path a monitor runs, for the
//! start benchmark and the root tests; `--detach` goes through a monitor.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::control::Runtime;
use super::spawn;
use super::spawn::Stdio;
use super::{Options, Paths, RuntimeError};
use crate::model::Spec;

/// Entry of `berth __run`: start one container in the foreground without a
/// monitor and return its exit code. Used by the start benchmark and tests.
/// `berth __run --rootfs DIR [--spec FILE.json] [--hostname H] [--name N]
/// [--detach RUNTIME_ROOT] [-- CMD ARGS...]`; `--detach` starts it under a
/// monitor in `RUNTIME_ROOT/N` instead and prints the pid.
pub fn run_main(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(code) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        Err(RuntimeError::ExecFailed { program, code }) => {
            eprintln!("berth: {}", RuntimeError::ExecFailed { program, code });
            ExitCode::from(u8::try_from(code).unwrap_or(127))
        }
        Err(e) => {
            eprintln!("berth: {}", crate::host::chain(&e));
            ExitCode::from(125)
        }
    }
}

fn run_inner(args: &[String]) -> Result<i32, RuntimeError> {
    let mut rootfs = None;
    let mut spec_file = None;
    let mut hostname = None;
    let mut name = None;
    let mut detach = None;
    let mut cmd = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rootfs" => rootfs = it.next().cloned(),
            "--spec" => spec_file = it.next().cloned(),
            "--hostname" => hostname = it.next().cloned(),
            "--name" => name = it.next().cloned(),
            "--detach" => detach = it.next().map(PathBuf::from),
            "--" => {
                cmd = it.by_ref().cloned().collect();
            }
            other => {
                return Err(RuntimeError::Invalid {
                    name: "__run".into(),
                    message: format!("unknown argument `{other}`"),
                })
            }
        }
    }
    let rootfs = PathBuf::from(rootfs.ok_or_else(|| RuntimeError::Invalid {
        name: "__run".into(),
        message: "--rootfs is required".into(),
    })?);
    let mut spec = match spec_file {
        Some(f) => {
            let path = PathBuf::from(f);
            let bytes = fs::read(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
            serde_json::from_slice(&bytes).map_err(|e| RuntimeError::BadState {
                path,
                message: e.to_string(),
            })?
        }
        None => default_spec("run", Vec::new()),
    };
    if !cmd.is_empty() {
        spec.process.command = Some(cmd);
        spec.process.args = None;
    }
    if let Some(h) = hostname {
        spec.process.hostname = h;
    }
    if let Some(n) = name {
        spec.name = n;
    }
    let parent = rootfs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let run_dir = match &detach {
        Some(root) => super::container_run_dir(root, &spec.name),
        None => parent.clone(),
    };
    let paths = Paths {
        rootfs,
        run_dir,
        container_dir: parent.clone(),
        volumes_dir: parent.join("volumes"),
    };
    if detach.is_some() {
        let pid =
            Runtime::current().start(&spec, &paths, &Options::default(), &mut spawn::NoHook)?;
        println!("{pid}");
        return Ok(0);
    }
    let p = spawn::prepare(&spec, &paths, &Options::default(), false)?;
    let stdio = Stdio {
        stdin: 0,
        stdout: 1,
        stderr: 2,
    };
    let pid = spawn::spawn(&p, stdio, &mut spawn::NoHook)?;
    Ok(spawn::wait(pid)?.code)
}

/// A spec with berth's defaults (Docker's capabilities, seccomp on, restart
/// never) running `command`: for `__run` and tests.
pub fn default_spec(name: &str, command: Vec<String>) -> Spec {
    Spec::new(name, "none", Some(command))
}
