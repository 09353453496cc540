//! The platform (`os/architecture[/variant]`, OCI image-spec names) a
//! registry image is picked for: the device's own, from the architecture
//! this binary was built for and, on 32-bit ARM, the CPU's architecture
//! level in /proc/cpuinfo (an armv7 build may run on an armv8 core in
//! 32-bit mode, or on v6 with a v6 build). A device takes the highest ARM
//! variant its CPU runs and falls back to lower ones, as containerd's
//! platform matcher does: a v7 core runs v6 and v5 code.

use std::fmt;
use std::path::Path;

/// One platform, in OCI's words (`GOOS`/`GOARCH` and variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, `arm`, `mips`, `mipsle`, ...
    pub architecture: String,
    /// `v7`, `v6`, `v8`, ... (ARM only, in practice).
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// `os/arch[/variant]` as `--platform` takes it.
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| word(p)) {
            return Err(format!(
                "`{text}` is not a platform; write OS/ARCH[/VARIANT], e.g. linux/arm/v7"
            ));
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    /// The variant an entry without one means: registries and containerd
    /// read a bare `arm` as v7 and a bare `arm64` as v8.
    fn normal_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm", None) => Some("v7"),
            ("arm64", None) => Some("v8"),
            (_, v) => v,
        }
    }

    /// Whether an index entry for `other` is this platform exactly (after
    /// normalising variants; a variant on an architecture that has none to
    /// speak of is ignored).
    pub fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || self.architecture != other.architecture {
            return false;
        }
        match self.architecture.as_str() {
            "arm" | "arm64" => self.normal_variant() == other.normal_variant(),
            _ => true,
        }
    }

    /// This platform and those it also runs, best first: an ARM variant
    /// falls back to the lower ones (v8 -> v7 -> v6 -> v5 on 32-bit ARM).
    pub fn candidates(&self) -> Vec<Platform> {
        let mut out = vec![self.clone()];
        if self.architecture == "arm" {
            let level = self
                .normal_variant()
                .and_then(|v| v.strip_prefix('v'))
                .and_then(|n| n.parse::<u8>().ok())
                .unwrap_or(7);
            for l in (5..level.min(8)).rev() {
                out.push(Platform {
                    variant: Some(format!("v{l}")),
                    ..self.clone()
                });
            }
        }
        out
    }
}

/// The OCI architecture name of what this binary was built for.
pub fn built_arch() -> &'static str {
    let little = cfg!(target_endian = "little");
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "mips" if little => "mipsle",
        "mips64" if little => "mips64le",
        "powerpc64" if little => "ppc64le",
        other => other,
    }
}

/// The device's platform: the build's architecture, and on ARM the CPU's
/// level from `cpuinfo` (`CPU architecture: 7`; `8` in 32-bit mode is
/// taken as v7 when this is a 32-bit build, since that runs v7 code).
pub fn device(cpuinfo: &Path) -> Platform {
    let architecture = built_arch().to_owned();
    let variant = match architecture.as_str() {
        "arm" => {
            let level = std::fs::read_to_string(cpuinfo)
                .ok()
                .and_then(|t| arm_level(&t))
                .unwrap_or(7);
            Some(format!("v{}", level.clamp(5, 8)))
        }
        _ => None,
    };
    Platform {
        os: "linux".into(),
        architecture,
        variant,
    }
}

/// The `CPU architecture` field of /proc/cpuinfo on ARM (`7`, or `AArch64`
/// which reads as 8).
fn arm_level(cpuinfo: &str) -> Option<u8> {
    let line = cpuinfo
        .lines()
        .find(|l| l.trim_start().starts_with("CPU architecture"))?;
    let value = line.split_once(':')?.1.trim();
    if value.eq_ignore_ascii_case("aarch64") {
        return Some(8);
    }
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> Platform {
        Platform::parse(t).unwrap()
    }

    #[test]
    fn arm_falls_back_to_lower_variants_only() {
        let c: Vec<String> = p("linux/arm/v7")
            .candidates()
            .iter()
            .map(|x| x.to_string())
            .collect();
        assert_eq!(c, ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]);
        assert_eq!(p("linux/arm/v8").candidates().len(), 4);
        assert_eq!(p("linux/amd64").candidates().len(), 1);
        assert!(p("linux/arm").matches(&p("linux/arm/v7")));
        assert!(!p("linux/arm/v6").matches(&p("linux/arm")));
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/amd64").matches(&p("linux/amd64/v2")));
        assert!(!p("linux/mips").matches(&p("linux/mipsle")));
    }

    #[test]
    fn the_cpu_level_comes_from_cpuinfo() {
        assert_eq!(arm_level("processor : 0\nCPU architecture: 7\n"), Some(7));
        assert_eq!(arm_level("CPU architecture: AArch64\n"), Some(8));
        assert_eq!(arm_level("model name : x\n"), None);
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/arm/v7/x").is_err());
        assert!(Platform::parse("linux/a rm").is_err());
        let d = device(Path::new("/nonexistent"));
        assert_eq!(d.architecture, built_arch());
    }
}
