//! Side by side: the same inputs through two services (MiniLM against another embedding model, a
//! new version against the old, fp32 against int8), with each one's latency and what differs:
//! the cosine between the two embeddings of each input, the entities only one of them found, both
//! label rankings of an image, and in search mode both top-k lists with the rank changes. Every
//! face (`predict --compare`, Query's `:compare`) calls [`compare`].

use serde::Serialize;
use serde_json::Value;

use super::Platform;
use super::call::{self, ServiceKind};

/// One service's side of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub service: String,
    pub method: String,
    pub latency_ms: f64,
    pub outputs: Vec<Value>,
}

/// What differs for one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputDiff {
    /// Cosine between the two embeddings; `None` when their dimensions differ.
    Embeddings {
        cosine: Option<f32>,
        dims: (usize, usize),
    },
    /// Entities as `word (TYPE)`: found by both, by A only, by B only.
    Entities {
        both: Vec<String>,
        only_a: Vec<String>,
        only_b: Vec<String>,
    },
    /// Each side's labels with their probabilities, best first.
    Images {
        a: Vec<(String, f64)>,
        b: Vec<(String, f64)>,
    },
    /// Feature vectors: the cosine of the mean-pooled ones.
    Features { cosine: Option<f32> },
}

/// Search mode: each side's ranking of the notes against the first input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchDiff {
    /// (note index, score), best first, top k.
    pub a: Vec<(usize, f32)>,
    pub b: Vec<(usize, f32)>,
}

impl SearchDiff {
    /// Where B ranks A's `i`-th note (0-based), if in B's top k.
    pub fn rank_in_b(&self, note: usize) -> Option<usize> {
        self.b.iter().position(|(n, _)| *n == note)
    }

    /// `=` same rank, `↑2` B ranks it two higher, `↓1` lower, `new` not in A's top k (for B's
    /// rows), `out` (for A's rows) not in B's top k.
    pub fn change(&self, a_rank: usize, note: usize) -> String {
        match self.rank_in_b(note) {
            None => "out".into(),
            Some(b) if b == a_rank => "=".into(),
            Some(b) if b < a_rank => format!("↑{}", a_rank - b),
            Some(b) => format!("↓{}", b - a_rank),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: Side,
    pub b: Side,
    /// One per input (in search mode: the query only).
    pub inputs: Vec<InputDiff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchDiff>,
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = norm(a) * norm(b);
    if n > 0.0 { dot / n } else { 0.0 }
}

pub fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// Ranks `notes` by cosine similarity to `query`, best first.
pub fn rank(query: &[f32], notes: &[Vec<f32>]) -> Vec<(usize, f32)> {
    let mut scored: Vec<(usize, f32)> = notes
        .iter()
        .enumerate()
        .map(|(i, n)| (i, cosine(query, n)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored
}

/// The kind of a service and the method to call it with, from its functions.
pub async fn kind(p: &dyn Platform, service: &str) -> Result<(ServiceKind, String), String> {
    kind_of(p, service).await
}

async fn kind_of(p: &dyn Platform, service: &str) -> Result<(ServiceKind, String), String> {
    let services = p.services().await.map_err(|e| e.to_string())?;
    let svc = services
        .iter()
        .find(|s| s.name == service || s.qualified_name() == service)
        .ok_or_else(|| format!("service {service} not found"))?;
    let functions = super::service_functions(
        p,
        &svc.name,
        svc.model.as_deref(),
        svc.model_version.as_deref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    ServiceKind::of(&functions)
        .ok_or_else(|| format!("service {service} has no method Query can call"))
}

fn kind_word(k: ServiceKind) -> &'static str {
    match k {
        ServiceKind::Embeddings => "embeds text",
        ServiceKind::Entities => "extracts entities",
        ServiceKind::Features => "gives feature vectors",
        ServiceKind::Images => "classifies images",
    }
}

/// Sends `rows` (and, in search mode, `notes` after them) to both services at once and says
/// what differs. The services must do the same kind of thing.
pub async fn compare(
    p: &dyn Platform,
    a: &str,
    b: &str,
    rows: &[Vec<Value>],
    notes: &[String],
    top_k: usize,
) -> Result<Comparison, String> {
    if a == b {
        return Err(format!("{a} against itself: name two different services"));
    }
    let ((ka, ma), (kb, mb)) = tokio::try_join!(kind_of(p, a), kind_of(p, b))?;
    if ka != kb {
        return Err(format!(
            "{a} {} but {b} {}: nothing to compare",
            kind_word(ka),
            kind_word(kb)
        ));
    }
    let search = !notes.is_empty() && ka == ServiceKind::Embeddings;
    let mut sent = rows.to_vec();
    if search {
        sent.extend(notes.iter().map(|n| vec![Value::String(n.clone())]));
    }
    let (ra, rb) = tokio::join!(p.predict(a, &ma, &sent), p.predict(b, &mb, &sent));
    let ra = ra.map_err(|e| format!("{a}: {e}"))?;
    let rb = rb.map_err(|e| format!("{b}: {e}"))?;
    let n = rows.len();
    let inputs = (0..n)
        .map(|i| {
            let (oa, ob) = (
                ra.outputs.get(i).unwrap_or(&Value::Null),
                rb.outputs.get(i).unwrap_or(&Value::Null),
            );
            diff(ka, oa, ob)
        })
        .collect();
    let search = search.then(|| {
        let vectors = |outputs: &[Value]| -> Vec<Vec<f32>> {
            outputs
                .iter()
                .map(|o| call::embedding(&o["output"]).unwrap_or_default())
                .collect()
        };
        let (va, vb) = (vectors(&ra.outputs), vectors(&rb.outputs));
        let top = |v: &[Vec<f32>]| -> Vec<(usize, f32)> {
            match v.split_first() {
                Some((q, rest)) => rank(q, &rest[n.saturating_sub(1)..])
                    .into_iter()
                    .take(top_k)
                    .collect(),
                None => Vec::new(),
            }
        };
        SearchDiff {
            a: top(&va),
            b: top(&vb),
        }
    });
    Ok(Comparison {
        a: Side {
            service: a.to_string(),
            method: ma,
            latency_ms: ra.latency_ms,
            outputs: ra.outputs.into_iter().take(n).collect(),
        },
        b: Side {
            service: b.to_string(),
            method: mb,
            latency_ms: rb.latency_ms,
            outputs: rb.outputs.into_iter().take(n).collect(),
        },
        inputs,
        search,
    })
}

fn diff(kind: ServiceKind, a: &Value, b: &Value) -> InputDiff {
    match kind {
        ServiceKind::Embeddings => {
            let (va, vb) = (
                call::embedding(&a["output"]).unwrap_or_default(),
                call::embedding(&b["output"]).unwrap_or_default(),
            );
            InputDiff::Embeddings {
                cosine: (va.len() == vb.len() && !va.is_empty()).then(|| cosine(&va, &vb)),
                dims: (va.len(), vb.len()),
            }
        }
        ServiceKind::Features => {
            let (va, vb) = (
                call::embedding(&a["mean"]).unwrap_or_default(),
                call::embedding(&b["mean"]).unwrap_or_default(),
            );
            InputDiff::Features {
                cosine: (va.len() == vb.len() && !va.is_empty()).then(|| cosine(&va, &vb)),
            }
        }
        ServiceKind::Entities => {
            let words = |v: &Value| -> Vec<String> {
                call::entities(v)
                    .iter()
                    .map(|g| format!("{} ({})", g.word, g.entity_group))
                    .collect()
            };
            let (wa, wb) = (words(a), words(b));
            InputDiff::Entities {
                both: wa.iter().filter(|w| wb.contains(w)).cloned().collect(),
                only_a: wa.iter().filter(|w| !wb.contains(w)).cloned().collect(),
                only_b: wb.iter().filter(|w| !wa.contains(w)).cloned().collect(),
            }
        }
        ServiceKind::Images => {
            let labels = |v: &Value| -> Vec<(String, f64)> {
                let names = v["labels"].as_array().cloned().unwrap_or_default();
                let scores = v["scores"].as_array().cloned().unwrap_or_default();
                names
                    .iter()
                    .zip(&scores)
                    .filter_map(|(l, s)| Some((l.as_str()?.to_string(), s.as_f64()?)))
                    .collect()
            };
            InputDiff::Images {
                a: labels(a),
                b: labels(b),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_changes_read_from_a_to_b() {
        let d = SearchDiff {
            a: vec![(4, 0.9), (2, 0.8), (7, 0.7)],
            b: vec![(2, 0.91), (4, 0.85), (9, 0.6)],
        };
        assert_eq!(d.change(0, 4), "↓1");
        assert_eq!(d.change(1, 2), "↑1");
        assert_eq!(d.change(2, 7), "out");
        let same = SearchDiff {
            a: vec![(1, 0.5)],
            b: vec![(1, 0.4)],
        };
        assert_eq!(same.change(0, 1), "=");
    }

    #[test]
    fn entities_split_into_both_and_each_sides_own() {
        let tok = |word: &str, entity: &str, start: usize| serde_json::json!({"word": word, "entity": entity, "score": 0.9, "index": 1, "start": start, "end": start + word.len()});
        let a =
            serde_json::json!({"outputs": [tok("fever", "B-SIGN", 0), tok("cough", "B-SIGN", 10)]});
        let b = serde_json::json!({"outputs": [tok("fever", "B-SIGN", 0), tok("asthma", "B-DISEASE", 20)]});
        let InputDiff::Entities {
            both,
            only_a,
            only_b,
        } = diff(ServiceKind::Entities, &a, &b)
        else {
            panic!("not entities");
        };
        assert_eq!(both, vec!["fever (SIGN)"]);
        assert_eq!(only_a, vec!["cough (SIGN)"]);
        assert_eq!(only_b, vec!["asthma (DISEASE)"]);
    }

    #[test]
    fn embeddings_of_other_sizes_have_no_cosine() {
        let a = serde_json::json!({"output": [1.0, 0.0]});
        let b = serde_json::json!({"output": [1.0, 0.0, 0.0]});
        assert_eq!(
            diff(ServiceKind::Embeddings, &a, &b),
            InputDiff::Embeddings {
                cosine: None,
                dims: (2, 3)
            }
        );
        let c = serde_json::json!({"output": [0.6, 0.8]});
        let InputDiff::Embeddings {
            cosine: Some(x), ..
        } = diff(ServiceKind::Embeddings, &a, &c)
        else {
            panic!("no cosine");
        };
        assert!((x - 0.6).abs() < 1e-6);
    }
}
