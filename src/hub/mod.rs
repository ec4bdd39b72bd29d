//! Hugging Face: the shared local cache, and search, model info, details and verified downloads
//! through the Hub API.

pub mod api;
pub mod cache;
pub mod details;
pub mod download;
pub mod housekeeping;
pub mod settings;

use std::path::Path;

use crate::domain::{Candidate, candidate, catalog};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
}

/// The Candidates pane's rows without the network: the curated catalog joined with the cache.
pub fn offline_candidates(cache_root: &Path) -> Result<Vec<Candidate>, HubError> {
    Ok(candidate::merge(
        catalog::builtin()?,
        cache::scan(cache_root)?,
    ))
}
