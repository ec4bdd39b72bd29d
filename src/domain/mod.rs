//! Plain types shared by every layer: candidates, the catalog, compute pools, services, registry
//! entries and import jobs. No I/O and no terminal crates here.

pub mod candidate;
pub mod catalog;
pub mod entities;
pub mod job;
pub mod platform;
pub mod precision;
pub mod scaling;
pub mod units;
pub mod window;

pub use candidate::{CachedRepo, CachedRevision, Candidate, CandidateSource, SnowflakeVerdict};
pub use job::{
    BatchRun, FileProgress, ImportSpec, JobDetail, JobLogLine, JobState, JobSummary, Resources,
    Stage, StageRecord, StageState,
};
pub use platform::{
    Column, ComputePool, Container, Endpoint, Function, Health, InstanceStatus, LogLine,
    MetricSample, ModelVersion, PlatformKind, PlatformStatus, PoolState, RegisteredModel,
    RegistryPlace, Service, ServiceEvent, ServiceStatus, VersionFile,
};
pub use precision::{Calibration, Gate, Precision};
pub use scaling::{Scaling, ScalingChange};
