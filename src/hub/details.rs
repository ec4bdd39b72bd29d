//! Everything the details panel and `hugflake show` say about one Hub model: metadata, files and
//! sizes from the tree, the model card, and the two verdicts (Snowflake import, fits the pool).

use serde::{Deserialize, Serialize};

use super::api::{HubApiError, HubClient, ModelInfo, TreeEntry};
use crate::domain::candidate::{SnowflakeVerdict, snowflake_verdict};

/// File extensions that hold weights.
const WEIGHT_EXTENSIONS: &[&str] = &[
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".onnx",
    ".h5",
    ".msgpack",
    ".gguf",
];

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    pub lfs: bool,
}

/// Does the model fit a pool's memory?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitVerdict {
    pub pool: String,
    pub needs_gib: f64,
    pub budget_gib: f64,
    pub fits: bool,
}

impl FitVerdict {
    /// Memory to serve a model: the fp32 weights loaded once, plus activations and the runtime
    /// (a quarter more, and 0.25 GiB).
    pub fn estimate(weight_bytes: u64, pool: &str, budget_gib: f64) -> FitVerdict {
        let needs_gib = weight_bytes as f64 * 1.25 / GIB + 0.25;
        FitVerdict {
            pool: pool.into(),
            needs_gib,
            budget_gib,
            fits: needs_gib <= budget_gib,
        }
    }

    pub fn summary(&self) -> String {
        let head = format!(
            "{} {}: needs ~{:.1} GiB of {:.1} GiB",
            if self.fits { "fits" } else { "does not fit" },
            self.pool,
            self.needs_gib,
            self.budget_gib
        );
        match self.proposal() {
            Some(p) => format!("{head}; {p}"),
            None => head,
        }
    }

    /// When it does not fit: the smallest Snowflake CPU instance family whose memory would hold
    /// it, and the smallest GPU family whose GPU memory would.
    pub fn proposal(&self) -> Option<String> {
        if self.fits {
            return None;
        }
        let gpu = GPU_FAMILIES
            .iter()
            .find(|g| f64::from(g.count * g.gpu_gib) >= self.needs_gib)
            .map(|g| format!("{} ({}× {} {} GB)", g.name, g.count, g.gpu, g.gpu_gib));
        Some(
            match (
                INSTANCE_FAMILIES
                    .iter()
                    .find(|(_, gib)| *gib as f64 >= self.needs_gib),
                gpu,
            ) {
                (Some((family, gib)), Some(gpu)) => format!(
                    "a pool of {gib} GiB or more would (on Snowflake: INSTANCE_FAMILY = {family}, or with GPUs {gpu})"
                ),
                (Some((family, gib)), None) => format!(
                    "a pool of {gib} GiB or more would (on Snowflake: INSTANCE_FAMILY = {family})"
                ),
                (None, Some(gpu)) => format!(
                    "no CPU instance family holds it; on Snowflake a GPU family would: {gpu}"
                ),
                (None, None) => {
                    "no Snowflake instance family holds it: pick a smaller model".to_string()
                }
            },
        )
    }
}

/// Snowflake's CPU instance families (AWS) and their memory in GiB, smallest first
/// (docs.snowflake.com sql-reference/sql/create-compute-pool; an account's own list, by region,
/// comes from `SHOW COMPUTE POOL INSTANCE FAMILIES`, which the Snowflake platform reads).
pub const INSTANCE_FAMILIES: [(&str, u32); 9] = [
    ("CPU_X64_XS", 6),
    ("CPU_X64_S", 13),
    ("CPU_X64_M", 28),
    ("CPU_X64_SL", 54),
    ("HIGHMEM_X64_S", 58),
    ("CPU_X64_L", 116),
    ("HIGHMEM_X64_M", 240),
    ("HIGHMEM_X64_SL", 654),
    ("HIGHMEM_X64_L", 984),
];

/// A GPU instance family: GPUs per node, their kind and memory each (GB).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuFamily {
    pub name: &'static str,
    pub count: u32,
    pub gpu: &'static str,
    pub gpu_gib: u32,
}

/// Snowflake's GPU families on AWS, smallest GPU memory first (same documentation page).
pub const GPU_FAMILIES: [GpuFamily; 3] = [
    GpuFamily {
        name: "GPU_NV_S",
        count: 1,
        gpu: "NVIDIA A10G",
        gpu_gib: 24,
    },
    GpuFamily {
        name: "GPU_NV_M",
        count: 4,
        gpu: "NVIDIA A10G",
        gpu_gib: 24,
    },
    GpuFamily {
        name: "GPU_NV_L",
        count: 8,
        gpu: "NVIDIA A100",
        gpu_gib: 40,
    },
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDetails {
    pub id: String,
    pub commit: String,
    pub pipeline_tag: Option<String>,
    pub library: Option<String>,
    pub license: Option<String>,
    pub gated: bool,
    pub private: bool,
    pub downloads: Option<u64>,
    pub likes: Option<u64>,
    pub last_modified: Option<String>,
    pub parameters: Option<u64>,
    /// True when the count is estimated from `.bin` sizes (no safetensors metadata).
    pub parameters_estimated: bool,
    pub files: Vec<FileInfo>,
    pub total_bytes: u64,
    pub weight_bytes: u64,
    pub custom_code: bool,
    /// The model card (README.md) without its YAML header.
    pub card: Option<String>,
    pub snowflake: SnowflakeVerdict,
    pub fit: Option<FitVerdict>,
}

/// The library as Snowflake's import sees it: sentence-transformers repos are tagged so even when
/// `library_name` says otherwise.
fn library_of(info: &ModelInfo, files: &[TreeEntry]) -> Option<String> {
    if info.library_name.as_deref() == Some("open_clip")
        || files.iter().any(|f| f.path == "open_clip_config.json")
    {
        return Some("open_clip".into());
    }
    if info.library_name.as_deref() == Some("sentence-transformers")
        || info.tags.iter().any(|t| t == "sentence-transformers")
        || files.iter().any(|f| f.path == "modules.json")
    {
        return Some("sentence-transformers".into());
    }
    info.library_name.clone()
}

/// Whether `config.json`'s architectures carry a task head.
fn has_head(info: &ModelInfo) -> Option<bool> {
    let archs = info.config.as_ref()?.get("architectures")?.as_array()?;
    Some(archs.iter().filter_map(|a| a.as_str()).any(|a| {
        a.ends_with("ForTokenClassification")
            || a.ends_with("ForSequenceClassification")
            || a.ends_with("ForQuestionAnswering")
    }))
}

/// Strips a leading `---` YAML block.
pub fn strip_front_matter(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("---") else {
        return text;
    };
    match rest.find("\n---") {
        Some(end) => rest[end + 4..].trim_start_matches(['\r', '\n']),
        None => text,
    }
}

impl ModelDetails {
    pub fn build(
        info: &ModelInfo,
        tree: &[TreeEntry],
        card: Option<String>,
        pool: Option<(&str, f64)>,
    ) -> ModelDetails {
        use crate::domain::units::strip_control as clean;
        let files: Vec<FileInfo> = tree
            .iter()
            .map(|e| FileInfo {
                path: clean(&e.path),
                size: e.content_size(),
                lfs: e.lfs.is_some(),
            })
            .collect();
        let is_weight = |p: &str| WEIGHT_EXTENSIONS.iter().any(|x| p.ends_with(x));
        let safetensors_bytes: u64 = files
            .iter()
            .filter(|f| f.path.ends_with(".safetensors"))
            .map(|f| f.size)
            .sum();
        // Repos often ship the same weights in several formats: count one format.
        let weight_bytes = if safetensors_bytes > 0 {
            safetensors_bytes
        } else {
            files
                .iter()
                .filter(|f| is_weight(&f.path))
                .map(|f| f.size)
                .max()
                .unwrap_or(0)
        };
        let (parameters, parameters_estimated) =
            match info.safetensors.as_ref().and_then(|s| s.total) {
                Some(n) => (Some(n), false),
                None if weight_bytes > 0 => (Some(weight_bytes / 4), true),
                None => (None, false),
            };
        let library = library_of(info, tree);
        let task = info.pipeline_tag.clone().unwrap_or_default();
        let snowflake = match &library {
            Some(l) => snowflake_verdict(l, &task, has_head(info)),
            None => snowflake_verdict("", &task, has_head(info)),
        };
        // Everything the Hub wrote is stripped of terminal escapes before it can reach a screen.
        let card = card.map(|c| c.lines().map(clean).collect::<Vec<_>>().join("\n"));
        ModelDetails {
            id: clean(&info.id),
            commit: clean(info.sha.as_deref().unwrap_or_default()),
            pipeline_tag: info.pipeline_tag.as_deref().map(clean),
            library: library.as_deref().map(clean),
            license: info.license().as_deref().map(clean),
            gated: info.is_gated(),
            private: info.private,
            downloads: info.downloads,
            likes: info.likes,
            last_modified: info.last_modified.as_deref().map(clean),
            parameters,
            parameters_estimated,
            total_bytes: files.iter().map(|f| f.size).sum(),
            files,
            weight_bytes,
            custom_code: info.needs_custom_code(),
            card,
            snowflake,
            fit: pool.map(|(name, budget)| FitVerdict::estimate(weight_bytes, name, budget)),
        }
    }
}

/// Fetches info, tree and card of a model at a revision. Without the Hub's safetensors metadata,
/// the parameter count is read from the `.safetensors` headers with two small Range requests per file.
pub async fn fetch(
    client: &HubClient,
    repo: &str,
    revision: &str,
    pool: Option<(&str, f64)>,
) -> Result<ModelDetails, HubApiError> {
    let mut info = client.model_info(repo, revision).await?;
    let commit = info.sha.clone().unwrap_or_else(|| revision.to_string());
    let tree = client.tree(repo, &commit).await?;
    let card = if tree.iter().any(|e| e.path == "README.md") {
        fetch_card(client, repo, &commit).await.ok()
    } else {
        None
    };
    if info.safetensors.as_ref().and_then(|s| s.total).is_none() {
        let mut total = 0u64;
        let mut any = false;
        for e in tree.iter().filter(|e| e.path.ends_with(".safetensors")) {
            match safetensors_parameters(client, repo, &commit, &e.path).await {
                Ok(n) => {
                    total += n;
                    any = true;
                }
                Err(err) => tracing::debug!(path = %e.path, error = %err, "no safetensors header"),
            }
        }
        if any {
            info.safetensors = Some(super::api::SafetensorsInfo { total: Some(total) });
        }
    }
    Ok(ModelDetails::build(&info, &tree, card, pool))
}

async fn range(client: &HubClient, url: &str, from: u64, to: u64) -> Result<Vec<u8>, String> {
    let resp = client
        .get(url)
        .header(reqwest::header::RANGE, format!("bytes={from}-{to}"))
        .timeout(std::time::Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return Err(format!("expected 206, got {}", resp.status()));
    }
    Ok(resp.bytes().await.map_err(|e| e.to_string())?.to_vec())
}

/// Parameters in one safetensors file, from its header (8-byte length, then JSON).
pub async fn safetensors_parameters(
    client: &HubClient,
    repo: &str,
    commit: &str,
    path: &str,
) -> Result<u64, String> {
    let url = client.resolve_url(repo, commit, path);
    let head = range(client, &url, 0, 7).await?;
    let bytes: [u8; 8] = head
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("short header")?;
    let len = u64::from_le_bytes(bytes);
    if len == 0 || len > 100_000_000 {
        return Err(format!("implausible header length {len}"));
    }
    let header = range(client, &url, 8, 8 + len - 1).await?;
    parameters_from_header(&header)
}

/// Sums the element counts of every tensor in a safetensors header.
pub fn parameters_from_header(header: &[u8]) -> Result<u64, String> {
    let v: serde_json::Value = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    let tensors = v.as_object().ok_or("header is not an object")?;
    Ok(tensors
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, t)| {
            t.get("shape")?
                .as_array()
                .map(|s| s.iter().filter_map(|d| d.as_u64()).product::<u64>())
        })
        .sum())
}

async fn fetch_card(client: &HubClient, repo: &str, commit: &str) -> Result<String, HubApiError> {
    let url = client.resolve_url(repo, commit, "README.md");
    let resp = client
        .get(&url)
        .timeout(std::time::Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| HubApiError::Unreachable {
            endpoint: client.settings.endpoint.clone(),
            detail: e.to_string(),
        })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(client.status_error(status, repo, "README.md", &text));
    }
    let body = strip_front_matter(&text);
    Ok(body.chars().take(20_000).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_from_a_safetensors_header() {
        let h = br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[384,768],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[384],"data_offsets":[1,2]}}"#;
        assert_eq!(parameters_from_header(h), Ok(384 * 768 + 384));
        assert!(parameters_from_header(b"not json").is_err());
    }

    #[test]
    fn fit_and_front_matter() {
        let f = FitVerdict::estimate(90_868_376, "LOCAL_CPU", 17.6);
        assert!(f.fits);
        assert!(
            f.summary()
                .starts_with("fits LOCAL_CPU: needs ~0.4 GiB of 17.6 GiB"),
            "{}",
            f.summary()
        );
        let big = FitVerdict::estimate(30_000_000_000, "LOCAL_CPU", 17.6);
        assert!(!big.fits);
        assert_eq!(
            big.summary(),
            "does not fit LOCAL_CPU: needs ~35.2 GiB of 17.6 GiB; a pool of 54 GiB or more would (on Snowflake: INSTANCE_FAMILY = CPU_X64_SL, or with GPUs GPU_NV_M (4× NVIDIA A10G 24 GB))"
        );
        let large = FitVerdict::estimate(200_000_000_000, "LOCAL_CPU", 17.6);
        assert!(
            large.summary().ends_with(
                "INSTANCE_FAMILY = HIGHMEM_X64_M, or with GPUs GPU_NV_L (8× NVIDIA A100 40 GB))"
            ),
            "{}",
            large.summary()
        );
        let huge = FitVerdict::estimate(900_000_000_000, "LOCAL_CPU", 17.6);
        assert!(
            huge.summary()
                .ends_with("no Snowflake instance family holds it: pick a smaller model"),
            "{}",
            huge.summary()
        );
        assert_eq!(
            strip_front_matter("---\nlicense: mit\n---\n# Title\n"),
            "# Title\n"
        );
        assert_eq!(strip_front_matter("# No header"), "# No header");
    }
}
