//! A service's first call after a deploy: the method and one valid row of inputs, from the
//! version's signature and its task.

/// Inputs that are parameters with defaults, not inputs (snowflake-ml-python `_signatures`):
/// never sent by the readiness call.
const PARAMETERS: &[&str] = &[
    "top_k",
    "function_to_apply",
    "targets",
    "hypothesis_template",
    "multi_label",
    "batch_size",
    "truncate_dim",
    "timeout",
];

/// The method and one valid row of inputs for a service's first call, from the version's
/// functions (`SHOW FUNCTIONS IN MODEL`) and, where they say nothing, the task's documented
/// signature (SNOWFLAKE.md §2): sentence-transformers answer `ENCODE(sentence)`; every
/// transformers pipeline `__CALL__` with its own inputs (`inputs`, `text`, `sequences` and
/// `candidate_labels`, `images` and `candidate_labels`); fill-mask needs a mask token.
pub fn readiness_call(
    functions: &[crate::domain::Function],
    task: Option<&str>,
    mask: &str,
) -> (String, Vec<serde_json::Value>) {
    use serde_json::json;
    let by_name = |n: &str| functions.iter().find(|f| f.name.eq_ignore_ascii_case(n));
    let function = by_name("ENCODE")
        .or_else(|| by_name("__CALL__"))
        .or_else(|| functions.first());
    let task = task.unwrap_or("");
    let method = function.map_or_else(
        || {
            if matches!(
                task,
                "sentence-similarity" | "sentence-transformers" | "embeddings"
            ) {
                "ENCODE".to_string()
            } else {
                "__CALL__".to_string()
            }
        },
        |f| f.name.clone(),
    );
    // Only the inputs: the first `min_num_arguments` when Snowflake says how many, else every
    // argument not known as a parameter. An argument without a name is named by its type.
    let mut inputs: Vec<String> = function
        .map(|f| {
            let named = f.arguments.iter().map(|a| {
                let kind = a.kind.to_ascii_uppercase();
                match a.name.to_ascii_lowercase() {
                    n if !n.is_empty() => n,
                    _ if kind.contains("BINARY") || kind.contains("BYTES") => "images".into(),
                    _ if kind.contains("ARRAY") => "candidate_labels".into(),
                    _ => "inputs".into(),
                }
            });
            match f.required {
                Some(n) => named.take(n).collect(),
                None => named
                    .filter(|n| !PARAMETERS.contains(&n.as_str()))
                    .collect(),
            }
        })
        .unwrap_or_default();
    if inputs.is_empty() {
        inputs = match (method.as_str(), task) {
            ("ENCODE", _) => vec!["sentence".into()],
            (_, "zero-shot-classification") => {
                vec!["sequences".into(), "candidate_labels".into()]
            }
            (_, "zero-shot-image-classification") => {
                vec!["images".into(), "candidate_labels".into()]
            }
            (_, "text-classification") => vec!["text".into()],
            _ => vec!["inputs".into()],
        };
    }
    let row = inputs
        .iter()
        .map(|name| match name.as_str() {
            "candidate_labels" => json!(["normal", "abnormal"]),
            "images" => json!(crate::platform::call::tiny_png()),
            _ if task == "fill-mask" => json!(format!("The child has a {mask} and a cough.")),
            _ => json!("hugflake readiness check"),
        })
        .collect();
    (method, row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_calls_follow_the_signature() {
        use crate::domain::{Column, Function};
        let f = |name: &str, args: &[&str]| Function {
            name: name.into(),
            arguments: args
                .iter()
                .map(|a| Column {
                    name: (*a).into(),
                    kind: String::new(),
                })
                .collect(),
            returns: Vec::new(),
            required: None,
        };
        let (m, row) = readiness_call(&[f("ENCODE", &["sentence"])], None, "[MASK]");
        assert_eq!((m.as_str(), row.len()), ("ENCODE", 1));
        let (m, row) = readiness_call(
            &[f(
                "__CALL__",
                &["sequences", "candidate_labels", "multi_label"],
            )],
            Some("zero-shot-classification"),
            "[MASK]",
        );
        assert_eq!(m, "__CALL__");
        assert_eq!(row.len(), 2, "{row:?}");
        assert!(row[1].is_array());
        let (_, row) = readiness_call(&[], Some("fill-mask"), "<mask>");
        assert!(row[0].as_str().unwrap_or("").contains("<mask>"));
        let (m, row) = readiness_call(&[], Some("zero-shot-image-classification"), "");
        assert_eq!(m, "__CALL__");
        assert_eq!(row.len(), 2);
        let (m, _) = readiness_call(&[], Some("text-classification"), "");
        assert_eq!(m, "__CALL__");
    }
}
