//! The curated catalog embedded from `assets/catalog.toml`.

use serde::Deserialize;

use super::candidate::{Alternative, Candidate, CandidateSource, snowflake_verdict};

pub const CATALOG: &str = include_str!("../../assets/catalog.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    model: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    handle: String,
    task: String,
    library: String,
    license: String,
    parameters: u64,
    #[serde(default)]
    parameters_estimated: bool,
    weight_file: String,
    weight_bytes: u64,
    #[serde(default)]
    weight_bytes_approx: bool,
    has_classification_head: Option<bool>,
    purpose: String,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    instead: Vec<Instead>,
}

/// `[[model.instead]]`: another catalog model to import for a purpose this one does not serve.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Instead {
    handle: String,
    #[serde(rename = "for")]
    purpose: String,
    #[serde(default)]
    snowflake_only: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("catalog: {0}")]
pub struct CatalogError(String);

/// Parses catalog text (the embedded one, or another in tests).
pub fn parse(text: &str) -> Result<Vec<Candidate>, CatalogError> {
    let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError(e.to_string()))?;
    let handles: Vec<String> = file.model.iter().map(|e| e.handle.clone()).collect();
    for e in &file.model {
        if let Some(i) = e.instead.iter().find(|i| !handles.contains(&i.handle)) {
            return Err(CatalogError(format!(
                "{}: `instead` names {}, which is not in the catalog",
                e.handle, i.handle
            )));
        }
    }
    Ok(file
        .model
        .into_iter()
        .map(|e| Candidate {
            snowflake: {
                let mut v = snowflake_verdict(&e.library, &e.task, e.has_classification_head);
                // The verdict says what works instead, in the same sentence.
                if let Some(s) = instead_sentence(&e.instead) {
                    v.reason.push_str("; ");
                    v.reason.push_str(&s);
                }
                v
            },
            alternatives: e
                .instead
                .iter()
                .map(|i| Alternative {
                    handle: i.handle.clone(),
                    purpose: i.purpose.clone(),
                    snowflake_only: i.snowflake_only,
                })
                .collect(),
            handle: e.handle,
            task: Some(e.task),
            library: Some(e.library),
            license: Some(e.license),
            parameters: Some(e.parameters),
            parameters_estimated: e.parameters_estimated,
            weight_bytes: Some(e.weight_bytes),
            weight_file: Some(e.weight_file),
            weight_bytes_approx: e.weight_bytes_approx,
            purpose: Some(e.purpose),
            notes: e.notes,
            requires: e.requires,
            source: CandidateSource::Catalog,
            cache: None,
        })
        .collect())
}

/// "for entities, import A or B instead; for X, import C instead"
fn instead_sentence(instead: &[Instead]) -> Option<String> {
    let mut purposes: Vec<&str> = Vec::new();
    for i in instead {
        if !purposes.contains(&i.purpose.as_str()) {
            purposes.push(&i.purpose);
        }
    }
    let parts: Vec<String> = purposes
        .iter()
        .map(|p| {
            let handles: Vec<&str> = instead
                .iter()
                .filter(|i| i.purpose == *p)
                .map(|i| i.handle.as_str())
                .collect();
            format!("for {p}, import {} instead", handles.join(" or "))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The embedded catalog.
pub fn builtin() -> Result<Vec<Candidate>, CatalogError> {
    parse(CATALOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_the_reference_models_and_what_to_pick_instead() {
        let rows = builtin().unwrap_or_else(|e| panic!("{e}"));
        let handles: Vec<&str> = rows.iter().map(|c| c.handle.as_str()).collect();
        assert_eq!(
            handles,
            [
                "sentence-transformers/all-MiniLM-L6-v2",
                "dmis-lab/biobert-v1.1",
                "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
                "d4data/biomedical-ner-all",
                "alvaroalon2/biobert_diseases_ner",
                "flaviagiammarino/pubmed-clip-vit-base-patch32",
            ]
        );
        assert_eq!(rows[0].snowflake.supported, Some(true));
        assert_eq!(rows[1].snowflake.supported, Some(false));
        assert_eq!(rows[2].snowflake.supported, Some(false));
        assert!(
            rows[2]
                .notes
                .iter()
                .any(|n| n.contains("not for diagnosis"))
        );
        assert!(rows[1].parameters_estimated);
        // BioBERT points to the NER checkpoints, BiomedCLIP (on Snowflake only) to PubMedCLIP.
        assert!(
            rows[1].snowflake.reason.ends_with(
                "for entities, import d4data/biomedical-ner-all or alvaroalon2/biobert_diseases_ner instead"
            ),
            "{}",
            rows[1].snowflake.reason
        );
        assert_eq!(rows[1].alternatives.len(), 2);
        assert!(rows[1].alternatives.iter().all(|a| a.applies(false)));
        let clip = &rows[2].alternatives[0];
        assert_eq!(clip.handle, "flaviagiammarino/pubmed-clip-vit-base-patch32");
        assert!(clip.applies(true) && !clip.applies(false));
        // The alternatives themselves are served by Snowflake's import.
        for r in &rows[3..] {
            assert_eq!(r.snowflake.supported, Some(true), "{}", r.handle);
        }
        assert_eq!(
            rows[5].snowflake.task.as_deref(),
            Some("zero-shot-image-classification")
        );
    }

    #[test]
    fn an_alternative_outside_the_catalog_is_refused() {
        let text = r#"
[[model]]
handle = "a/b"
task = "feature-extraction"
library = "transformers"
license = "mit"
parameters = 1
weight_file = "model.safetensors"
weight_bytes = 4
purpose = "x"
[[model.instead]]
handle = "c/d"
for = "entities"
"#;
        let err = parse(text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("names c/d, which is not in the catalog"),
            "{err}"
        );
    }

    #[test]
    fn unknown_catalog_fields_are_refused() {
        let err = parse("[[model]]\nhandle = \"a/b\"\nsize = 3\n");
        assert!(err.is_err());
    }
}
