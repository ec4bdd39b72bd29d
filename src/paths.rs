//! Where hugflake keeps things: XDG directories for its own config, data and logs, and the
//! Hugging Face cache directory resolved with the same rules as Python's `huggingface_hub`.
//!
//! Every path carries the variable or rule that chose it, so `hugflake doctor` can say why.

use std::path::{Path, PathBuf};

/// A path and the rule that produced it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Located {
    pub path: PathBuf,
    pub source: String,
}

/// A read-only view of the environment, so the rules can be tested without touching the process
/// environment.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, key: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_string())
            .filter(|v| !v.is_empty())
    }
}

pub fn home(env: &dyn Env) -> PathBuf {
    env.var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn xdg(env: &dyn Env, var: &str, fallback: &str, app: bool) -> Located {
    let (base, source) = match env.var(var) {
        Some(v) if Path::new(&v).is_absolute() => (PathBuf::from(v), format!("${var}")),
        _ => (
            home(env).join(fallback),
            format!("~/{fallback} (XDG default)"),
        ),
    };
    let path = if app { base.join("hugflake") } else { base };
    Located { path, source }
}

/// The directories hugflake uses.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Paths {
    pub config_file: Located,
    pub data_dir: Located,
    pub state_dir: Located,
    pub hf_cache: Located,
}

impl Paths {
    pub fn resolve(env: &dyn Env, config_flag: Option<&Path>) -> Paths {
        let config_file = match (config_flag, env.var("HUGFLAKE_CONFIG")) {
            (Some(p), _) => Located {
                path: p.to_path_buf(),
                source: "--config".into(),
            },
            (None, Some(p)) => Located {
                path: PathBuf::from(p),
                source: "$HUGFLAKE_CONFIG".into(),
            },
            (None, None) => {
                let dir = xdg(env, "XDG_CONFIG_HOME", ".config", true);
                Located {
                    path: dir.path.join("config.toml"),
                    source: dir.source,
                }
            }
        };
        let data_dir = match env.var("HUGFLAKE_DATA_DIR") {
            Some(p) => Located {
                path: PathBuf::from(p),
                source: "$HUGFLAKE_DATA_DIR".into(),
            },
            None => xdg(env, "XDG_DATA_HOME", ".local/share", true),
        };
        let state_dir = match env.var("HUGFLAKE_STATE_DIR") {
            Some(p) => Located {
                path: PathBuf::from(p),
                source: "$HUGFLAKE_STATE_DIR".into(),
            },
            None => xdg(env, "XDG_STATE_HOME", ".local/state", true),
        };
        Paths {
            config_file,
            data_dir,
            state_dir,
            hf_cache: hf_hub_cache(env),
        }
    }

    pub fn log_file(&self, daemon: bool) -> PathBuf {
        self.state_dir
            .path
            .join(if daemon { "daemon.log" } else { "hugflake.log" })
    }
}

/// The Hugging Face Hub cache: `HF_HUB_CACHE`, then `HUGGINGFACE_HUB_CACHE`, then `$HF_HOME/hub`,
/// then `$XDG_CACHE_HOME/huggingface/hub`, then `~/.cache/huggingface/hub`.
pub fn hf_hub_cache(env: &dyn Env) -> Located {
    if let Some(p) = env.var("HF_HUB_CACHE") {
        return Located {
            path: PathBuf::from(p),
            source: "$HF_HUB_CACHE".into(),
        };
    }
    if let Some(p) = env.var("HUGGINGFACE_HUB_CACHE") {
        return Located {
            path: PathBuf::from(p),
            source: "$HUGGINGFACE_HUB_CACHE".into(),
        };
    }
    if let Some(p) = env.var("HF_HOME") {
        return Located {
            path: PathBuf::from(p).join("hub"),
            source: "$HF_HOME/hub".into(),
        };
    }
    if let Some(p) = env.var("XDG_CACHE_HOME") {
        return Located {
            path: PathBuf::from(p).join("huggingface").join("hub"),
            source: "$XDG_CACHE_HOME/huggingface/hub".into(),
        };
    }
    Located {
        path: home(env).join(".cache").join("huggingface").join("hub"),
        source: "~/.cache/huggingface/hub (default)".into(),
    }
}

/// The most a small text file the user names may hold (config, connections, keys, tokens).
pub const SMALL_FILE: u64 = 4 * 1024 * 1024;

/// Reads a file whose path came from the user: regular files only, at most `cap` bytes. A FIFO
/// would block the read for ever and a device such as `/dev/zero` never ends, so both are refused
/// before they are opened, with what they are; a file over the cap is refused with its size.
pub fn read_user_file(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{what}: only regular files are read"),
        ));
    }
    let too_big = |size: u64| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} is over the {} limit for this file",
                crate::domain::units::bytes(size),
                crate::domain::units::bytes(cap)
            ),
        )
    };
    if meta.len() > cap {
        return Err(too_big(meta.len()));
    }
    // Opened without blocking and checked again: a FIFO swapped in after the check above cannot
    // hold the open.
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket or device): only regular files are read",
        ));
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1).read_to_end(&mut out)?;
    if out.len() as u64 > cap {
        return Err(too_big(out.len() as u64));
    }
    Ok(out)
}

/// [`read_user_file`] as UTF-8 text.
pub fn read_user_text(path: &Path, cap: u64) -> std::io::Result<String> {
    String::from_utf8(read_user_file(path, cap)?).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is not UTF-8 text",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_cache_precedence_follows_huggingface_hub() {
        let env = [
            ("HOME", "/home/u"),
            ("HF_HOME", "/hf"),
            ("XDG_CACHE_HOME", "/xdg"),
        ];
        assert_eq!(hf_hub_cache(&env).path, PathBuf::from("/hf/hub"));
        let env = [
            ("HOME", "/home/u"),
            ("HF_HUB_CACHE", "/c"),
            ("HF_HOME", "/hf"),
        ];
        assert_eq!(hf_hub_cache(&env).path, PathBuf::from("/c"));
        let env = [("HOME", "/home/u"), ("HUGGINGFACE_HUB_CACHE", "/old")];
        assert_eq!(hf_hub_cache(&env).source, "$HUGGINGFACE_HUB_CACHE");
        let env = [("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")];
        assert_eq!(
            hf_hub_cache(&env).path,
            PathBuf::from("/xdg/huggingface/hub")
        );
        let env = [("HOME", "/home/u")];
        assert_eq!(
            hf_hub_cache(&env).path,
            PathBuf::from("/home/u/.cache/huggingface/hub")
        );
    }

    #[test]
    fn xdg_dirs_and_overrides() {
        let env = [("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/cfg")];
        let p = Paths::resolve(&env, None);
        assert_eq!(
            p.config_file.path,
            PathBuf::from("/cfg/hugflake/config.toml")
        );
        assert_eq!(
            p.data_dir.path,
            PathBuf::from("/home/u/.local/share/hugflake")
        );
        assert_eq!(
            p.state_dir.path,
            PathBuf::from("/home/u/.local/state/hugflake")
        );
        // A relative XDG value is ignored, as the spec says.
        let env = [("HOME", "/home/u"), ("XDG_DATA_HOME", "rel")];
        assert_eq!(
            Paths::resolve(&env, None).data_dir.path,
            PathBuf::from("/home/u/.local/share/hugflake")
        );
        let env = [("HOME", "/home/u"), ("HUGFLAKE_CONFIG", "/x.toml")];
        let p = Paths::resolve(&env, Some(Path::new("/flag.toml")));
        assert_eq!(p.config_file.path, PathBuf::from("/flag.toml"));
        assert_eq!(p.config_file.source, "--config");
    }

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("a.txt");
        std::fs::write(&file, b"hello").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_user_file(&file, 5).ok().as_deref(),
            Some(&b"hello"[..])
        );
        let big = read_user_file(&file, 4)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(big.contains("over the 4 B limit"), "{big}");
        let zero = read_user_file(Path::new("/dev/zero"), 1024)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(zero.contains("not a regular file"), "{zero}");
        let link = dir.path().join("zero.csv");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap_or_else(|e| panic!("{e}"));
        assert!(read_user_file(&link, 1024).is_err());
        let fifo = dir.path().join("fifo.csv");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Opening a FIFO for reading would block until a writer comes: never opened.
            assert!(read_user_file(&fifo, 1024).is_err());
        }
        assert!(read_user_file(dir.path(), 1024).is_err());
    }
}
