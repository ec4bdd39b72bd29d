//! Candidates: models a user may import, from the curated catalog, the local Hugging Face cache
//! and the Hub, with the verdicts the tool says out loud.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a candidate row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateSource {
    Catalog,
    Cache,
    CatalogAndCache,
    /// A Hub search result.
    Hub,
}

impl CandidateSource {
    pub fn label(self) -> &'static str {
        match self {
            CandidateSource::Catalog => "catalog",
            CandidateSource::Cache => "cache",
            CandidateSource::CatalogAndCache => "catalog+cache",
            CandidateSource::Hub => "hub",
        }
    }

    /// The same in at most 9 columns.
    pub fn short_label(self) -> &'static str {
        match self {
            CandidateSource::CatalogAndCache => "cat+cache",
            other => other.label(),
        }
    }
}

/// Can Snowflake's "Import model from Hugging Face" serve this model, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnowflakeVerdict {
    /// `Some(true)` supported, `Some(false)` not, `None` not known yet.
    pub supported: Option<bool>,
    /// The task Snowflake would import it as.
    pub task: Option<String>,
    /// The methods the version would get (`ENCODE`, `__CALL__`).
    pub methods: Vec<String>,
    /// One sentence a user can act on.
    pub reason: String,
}

impl SnowflakeVerdict {
    pub fn summary(&self) -> String {
        match self.supported {
            Some(true) => format!(
                "supported as {} ({})",
                self.task.as_deref().unwrap_or("?"),
                self.methods.join(", ")
            ),
            Some(false) => "not supported".into(),
            None => "unknown".into(),
        }
    }
}

/// The verdict for a library, task and (for token classification) whether a fine-tuned head exists.
/// Sources: SNOWFLAKE.md §1-2 and DESIGN.md "Verdicts".
pub fn snowflake_verdict(library: &str, task: &str, has_head: Option<bool>) -> SnowflakeVerdict {
    let yes = |task: &str, methods: &[&str], reason: &str| SnowflakeVerdict {
        supported: Some(true),
        task: Some(task.into()),
        methods: methods.iter().map(|m| (*m).to_string()).collect(),
        reason: reason.into(),
    };
    let no = |reason: String| SnowflakeVerdict {
        supported: Some(false),
        task: None,
        methods: Vec::new(),
        reason,
    };
    match (library, task) {
        ("open_clip", _) => no(
            "an open_clip model is not a transformers pipeline, so Snowflake's Hugging Face import cannot \
             serve it; serve it on the local platform, or log it yourself as a snowflake-ml-python custom model"
                .into(),
        ),
        ("sentence-transformers", _) => yes(
            "sentence-transformers",
            &["ENCODE", "ENCODE_QUERY", "ENCODE_DOCUMENT"],
            "imported through the sentence-transformers route: input `sentence`, output `output` (the embedding)",
        ),
        (_, "token-classification" | "ner") if has_head == Some(false) => SnowflakeVerdict {
            supported: Some(true),
            task: Some("token-classification".into()),
            methods: vec!["__CALL__".into()],
            reason: "this checkpoint has no fine-tuned classification head: imported as token-classification \
                     its head is randomly initialised and the labels are noise; pick a fine-tuned NER checkpoint"
                .into(),
        },
        (_, "token-classification" | "ner") => yes(
            "token-classification",
            &["__CALL__"],
            "one row per token: entity, score, index, word, start, end",
        ),
        (_, "feature-extraction") => no(
            "feature-extraction has no automatic signature in Snowflake's import, so logging fails; \
             import a sentence-transformers model for embeddings, or a fine-tuned checkpoint for its task"
                .into(),
        ),
        (_, t @ ("zero-shot-classification" | "text-classification" | "fill-mask")) => {
            yes(t, &["__CALL__"], "a transformers pipeline with an automatic signature")
        }
        (_, "zero-shot-image-classification") => yes(
            "zero-shot-image-classification",
            &["__CALL__"],
            "a transformers pipeline: inputs `images` (bytes) and `candidate_labels`, output labels with scores",
        ),
        (_, t) => SnowflakeVerdict {
            supported: None,
            task: None,
            methods: Vec::new(),
            reason: format!(
                "task `{t}` with library `{library}`: not among the tasks hugflake knows Snowflake's import serves"
            ),
        },
    }
}

/// One cached revision (a directory under `snapshots/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedRevision {
    pub commit: String,
    /// Refs pointing at it (`main`, a tag...).
    pub refs: Vec<String>,
    pub files: usize,
    /// Bytes of the blobs its files point at.
    pub size_bytes: u64,
}

/// A model repo in the local Hugging Face cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedRepo {
    pub repo_id: String,
    pub path: std::path::PathBuf,
    /// Bytes of all blobs (each blob once), as `hf cache scan` counts them.
    pub size_on_disk: u64,
    pub revisions: Vec<CachedRevision>,
    pub last_modified: Option<DateTime<Utc>>,
    /// Library and task read from the cached files, when they say.
    pub library: Option<String>,
    pub task: Option<String>,
    pub has_head: Option<bool>,
    /// Files downloaded but not finished (`.incomplete` blobs).
    pub incomplete_files: usize,
}

/// A row of the Candidates pane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub handle: String,
    pub task: Option<String>,
    pub library: Option<String>,
    pub license: Option<String>,
    pub parameters: Option<u64>,
    /// True when the parameter count is estimated (a `.bin`-only repo), not read from metadata.
    pub parameters_estimated: bool,
    pub weight_bytes: Option<u64>,
    /// The main weights file (`model.safetensors`, `pytorch_model.bin`...).
    pub weight_file: Option<String>,
    /// True when the weight size is approximate rather than a byte count from the Hub's tree.
    pub weight_bytes_approx: bool,
    pub purpose: Option<String>,
    pub snowflake: SnowflakeVerdict,
    /// Plain warnings a user must see (no head, research use only...).
    pub notes: Vec<String>,
    /// Other Hub repos this model needs (BiomedCLIP's text tower).
    pub requires: Vec<String>,
    pub source: CandidateSource,
    pub cache: Option<CachedRepo>,
    /// Models that serve this one's purpose where it cannot (the catalog's "import X instead").
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
}

/// Another model to import instead, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alternative {
    pub handle: String,
    /// What it is the better pick for ("entities", "radiology zero-shot on Snowflake").
    pub purpose: String,
    /// True when it is offered only where the registry is Snowflake (the model itself runs on
    /// the local platform).
    #[serde(default)]
    pub snowflake_only: bool,
}

impl Alternative {
    /// "for entities, import d4data/biomedical-ner-all instead"
    pub fn sentence(&self) -> String {
        format!("for {}, import {} instead", self.purpose, self.handle)
    }

    /// Whether to offer it on a platform (`on_snowflake`: the registry is Snowflake's).
    pub fn applies(&self, on_snowflake: bool) -> bool {
        on_snowflake || !self.snowflake_only
    }
}

impl Candidate {
    /// A cache-only row: what the cached files say, nothing invented.
    pub fn from_cache(repo: CachedRepo) -> Candidate {
        let library = repo.library.clone();
        let task = repo.task.clone();
        let snowflake = match (&library, &task) {
            (Some(l), Some(t)) => snowflake_verdict(l, t, repo.has_head),
            (Some(l), None) if l == "open_clip" || l == "sentence-transformers" => {
                snowflake_verdict(l, "", repo.has_head)
            }
            _ => SnowflakeVerdict {
                supported: None,
                task: None,
                methods: Vec::new(),
                reason: "library and task not known from the cached files".into(),
            },
        };
        Candidate {
            cache: Some(repo.clone()),
            ..Candidate::bare(
                &repo.repo_id,
                task,
                library,
                snowflake,
                CandidateSource::Cache,
            )
        }
    }

    /// A row with only what a listing says: no sizes, licence or notes yet.
    fn bare(
        handle: &str,
        task: Option<String>,
        library: Option<String>,
        snowflake: SnowflakeVerdict,
        source: CandidateSource,
    ) -> Candidate {
        Candidate {
            handle: handle.into(),
            task,
            library,
            license: None,
            parameters: None,
            parameters_estimated: false,
            weight_bytes: None,
            weight_file: None,
            weight_bytes_approx: false,
            purpose: None,
            snowflake,
            notes: Vec::new(),
            requires: Vec::new(),
            source,
            cache: None,
            alternatives: Vec::new(),
        }
    }

    /// A Hub search hit: what the search result says, nothing invented (terminal escapes in it
    /// are stripped).
    pub fn from_hub(handle: &str, task: Option<&str>, library: Option<&str>) -> Candidate {
        use super::units::strip_control as clean;
        let snowflake = snowflake_verdict(library.unwrap_or(""), task.unwrap_or(""), None);
        Candidate::bare(
            &clean(handle),
            task.map(clean),
            library.map(clean),
            snowflake,
            CandidateSource::Hub,
        )
    }

    /// The weights' size (`~` when approximate), else the size on disk, else `-`.
    pub fn size_label(&self) -> String {
        match (self.weight_bytes, &self.cache) {
            (Some(b), _) => format!(
                "{}{}",
                if self.weight_bytes_approx { "~" } else { "" },
                super::units::bytes(b)
            ),
            (None, Some(repo)) => super::units::bytes(repo.size_on_disk),
            (None, None) => "-".into(),
        }
    }

    /// Text the `/` filter matches against.
    pub fn haystack(&self) -> String {
        [
            self.handle.as_str(),
            self.task.as_deref().unwrap_or(""),
            self.library.as_deref().unwrap_or(""),
            self.purpose.as_deref().unwrap_or(""),
            self.source.label(),
        ]
        .join(" ")
    }
}

/// Joins catalog rows with the cache: a cached catalog model becomes one row with both.
pub fn merge(catalog: Vec<Candidate>, cached: Vec<CachedRepo>) -> Vec<Candidate> {
    let mut rows = catalog;
    for repo in cached {
        match rows.iter_mut().find(|c| c.handle == repo.repo_id) {
            Some(row) => {
                row.source = CandidateSource::CatalogAndCache;
                row.cache = Some(repo);
            }
            None => rows.push(Candidate::from_cache(repo)),
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_for_the_reference_models() {
        let minilm = snowflake_verdict("sentence-transformers", "sentence-similarity", None);
        assert_eq!(minilm.supported, Some(true));
        assert_eq!(
            minilm.methods,
            ["ENCODE", "ENCODE_QUERY", "ENCODE_DOCUMENT"]
        );
        let clip = snowflake_verdict("open_clip", "zero-shot-image-classification", None);
        assert_eq!(clip.supported, Some(false));
        assert!(clip.reason.contains("open_clip"));
        let biobert = snowflake_verdict("transformers", "feature-extraction", Some(false));
        assert_eq!(biobert.supported, Some(false));
        let biobert_ner = snowflake_verdict("transformers", "token-classification", Some(false));
        assert!(biobert_ner.reason.contains("noise"));
        assert_eq!(
            snowflake_verdict("diffusers", "text-to-image", None).supported,
            None
        );
    }
}
