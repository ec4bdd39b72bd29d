//! How to reach the Hub, with the variables Python's `huggingface_hub` reads: `HF_ENDPOINT`,
//! `HF_TOKEN` (then `HF_TOKEN_PATH`, then `$HF_HOME/token`), `HF_HUB_OFFLINE`, and the cache rules of
//! [`crate::paths::hf_hub_cache`].

use std::path::PathBuf;

use crate::paths::{Env, hf_hub_cache};
use crate::secret::Secret;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Base URL without a trailing slash.
    pub endpoint: String,
    pub token: Option<Secret>,
    /// Where the token came from (for `hugflake doctor`), never the token itself.
    pub token_source: Option<String>,
    pub offline: bool,
    pub cache_dir: PathBuf,
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// Which Hub a process talks to, and as whom, comparable across processes without the token:
/// the token appears only as a salted SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HubIdentity {
    pub endpoint: String,
    pub token_fingerprint: Option<String>,
    pub cache_dir: PathBuf,
}

impl HubIdentity {
    /// How it differs from `other` (the caller) in ways that change an import, in words (never
    /// a token).
    pub fn differences(&self, other: &HubIdentity) -> Vec<String> {
        let mut out = Vec::new();
        if self.endpoint != other.endpoint {
            out.push(format!(
                "HF_ENDPOINT {} (yours: {})",
                self.endpoint, other.endpoint
            ));
        }
        // A caller without a token loses nothing by the daemon's (the same user's): only a
        // token the caller has and the daemon lacks, or another one, would be ignored.
        match (&self.token_fingerprint, &other.token_fingerprint) {
            (_, None) => {}
            (a, b) if a == b => {}
            (None, Some(_)) => out.push("no HF token (you have one)".into()),
            _ => out.push("a different HF token".into()),
        }
        if self.cache_dir != other.cache_dir {
            out.push(format!(
                "the Hub cache {} (yours: {})",
                self.cache_dir.display(),
                other.cache_dir.display()
            ));
        }
        out
    }
}

impl HubSettings {
    /// This process's [`HubIdentity`].
    pub fn identity(&self) -> HubIdentity {
        use sha2::Digest;
        HubIdentity {
            endpoint: self.endpoint.clone(),
            token_fingerprint: self.token.as_ref().map(|t| {
                let digest = sha2::Sha256::digest(format!("hugflake hub token\n{}", t.expose()));
                digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
            }),
            cache_dir: self.cache_dir.clone(),
        }
    }

    pub fn from_env(env: &dyn Env) -> HubSettings {
        let endpoint = env
            .var("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.into())
            .trim_end_matches('/')
            .to_string();
        let (token, token_source) = match env.var("HF_TOKEN") {
            Some(t) => (Some(Secret::new(t.trim())), Some("$HF_TOKEN".to_string())),
            None => {
                let path = env
                    .var("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        env.var("HF_HOME")
                            .map(PathBuf::from)
                            .unwrap_or_else(|| {
                                let home = env.var("HOME").unwrap_or_else(|| "/".into());
                                env.var("XDG_CACHE_HOME")
                                    .map(PathBuf::from)
                                    .unwrap_or_else(|| PathBuf::from(home).join(".cache"))
                                    .join("huggingface")
                            })
                            .join("token")
                    });
                match crate::paths::read_user_text(&path, crate::paths::SMALL_FILE) {
                    Ok(t) if !t.trim().is_empty() => (
                        Some(Secret::new(t.trim())),
                        Some(path.display().to_string()),
                    ),
                    _ => (None, None),
                }
            }
        };
        HubSettings {
            endpoint,
            token,
            token_source,
            offline: env.var("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
            cache_dir: hf_hub_cache(env).path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_token_and_offline_from_the_environment() {
        let env = [
            ("HOME", "/nonexistent"),
            ("HF_ENDPOINT", "http://127.0.0.1:9999/"),
            ("HF_TOKEN", "hf_abc\n"),
            ("HF_HUB_OFFLINE", "1"),
        ];
        let s = HubSettings::from_env(&env);
        assert_eq!(s.endpoint, "http://127.0.0.1:9999");
        assert_eq!(s.token.as_ref().map(Secret::expose), Some("hf_abc"));
        assert!(s.offline);
        let s = HubSettings::from_env(&[("HOME", "/nonexistent")]);
        assert_eq!(s.endpoint, DEFAULT_ENDPOINT);
        assert!(s.token.is_none() && !s.offline);
    }

    #[test]
    fn token_file_under_hf_home() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(tmp.path().join("token"), "hf_file\n").unwrap_or_else(|e| panic!("{e}"));
        let home = tmp.path().to_string_lossy().to_string();
        let env = [("HOME", "/nonexistent"), ("HF_HOME", home.as_str())];
        let s = HubSettings::from_env(&env);
        assert_eq!(s.token.as_ref().map(Secret::expose), Some("hf_file"));
        assert!(s.token_source.is_some_and(|p| p.ends_with("token")));
    }
}
