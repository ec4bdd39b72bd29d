//! One way to call a service, for every face (the Query pane, `predict SERVICE`, `batch`): what
//! kind of service it is (from its functions), which method to use, labels and rows for texts and
//! images, and reading embeddings and entities back. Beside `protocol` (the wire format).

use base64::Engine;
use serde_json::Value;

use crate::domain::Function;
pub use crate::domain::entities::{EntityGroup, group_json as entities};

/// What a service does, read from its functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// `ENCODE`: sentence embeddings.
    Embeddings,
    /// `__CALL__` → `outputs`: token classification.
    Entities,
    /// `__CALL__` → `cls`, `mean`: feature extraction.
    Features,
    /// `__CALL__` with `images`: zero-shot image classification.
    Images,
}

impl ServiceKind {
    /// The kind and the method to call it with.
    pub fn of(functions: &[Function]) -> Option<(ServiceKind, String)> {
        if functions.iter().any(|f| f.name == "ENCODE") {
            return Some((ServiceKind::Embeddings, "ENCODE".into()));
        }
        let call = functions.iter().find(|f| f.name == "__CALL__")?;
        let kind = if takes_images(call) {
            ServiceKind::Images
        } else if call
            .returns
            .iter()
            .any(|r| r.name == "cls" || r.name == "mean")
        {
            ServiceKind::Features
        } else {
            ServiceKind::Entities
        };
        Some((kind, call.name.clone()))
    }
}

/// Whether a function takes an image (a BINARY argument, or one named `images`).
pub fn takes_images(f: &Function) -> bool {
    f.arguments
        .iter()
        .any(|a| a.kind.eq_ignore_ascii_case("BINARY") || a.name == "images")
}

/// The method to call: the one asked for (refused, with what there is, when the service lacks
/// it), else `ENCODE`, else the service's first.
pub fn method(
    functions: &[Function],
    asked: Option<&str>,
    service: &str,
) -> Result<String, String> {
    let names = || {
        functions
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match asked {
        Some(m) => {
            let m = m.to_ascii_uppercase();
            if functions.is_empty() || functions.iter().any(|f| f.name == m) {
                Ok(m)
            } else {
                Err(format!(
                    "service {service} has no method {m}: it has {}",
                    names()
                ))
            }
        }
        None => functions
            .iter()
            .map(|f| f.name.clone())
            .find(|n| n == "ENCODE")
            .or_else(|| functions.first().map(|f| f.name.clone()))
            .ok_or_else(|| format!("service {service} lists no functions")),
    }
}

/// The method that embeds a search query: `ENCODE_QUERY` when the service has it, else `ENCODE`;
/// refused for a service that does not embed text.
pub fn query_method(functions: &[Function], service: &str) -> Result<String, String> {
    let has = |n: &str| functions.iter().any(|f| f.name == n);
    if has("ENCODE_QUERY") {
        Ok("ENCODE_QUERY".into())
    } else if has("ENCODE") || functions.is_empty() {
        Ok("ENCODE".into())
    } else {
        Err(format!(
            "service {service} does not embed text (it has {})",
            functions
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Candidate labels from `a, b, c`: trimmed, empty ones dropped, two or more.
pub fn labels(text: &str) -> Result<Vec<String>, String> {
    let labels: Vec<String> = text
        .split(',')
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if labels.len() < 2 {
        return Err(format!(
            "give two or more candidate labels, comma-separated (e.g. \"chest X-ray,brain MRI\"); got {}",
            labels.len()
        ));
    }
    Ok(labels)
}

/// One row per text.
pub fn text_rows(texts: impl IntoIterator<Item = String>) -> Vec<Vec<Value>> {
    texts.into_iter().map(|t| vec![Value::String(t)]).collect()
}

/// One image row: the picture (base64, as the local platform takes it; the Snowflake platform
/// re-encodes it for its ingress) and the labels.
pub fn image_row(bytes: &[u8], labels: &[String]) -> Vec<Value> {
    vec![
        Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        Value::from(labels.to_vec()),
    ]
}

/// The same with a prompt template (`hypothesis_template`) after the labels.
pub fn image_row_with_template(
    bytes: &[u8],
    labels: &[String],
    template: Option<&str>,
) -> Vec<Value> {
    let mut row = image_row(bytes, labels);
    if let Some(t) = template {
        row.push(Value::String(t.to_string()));
    }
    row
}

/// A 32x32 grey PNG, base64: a valid image for warm-ups and readiness calls.
pub fn tiny_png() -> String {
    let img = image::RgbImage::from_pixel(32, 32, image::Rgb([128, 128, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    let _ = image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png);
    base64::engine::general_purpose::STANDARD.encode(out.into_inner())
}

/// The embedding in one ENCODE output (`{"output": [...]}`, or a bare array).
pub fn embedding(v: &Value) -> Option<Vec<f32>> {
    let arr = v.get("output").unwrap_or(v).as_array()?;
    arr.iter().map(|x| x.as_f64().map(|f| f as f32)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Column;

    fn f(name: &str, args: &[(&str, &str)]) -> Function {
        Function {
            name: name.into(),
            arguments: args
                .iter()
                .map(|(n, k)| Column {
                    name: (*n).into(),
                    kind: (*k).into(),
                })
                .collect(),
            returns: Vec::new(),
            required: None,
        }
    }

    #[test]
    fn kinds_methods_labels_and_embeddings() {
        let encode = [
            f("ENCODE", &[("sentence", "STRING")]),
            f("ENCODE_QUERY", &[]),
        ];
        assert_eq!(
            ServiceKind::of(&encode),
            Some((ServiceKind::Embeddings, "ENCODE".into()))
        );
        assert_eq!(query_method(&encode, "S"), Ok("ENCODE_QUERY".into()));
        let clip = [f(
            "__CALL__",
            &[("images", "BINARY"), ("candidate_labels", "ARRAY")],
        )];
        assert_eq!(
            ServiceKind::of(&clip).map(|k| k.0),
            Some(ServiceKind::Images)
        );
        assert!(query_method(&clip, "CLIP_SVC").is_err());
        assert_eq!(method(&encode, None, "S"), Ok("ENCODE".into()));
        assert_eq!(
            method(&encode, Some("encode_query"), "S"),
            Ok("ENCODE_QUERY".into())
        );
        let e = method(&clip, Some("ENCODE"), "CLIP_SVC")
            .err()
            .unwrap_or_default();
        assert!(e.contains("has no method ENCODE: it has __CALL__"), "{e}");
        assert_eq!(
            labels(" a, ,b ,"),
            Ok(vec!["a".to_string(), "b".to_string()])
        );
        assert!(labels("one").is_err());
        assert_eq!(
            embedding(&serde_json::json!({"output": [1.0, 2.0]})),
            Some(vec![1.0, 2.0])
        );
        assert_eq!(embedding(&serde_json::json!([0.5])), Some(vec![0.5]));
        assert_eq!(image_row(b"\x00", &["a".into(), "b".into()])[0], "AA==");
    }
}
