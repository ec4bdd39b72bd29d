//! `--read-only`: the one gate every changing operation passes through. A platform opened
//! read-only answers every read as usual and refuses every change with the same sentence, for the
//! TUI and the commands alike, on either platform.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Platform, PlatformError, Prediction, Result, Traffic};
use crate::domain::{
    ComputePool, Container, Endpoint, ImportSpec, JobDetail, JobSummary, LogLine, MetricSample,
    ModelVersion, PlatformKind, PlatformStatus, RegisteredModel, Service, ServiceEvent,
};

/// Why a change was refused.
pub fn refusal(what: &str) -> PlatformError {
    PlatformError::Invalid(format!(
        "read-only: {what} changes the platform, and hugflake was started with --read-only (start it without the flag to do this)"
    ))
}

/// A platform that refuses every change.
pub struct ReadOnly(pub Arc<dyn Platform>);

#[async_trait]
impl Platform for ReadOnly {
    fn kind(&self) -> PlatformKind {
        self.0.kind()
    }

    fn service_key(&self, service: &str) -> String {
        self.0.service_key(service)
    }

    fn traffic(&self) -> Traffic {
        self.0.traffic()
    }

    async fn status(&self) -> Result<PlatformStatus> {
        self.0.status().await
    }

    async fn pools(&self) -> Result<Vec<ComputePool>> {
        self.0.pools().await
    }

    async fn services(&self) -> Result<Vec<Service>> {
        self.0.services().await
    }

    async fn models(&self) -> Result<Vec<RegisteredModel>> {
        self.0.models().await
    }

    async fn jobs(&self) -> Result<Vec<JobSummary>> {
        self.0.jobs().await
    }

    async fn suspend_pool(&self, name: &str) -> Result<ComputePool> {
        Err(refusal(&format!("suspending pool {name}")))
    }

    async fn resume_pool(&self, name: &str) -> Result<ComputePool> {
        Err(refusal(&format!("resuming pool {name}")))
    }

    async fn import(&self, spec: &ImportSpec) -> Result<JobSummary> {
        Err(refusal(&format!("importing {}", spec.handle)))
    }

    async fn job(
        &self,
        id: &str,
        since: Option<u64>,
        wait: Option<std::time::Duration>,
    ) -> Result<JobDetail> {
        self.0.job(id, since, wait).await
    }

    async fn cancel_job(&self, id: &str) -> Result<JobSummary> {
        Err(refusal(&format!("cancelling job {id}")))
    }

    async fn retry_job(&self, id: &str) -> Result<JobSummary> {
        Err(refusal(&format!("retrying job {id}")))
    }

    async fn versions(&self, model: &str) -> Result<Vec<ModelVersion>> {
        self.0.versions(model).await
    }

    async fn drop_model(&self, model: &str, version: Option<&str>) -> Result<()> {
        let what = match version {
            Some(v) => format!("dropping {model} {v}"),
            None => format!("dropping model {model}"),
        };
        Err(refusal(&what))
    }

    async fn service_requests(&self, service: &str) -> Result<Option<crate::domain::Resources>> {
        self.0.service_requests(service).await
    }

    async fn containers(&self, service: &str) -> Result<Vec<Container>> {
        self.0.containers(service).await
    }

    async fn endpoints(&self, service: &str) -> Result<Vec<Endpoint>> {
        self.0.endpoints(service).await
    }

    async fn logs(
        &self,
        service: &str,
        since: Option<u64>,
        limit: usize,
        wait: Option<std::time::Duration>,
    ) -> Result<Vec<LogLine>> {
        self.0.logs(service, since, limit, wait).await
    }

    async fn previous_logs(
        &self,
        service: &str,
        instance: Option<u32>,
        limit: usize,
    ) -> Result<Vec<LogLine>> {
        self.0.previous_logs(service, instance, limit).await
    }

    async fn events(&self, service: &str) -> Result<Vec<ServiceEvent>> {
        self.0.events(service).await
    }

    async fn metrics(&self, service: &str) -> Result<Vec<MetricSample>> {
        self.0.metrics(service).await
    }

    async fn events_in(
        &self,
        service: &str,
        window: &crate::domain::window::Window,
    ) -> Result<Vec<ServiceEvent>> {
        self.0.events_in(service, window).await
    }

    async fn metrics_in(
        &self,
        service: &str,
        window: &crate::domain::window::Window,
    ) -> Result<Vec<MetricSample>> {
        self.0.metrics_in(service, window).await
    }

    async fn logs_in(
        &self,
        service: &str,
        window: &crate::domain::window::Window,
        limit: usize,
    ) -> Result<Vec<LogLine>> {
        self.0.logs_in(service, window, limit).await
    }

    async fn suspend_service(&self, name: &str) -> Result<Service> {
        Err(refusal(&format!("suspending service {name}")))
    }

    async fn resume_service(&self, name: &str) -> Result<Service> {
        Err(refusal(&format!("resuming service {name}")))
    }

    async fn alter_service(
        &self,
        name: &str,
        _change: &crate::domain::ScalingChange,
    ) -> Result<Service> {
        Err(refusal(&format!("changing the scaling of service {name}")))
    }

    async fn drop_service(&self, name: &str) -> Result<()> {
        Err(refusal(&format!("dropping service {name}")))
    }

    /// Calling a model changes nothing: allowed.
    async fn predict(
        &self,
        service: &str,
        method: &str,
        rows: &[Vec<serde_json::Value>],
    ) -> Result<Prediction> {
        self.0.predict(service, method, rows).await
    }

    async fn predict_version(
        &self,
        model: &str,
        version: &str,
        method: &str,
        rows: &[Vec<serde_json::Value>],
    ) -> Result<Prediction> {
        self.0.predict_version(model, version, method, rows).await
    }
}
