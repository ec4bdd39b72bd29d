//! Plain types shared by every layer: candidates, the catalog, compute pools, services, registry
//! entries and import jobs. No I/O and no terminal crates here.

pub mod candidate;
pub mod catalog;
pub mod job;
pub mod platform;
pub mod units;

pub use candidate::{CachedRepo, CachedRevision, Candidate, CandidateSource, SnowflakeVerdict};
pub use job::{JobState, JobSummary, Stage};
pub use platform::{
    ComputePool, Health, PlatformKind, PlatformStatus, PoolState, RegisteredModel, Service,
    ServiceStatus,
};
