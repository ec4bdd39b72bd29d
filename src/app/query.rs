//! The Query pane's state: what is typed, what the selected service can do, and what came back.
//! Nothing here is written to disk: inputs may be clinical text (PHI). The session history keeps
//! the method, the number of inputs and the latency, not the inputs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::Function;

/// What the functions map holds for a service while its methods are being read.
pub const LOADING: &str = "loading…";

/// The synthetic clinical notes of the semantic-search demo (no real patient data).
pub const DEMO_NOTES: &str = include_str!("../../assets/demo/clinical_notes.txt");

pub fn demo_notes() -> Vec<&'static str> {
    DEMO_NOTES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Questions to try on the demo notes (semantic search), one per line.
pub const DEMO_QUESTIONS: &str = include_str!("../../assets/demo/questions.txt");

pub fn demo_questions() -> Vec<&'static str> {
    DEMO_QUESTIONS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// What a service does, read from its functions: the one reading every face uses.
pub use crate::platform::call::ServiceKind as QueryKind;

impl QueryKind {
    /// What to type, in one line.
    pub fn hint(self, search: bool) -> &'static str {
        match (self, search) {
            (QueryKind::Embeddings, false) => {
                "one text per line; the result compares them (cosine similarity, best match marked)"
            }
            (QueryKind::Embeddings, true) => {
                "a question; notes are ranked by similarity to it (the embedding cache of `hugflake batch embed` when it holds this model, else the demo notes)"
            }
            (QueryKind::Entities, _) => "one text per line; entities are highlighted by type",
            (QueryKind::Features, _) => "one text per line; CLS and mean vectors come back",
            (QueryKind::Images, _) => {
                "line 1: an image path (PNG/JPEG); line 2: labels, comma-separated"
            }
        }
    }
}

/// One call of this session (no inputs kept).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub service: String,
    pub method: String,
    pub inputs: usize,
    pub latency_ms: Option<f64>,
    pub ok: bool,
}

/// What a call returned, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub service: String,
    pub kind: QueryKind,
    /// The inputs as sent (kept in memory for the display only).
    pub inputs: Vec<String>,
    pub outputs: Vec<Value>,
    pub latency_ms: f64,
    /// Search mode: (note index, score), best first.
    pub ranking: Vec<(usize, f32)>,
    /// Search mode over the embedding cache (`hugflake batch embed`): the best notes' ids and
    /// scores, and what was searched.
    pub cache_hits: Vec<crate::batch::cache::Hit>,
    pub cache_searched: Option<CacheSearched>,
    /// Images: a small RGB thumbnail (width, height, pixels) for half-block drawing.
    pub thumbnail: Option<(u32, u32, Vec<u8>)>,
    /// Images: a larger copy as PNG, for terminals with a graphics protocol.
    pub png: Option<Vec<u8>>,
    /// The raw request and response bodies, for the JSON toggle.
    pub raw_request: Value,
    pub raw_response: Value,
}

/// Which cache a search ranked, for the header.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSearched {
    pub notes: usize,
    pub model: String,
    pub version: String,
}

/// What the pane asks the worker to do.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub service: String,
    pub method: String,
    pub kind: QueryKind,
    /// Texts, or for images `[path, labels]`.
    pub inputs: Vec<String>,
    /// Search mode: the demo notes to embed with the query (when not cached yet).
    pub notes: Vec<String>,
    pub search: bool,
    /// A model version called directly (warehouse inference on Snowflake) instead of a service.
    pub version: Option<(String, String)>,
}

#[derive(Debug, Default)]
pub struct QueryState {
    /// `:version MODEL V`: call that version directly instead of the selected service.
    pub version_target: Option<(String, String)>,
    pub input: String,
    /// A send asked for while the service's methods were still being read.
    pub send_when_ready: bool,
    pub editing: bool,
    pub search: bool,
    pub raw: bool,
    pub busy: bool,
    pub error: Option<String>,
    pub result: Option<QueryResult>,
    pub history: Vec<HistoryEntry>,
    /// Functions per service, once fetched.
    pub functions: HashMap<String, Result<Vec<Function>, String>>,
    /// Demo-note embeddings per service.
    pub note_vectors: HashMap<String, Vec<Vec<f32>>>,
    /// `:compare A B`: calls go to both services, side by side.
    pub compare: Option<(String, String)>,
    pub comparison: Option<Box<crate::platform::compare::Comparison>>,
}

/// What `:compare` asks the worker: the typed lines (texts, or an image's path and labels) for
/// both services; in search mode, for embedding services, the lines are one query and the demo
/// notes are ranked by both.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareRequest {
    pub a: String,
    pub b: String,
    pub lines: Vec<String>,
    pub search: bool,
}

pub use crate::platform::compare::{cosine, norm, rank};

/// A token-classification output's entities, grouped by the one rule every face uses
/// ([`crate::domain::entities`]).
pub fn group_entities(tokens: &Value) -> Vec<crate::domain::entities::EntityGroup> {
    crate::domain::entities::group_json(tokens)
}

/// Everything Query on the app's state: what it calls, what it sends, what comes back.
impl super::state::App {
    /// What the Query pane calls: the `:version` target, else the selected service.
    pub fn query_target(&self) -> Option<String> {
        match &self.query.version_target {
            Some((m, v)) => Some(format!("{m} {v}")),
            None => self.selected_query_service().map(|s| s.name.clone()),
        }
    }

    /// The selected service's kind and method, once its functions are known.
    pub fn query_kind(&self) -> Option<(QueryKind, String)> {
        let target = self.query_target()?;
        match self.query.functions.get(&target)? {
            Ok(f) => QueryKind::of(f),
            Err(_) => None,
        }
    }

    /// What is typed, one trimmed input per non-empty line.
    fn typed_lines(&self) -> Vec<String> {
        self.query
            .input
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Builds the call for what is typed, or says what is missing.
    pub(crate) fn query_request(&mut self) -> Option<super::state::Effect> {
        if let Some((a, b)) = self.query.compare.clone() {
            let lines = self.typed_lines();
            if lines.is_empty() {
                self.query.error = Some("nothing to send: type a text (one per line)".into());
                return None;
            }
            let search = self.query.search;
            self.query.error = None;
            self.query.busy = true;
            return Some(super::state::Effect::Compare(CompareRequest {
                a,
                b,
                lines,
                search,
            }));
        }
        let service = self.query_target()?;
        let Some((kind, method)) = self.query_kind() else {
            let loading = matches!(
                self.query.functions.get(&service),
                Some(Err(e)) if e == LOADING
            );
            if loading {
                // Sent as soon as the methods arrive.
                self.query.send_when_ready = true;
                self.query.error = None;
                self.set_flash(
                    format!("reading {service}'s methods; the call follows"),
                    false,
                );
            } else {
                self.query.error = Some(format!("{service}: its methods are not known"));
            }
            return None;
        };
        let lines = self.typed_lines();
        let search = kind == QueryKind::Embeddings && self.query.search;
        let inputs = if search { vec![lines.join(" ")] } else { lines };
        if inputs.is_empty() || inputs[0].is_empty() {
            self.query.error = Some(format!("nothing to send: {}", kind.hint(search)));
            return None;
        }
        if kind == QueryKind::Images && inputs.len() < 2 {
            self.query.error = Some(kind.hint(false).into());
            return None;
        }
        let notes = if search && !self.query.note_vectors.contains_key(&service) {
            demo_notes().into_iter().map(String::from).collect()
        } else {
            Vec::new()
        };
        self.query.error = None;
        self.query.busy = true;
        Some(super::state::Effect::Query(QueryRequest {
            service,
            method,
            kind,
            inputs,
            notes,
            search,
            version: self.query.version_target.clone(),
        }))
    }

    /// A call's answer: the history entry, the result (a search keeps the notes' vectors and
    /// ranks them), or the error.
    pub(crate) fn query_done(
        &mut self,
        request: QueryRequest,
        result: Result<Box<QueryResult>, String>,
    ) {
        self.query.busy = false;
        let entry = HistoryEntry {
            at: self.now,
            service: request.service.clone(),
            method: request.method.clone(),
            // A search over the embedding cache sends the query alone.
            inputs: request.inputs.len()
                + match &result {
                    Ok(r) if r.cache_searched.is_some() => 0,
                    _ => request.notes.len(),
                },
            latency_ms: result.as_ref().ok().map(|r| r.latency_ms),
            ok: result.is_ok(),
        };
        self.query.history.push(entry);
        match result {
            Ok(mut r) => {
                if request.search && r.cache_searched.is_none() {
                    // The notes' vectors came back after the query's: keep them.
                    if !request.notes.is_empty() {
                        let vectors: Vec<Vec<f32>> = r.outputs[1..]
                            .iter()
                            .map(|o| {
                                crate::platform::call::embedding(&o["output"]).unwrap_or_default()
                            })
                            .collect();
                        self.query
                            .note_vectors
                            .insert(request.service.clone(), vectors);
                        r.outputs.truncate(1);
                    }
                    if let (Some(q), Some(notes)) = (
                        r.outputs.first(),
                        self.query.note_vectors.get(&request.service),
                    ) {
                        r.ranking = rank(
                            &crate::platform::call::embedding(&q["output"]).unwrap_or_default(),
                            notes,
                        );
                    }
                }
                self.query.error = None;
                self.query.result = Some(*r);
            }
            Err(e) => self.query.error = Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ranking_puts_the_closest_note_first() {
        let notes = vec![vec![1.0, 0.0], vec![0.6, 0.8], vec![0.0, 1.0]];
        let r = rank(&[0.0, 2.0], &notes);
        assert_eq!(r[0].0, 2);
        assert!((r[0].1 - 1.0).abs() < 1e-6);
        assert_eq!(r[2].0, 0);
        assert!(demo_notes().len() >= 20);
    }

    #[test]
    fn entities_group_like_the_simple_strategy() {
        let tokens = json!([
            {"entity": "B-DRUG", "score": 0.9, "start": 0, "end": 4, "word": "amox"},
            {"entity": "I-DRUG", "score": 0.7, "start": 4, "end": 11, "word": "##icillin"},
            {"entity": "B-DISEASE", "score": 0.8, "start": 16, "end": 22, "word": "otitis"},
            {"entity": "I-DISEASE", "score": 0.6, "start": 23, "end": 28, "word": "media"}
        ]);
        let g = group_entities(&tokens);
        assert_eq!(g.len(), 2);
        assert_eq!(
            (g[0].entity_group.as_str(), g[0].start, g[0].end),
            ("DRUG", 0, 11)
        );
        assert!((g[0].score - 0.8).abs() < 1e-6);
        assert_eq!(
            (g[1].entity_group.as_str(), g[1].start, g[1].end),
            ("DISEASE", 16, 28)
        );
    }
}
