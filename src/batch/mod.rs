//! Batch work over many notes or images, on either platform: embed a table into a cache (only new
//! or changed notes), search it, find similar pairs, extract entities, classify a folder of images.
//!
//! On the local platform the rows go through a service's REST endpoint in batches that shrink when
//! a call fails or runs long, and every finished batch is committed, so an interrupted run resumes
//! where it stopped. On Snowflake the same commands are SQL run in the account ([`sql`]).

pub mod cache;
pub mod input;
pub mod job;
pub mod run;
pub mod runs;
pub mod snowflake;
pub mod sql;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{}: {detail}", path.display())]
    Input { path: PathBuf, detail: String },
    #[error("embedding cache {}: {detail}", path.display())]
    Cache { path: PathBuf, detail: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Platform(#[from] crate::platform::PlatformError),
}
