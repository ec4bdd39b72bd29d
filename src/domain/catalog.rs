//! The curated catalog embedded from `assets/catalog.toml`.

use serde::Deserialize;

use super::candidate::{Candidate, CandidateSource, snowflake_verdict};

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
}

#[derive(Debug, thiserror::Error)]
#[error("catalog: {0}")]
pub struct CatalogError(String);

/// Parses catalog text (the embedded one, or another in tests).
pub fn parse(text: &str) -> Result<Vec<Candidate>, CatalogError> {
    let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError(e.to_string()))?;
    Ok(file
        .model
        .into_iter()
        .map(|e| Candidate {
            snowflake: snowflake_verdict(&e.library, &e.task, e.has_classification_head),
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

/// The embedded catalog.
pub fn builtin() -> Result<Vec<Candidate>, CatalogError> {
    parse(CATALOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_the_three_reference_models() {
        let rows = builtin().unwrap_or_else(|e| panic!("{e}"));
        let handles: Vec<&str> = rows.iter().map(|c| c.handle.as_str()).collect();
        assert_eq!(
            handles,
            [
                "sentence-transformers/all-MiniLM-L6-v2",
                "dmis-lab/biobert-v1.1",
                "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
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
    }

    #[test]
    fn unknown_catalog_fields_are_refused() {
        let err = parse("[[model]]\nhandle = \"a/b\"\nsize = 3\n");
        assert!(err.is_err());
    }
}
