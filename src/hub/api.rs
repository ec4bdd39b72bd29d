//! The Hub's HTTP API: search (`/api/models`, paginated by `Link: rel="next"`), model info, file
//! trees. Every request has a timeout; errors say what a user can do.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LINK};
use serde::{Deserialize, Serialize};

use super::settings::HubSettings;

/// Why a Hub call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HubApiError {
    #[error(
        "the Hub is offline (HF_HUB_OFFLINE is set): only the catalog and the local cache are available"
    )]
    Offline,
    #[error("cannot reach the Hub at {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    #[error(
        "{repo} is gated: accept the licence on the model page, then set HF_TOKEN (or run `hf auth login`)"
    )]
    Gated { repo: String },
    #[error("the Hub refused the token for {repo} ({status}): check HF_TOKEN and its permissions")]
    Unauthorized { repo: String, status: u16 },
    #[error("{what} not found on the Hub (check the spelling, or whether it is private)")]
    NotFound { what: String },
    #[error("the Hub answered {status} for {what}: {detail}")]
    Status {
        what: String,
        status: u16,
        detail: String,
    },
    #[error("unexpected answer from the Hub for {what}: {detail}")]
    Protocol { what: String, detail: String },
}

/// Search filters, as the Hub's `/api/models` takes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchQuery {
    pub search: Option<String>,
    pub author: Option<String>,
    pub pipeline_tag: Option<String>,
    pub library: Option<String>,
    /// downloads, likes, trendingScore, lastModified, createdAt
    pub sort: Option<String>,
    pub limit: Option<u32>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub id: String,
    #[serde(default)]
    pub pipeline_tag: Option<String>,
    #[serde(default)]
    pub library_name: Option<String>,
    #[serde(default)]
    pub downloads: Option<u64>,
    #[serde(default)]
    pub likes: Option<u64>,
    #[serde(default, rename = "lastModified")]
    pub last_modified: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A page of search results and the URL of the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub models: Vec<ModelSummary>,
    pub next: Option<String>,
}

/// `/api/models/{id}/revision/{rev}`: the fields hugflake uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    /// The commit the revision resolves to.
    pub sha: Option<String>,
    #[serde(default)]
    pub pipeline_tag: Option<String>,
    #[serde(default)]
    pub library_name: Option<String>,
    /// `false`, `"auto"` or `"manual"`.
    #[serde(default)]
    pub gated: serde_json::Value,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub downloads: Option<u64>,
    #[serde(default)]
    pub likes: Option<u64>,
    #[serde(default, rename = "lastModified")]
    pub last_modified: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, rename = "cardData")]
    pub card_data: Option<serde_json::Value>,
    #[serde(default)]
    pub safetensors: Option<SafetensorsInfo>,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SafetensorsInfo {
    #[serde(default)]
    pub total: Option<u64>,
}

impl ModelInfo {
    pub fn is_gated(&self) -> bool {
        !matches!(
            self.gated,
            serde_json::Value::Bool(false) | serde_json::Value::Null
        )
    }

    pub fn license(&self) -> Option<String> {
        self.card_data
            .as_ref()
            .and_then(|c| c.get("license"))
            .and_then(|l| l.as_str())
            .map(String::from)
            .or_else(|| {
                self.tags
                    .iter()
                    .find_map(|t| t.strip_prefix("license:").map(String::from))
            })
    }

    /// Custom modelling code means `trust_remote_code`.
    pub fn needs_custom_code(&self) -> bool {
        self.tags.iter().any(|t| t == "custom_code")
    }
}

/// The LFS pointer part of a tree entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsInfo {
    /// sha256 of the content.
    pub oid: String,
    pub size: u64,
}

/// One entry of `/api/models/{id}/tree/{rev}?recursive=true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    #[serde(rename = "type")]
    pub kind: String,
    /// Git blob sha1 (of the pointer file, for LFS files).
    pub oid: String,
    pub size: u64,
    pub path: String,
    #[serde(default)]
    pub lfs: Option<LfsInfo>,
}

impl TreeEntry {
    pub fn is_file(&self) -> bool {
        self.kind == "file"
    }

    /// The content's size (the LFS object's, not the pointer's).
    pub fn content_size(&self) -> u64 {
        self.lfs.as_ref().map_or(self.size, |l| l.size)
    }

    /// The blob name in the cache, as huggingface_hub names it: the sha256 for LFS files, the git
    /// blob sha1 for the others.
    pub fn blob_id(&self) -> &str {
        self.lfs
            .as_ref()
            .map_or(self.oid.as_str(), |l| l.oid.as_str())
    }
}

#[derive(Clone)]
pub struct HubClient {
    pub settings: HubSettings,
    http: reqwest::Client,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("endpoint", &self.settings.endpoint)
            .finish()
    }
}

/// `Link: <url>; rel="next"`, as the Hub paginates.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(LINK)?.to_str().ok()?;
    value.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// Checks a repo id (`org/name`) before it goes into a URL or a cache path.
pub fn validate_repo_id(id: &str) -> Result<(), String> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && !p.starts_with(['.', '-'])
            && !p.contains("..")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match id.split_once('/') {
        Some((org, name)) if ok_part(org) && ok_part(name) => Ok(()),
        _ => Err(format!(
            "`{id}` is not a Hub repo id: expected `org/name` with letters, digits, `-`, `_` or `.` (e.g. sentence-transformers/all-MiniLM-L6-v2)"
        )),
    }
}

use crate::http::encode_segment;

/// A repo file path encoded segment by segment (slashes kept).
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

impl HubClient {
    pub fn new(settings: HubSettings) -> HubClient {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(30))
            .user_agent(concat!("hugflake/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        HubClient { settings, http }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A GET with the token when one is set.
    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let req = self.http.get(url);
        match &self.settings.token {
            Some(t) => req.bearer_auth(t.expose()),
            None => req,
        }
    }

    pub fn resolve_url(&self, repo: &str, revision: &str, path: &str) -> String {
        format!(
            "{}/{repo}/resolve/{}/{}",
            self.settings.endpoint,
            encode_segment(revision),
            encode_path(path)
        )
    }

    fn unreachable(&self, e: &reqwest::Error) -> HubApiError {
        let mut detail = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            e.to_string()
        };
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail = format!("{detail}: {s}");
            source = s.source();
        }
        HubApiError::Unreachable {
            endpoint: self.settings.endpoint.clone(),
            detail,
        }
    }

    /// Maps an error status to a plain message about `repo` (or `what`).
    pub fn status_error(
        &self,
        status: StatusCode,
        repo: &str,
        what: &str,
        body: &str,
    ) -> HubApiError {
        let detail: String = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_else(|| body.chars().take(200).collect());
        let gated = detail.to_lowercase().contains("gated") || detail.contains("restricted");
        match status.as_u16() {
            401 | 403 if gated || self.settings.token.is_none() && status == 403 => {
                HubApiError::Gated { repo: repo.into() }
            }
            401 if self.settings.token.is_none() => HubApiError::NotFound {
                what: format!("{what} (private or gated repos need HF_TOKEN)"),
            },
            401 | 403 => HubApiError::Unauthorized {
                repo: repo.into(),
                status: status.as_u16(),
            },
            404 => HubApiError::NotFound { what: what.into() },
            s => HubApiError::Status {
                what: what.into(),
                status: s,
                detail,
            },
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        repo: &str,
        what: &str,
    ) -> Result<(T, HeaderMap), HubApiError> {
        if self.settings.offline {
            return Err(HubApiError::Offline);
        }
        let resp = self
            .get(url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            return Err(self.status_error(status, repo, what, &body));
        }
        let value = serde_json::from_str(&body).map_err(|e| HubApiError::Protocol {
            what: what.into(),
            detail: e.to_string(),
        })?;
        Ok((value, headers))
    }

    /// The first page of a search.
    pub async fn search(&self, q: &SearchQuery) -> Result<SearchPage, HubApiError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        let mut add = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                params.push((k, v.clone()));
            }
        };
        add("search", &q.search);
        add("author", &q.author);
        add("pipeline_tag", &q.pipeline_tag);
        add("library", &q.library);
        add("sort", &q.sort);
        if q.sort.is_some() {
            params.push(("direction", "-1".into()));
        }
        params.push(("limit", q.limit.unwrap_or(30).to_string()));
        let query: String = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_segment(v)))
            .collect::<Vec<_>>()
            .join("&");
        let url = format!("{}/api/models?{query}", self.settings.endpoint);
        self.search_page(&url).await
    }

    /// A page by URL (the first, or a `next` link).
    pub async fn search_page(&self, url: &str) -> Result<SearchPage, HubApiError> {
        let (models, headers) = self
            .get_json::<Vec<ModelSummary>>(url, "", "model search")
            .await?;
        Ok(SearchPage {
            models,
            next: next_link(&headers),
        })
    }

    pub async fn model_info(&self, repo: &str, revision: &str) -> Result<ModelInfo, HubApiError> {
        let url = format!(
            "{}/api/models/{repo}/revision/{}",
            self.settings.endpoint,
            encode_segment(revision)
        );
        Ok(self
            .get_json(&url, repo, &format!("model {repo} at {revision}"))
            .await?
            .0)
    }

    /// Every file of a revision (directories left out), following pagination.
    pub async fn tree(&self, repo: &str, revision: &str) -> Result<Vec<TreeEntry>, HubApiError> {
        let mut url = Some(format!(
            "{}/api/models/{repo}/tree/{}?recursive=true",
            self.settings.endpoint,
            encode_segment(revision)
        ));
        let mut files = Vec::new();
        while let Some(u) = url.take() {
            let (page, headers) = self
                .get_json::<Vec<TreeEntry>>(&u, repo, &format!("files of {repo} at {revision}"))
                .await?;
            files.extend(page.into_iter().filter(TreeEntry::is_file));
            url = next_link(&headers);
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn link_header_next() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static(
                "<https://hub/api/models?cursor=abc&limit=2>; rel=\"next\", <https://hub/x>; rel=\"prev\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://hub/api/models?cursor=abc&limit=2")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn repo_ids_are_checked() {
        assert!(validate_repo_id("sentence-transformers/all-MiniLM-L6-v2").is_ok());
        assert!(
            validate_repo_id("microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224").is_ok()
        );
        for bad in ["nope", "a/b/c", "../x", "a/..", "a/b c", "/x", "a/"] {
            assert!(validate_repo_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(
            encode_path("1_Pooling/config.json"),
            "1_Pooling/config.json"
        );
        assert_eq!(encode_path("a b/c#d"), "a%20b/c%23d");
    }

    #[test]
    fn tree_entries_name_blobs_like_huggingface_hub() {
        let e: TreeEntry = serde_json::from_str(
            r#"{"type":"file","oid":"aaa","size":135,"path":"model.safetensors","lfs":{"oid":"bbb","size":90868376,"pointerSize":135}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.blob_id(), "bbb");
        assert_eq!(e.content_size(), 90_868_376);
        let e: TreeEntry =
            serde_json::from_str(r#"{"type":"file","oid":"ccc","size":612,"path":"config.json"}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.blob_id(), "ccc");
    }
}
