//! Inference on Snowflake: the SPCS REST ingress (endpoint from `SHOW ENDPOINTS`, the `Snowflake
//! Token` header with a PAT or an OAuth token exchanged for the key-pair JWT, images re-encoded for
//! the ingress) and the SQL route (`SELECT <svc>!METHOD(...)`, inputs bound in signature order).

use std::time::Duration;

use serde_json::Value;

use super::connection::Auth;
use super::ident::Qualified;
use super::statements;
use super::{SnowflakePlatform, variant};
use crate::platform::{Platform, PlatformError, Prediction, Result, protocol};
use crate::secret::Secret;

/// How long an exchanged ingress token is reused. Snowflake does not say how long such a token
/// lives (?); it is dropped earlier when the ingress refuses it.
const INGRESS_TOKEN_REUSE: Duration = Duration::from_secs(50 * 60);

impl SnowflakePlatform {
    /// The token for the REST ingress: the PAT itself, or an OAuth token exchanged for the
    /// key-pair JWT at `/oauth/token` (SNOWFLAKE.md §3), reused until shortly before it could
    /// expire. The scope names the role only when the connection names one: without it the
    /// user's default role applies (a PUBLIC token would normally lack the endpoint's grant), as
    /// snowflake-ml-python does. A connector session token is never used.
    async fn ingress_token(&self, ingress_host: &str) -> Result<Secret> {
        match &self.auth {
            Auth::Pat(t) | Auth::OAuth(t) => Ok(t.clone()),
            Auth::KeyPair { .. } => {
                if let Ok(cache) = self.ingress_tokens.lock()
                    && let Some((t, at)) = cache.get(ingress_host)
                    && at.elapsed() < INGRESS_TOKEN_REUSE
                {
                    return Ok(t.clone());
                }
                let (jwt, _) = self.api.token().map_err(PlatformError::from)?;
                let form = [
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string(),
                    ),
                    (
                        "scope",
                        ingress_scope(self.api.context.role.as_deref(), ingress_host),
                    ),
                    ("assertion", jwt.expose().to_string()),
                ];
                let resp = self
                    .http
                    .post(format!("{}/oauth/token", self.api.base()))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(
                        form.iter()
                            .map(|(k, v)| format!("{k}={}", crate::http::encode_segment(v)))
                            .collect::<Vec<_>>()
                            .join("&"),
                    )
                    .send()
                    .await
                    .map_err(|e| PlatformError::Unreachable {
                        what: "Snowflake /oauth/token".into(),
                        detail: e.to_string(),
                    })?;
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                if !status.is_success() {
                    return Err(PlatformError::Unauthorized {
                        what: "Snowflake /oauth/token".into(),
                        detail: format!("{status}: {}", body.chars().take(200).collect::<String>()),
                    });
                }
                let token = Secret::new(body.trim());
                if let Ok(mut cache) = self.ingress_tokens.lock() {
                    cache.insert(
                        ingress_host.to_string(),
                        (token.clone(), std::time::Instant::now()),
                    );
                }
                Ok(token)
            }
        }
    }

    /// Forgets an exchanged ingress token the ingress refused.
    fn drop_ingress_token(&self, ingress_host: &str) -> bool {
        self.ingress_tokens
            .lock()
            .map(|mut c| c.remove(ingress_host).is_some())
            .unwrap_or(false)
    }

    /// The REST ingress host of a service, once it is really reachable.
    async fn ingress(&self, q: &Qualified) -> Result<String> {
        let eps = self.endpoints(&q.sql()).await?;
        let ep = eps
            .into_iter()
            .find(|e| e.name == "inference" || e.is_public)
            .ok_or_else(|| PlatformError::NotFound(format!("a public endpoint of {q}")))?;
        let host = ep.ingress_url.trim().to_string();
        let host_only = host.split(['/', ':']).next().unwrap_or("");
        let real =
            host_only.ends_with("snowflakecomputing.app") || host_only.ends_with("snowflake.app");
        let test = self.loopback && (host_only == "127.0.0.1" || host_only == "localhost");
        if !(real || test) {
            return Err(PlatformError::Conflict(format!(
                "service {q} has no ingress yet ({}): it is still being provisioned",
                if host.is_empty() {
                    "empty".to_string()
                } else {
                    host
                }
            )));
        }
        Ok(host)
    }

    pub(super) async fn predict_rest(
        &self,
        q: &Qualified,
        method: &str,
        rows: &[Vec<Value>],
    ) -> Result<Prediction> {
        let host = self.ingress(q).await?;
        let rows = &self.rows_for_rest(q, method, rows).await;
        let mut token = self.ingress_token(&host).await?;
        let mut fresh_token = false;
        let scheme = if self.loopback { "http" } else { "https" };
        let url = format!(
            "{scheme}://{host}{}",
            crate::domain::platform::rest_path(method)
        );
        let body = protocol::request(rows);
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(500);
        for attempt in 0..6 {
            let resp = self
                .http
                .post(&url)
                .header(
                    "Authorization",
                    crate::http::snowflake_token(token.expose()),
                )
                .json(&body)
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().await.map_err(|e| PlatformError::Protocol {
                        what: format!("service {q}"),
                        detail: e.to_string(),
                    })?;
                    let outputs = protocol::parse_response(&v, rows.len()).map_err(|detail| {
                        PlatformError::Protocol {
                            what: format!("service {q}"),
                            detail,
                        }
                    })?;
                    return Ok(Prediction {
                        outputs,
                        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                    });
                }
                Ok(r) if crate::http::transient_status(r.status().as_u16()) && attempt < 5 => {}
                // A reused exchanged token the ingress no longer takes: exchange once more.
                Ok(r)
                    if matches!(r.status().as_u16(), 401 | 403)
                        && !fresh_token
                        && self.drop_ingress_token(&host) =>
                {
                    fresh_token = true;
                    token = self.ingress_token(&host).await?;
                    continue;
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    return Err(PlatformError::Api {
                        what: format!("service {q}"),
                        status,
                        message: text.chars().take(300).collect(),
                    });
                }
                Err(e) if e.is_connect() && attempt < 5 => {}
                Err(e) => {
                    return Err(PlatformError::Unreachable {
                        what: format!("service {q}"),
                        detail: e.to_string(),
                    });
                }
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        Err(PlatformError::Other(format!(
            "service {q} kept answering busy"
        )))
    }

    /// Which arguments of `method` on a service are BINARY (images), from its signature; empty
    /// when the signature cannot be read (then nothing is converted).
    async fn binary_arguments(&self, q: &Qualified, method: &str) -> Vec<bool> {
        let key = q.sql();
        let cached = self
            .signatures
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned());
        let functions = match cached {
            Some(f) => f,
            None => {
                let f = crate::platform::service_functions(self, &key, None, None)
                    .await
                    .unwrap_or_default();
                if !f.is_empty()
                    && let Ok(mut c) = self.signatures.lock()
                {
                    c.insert(key, f.clone());
                }
                f
            }
        };
        functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(method))
            .map(|f| f.arguments.iter().map(|a| is_binary(&a.kind)).collect())
            .unwrap_or_default()
    }

    /// The BINARY arguments of a call, looked up only for rows that could carry one: a single text
    /// input (ENCODE, NER, classification) never does, so those calls cost no lookup.
    async fn binary_for(&self, q: &Qualified, method: &str, rows: &[Vec<Value>]) -> Vec<bool> {
        if rows
            .iter()
            .all(|r| matches!(r.as_slice(), [Value::String(_)]))
        {
            return Vec::new();
        }
        self.binary_arguments(q, method).await
    }

    /// Rows as the ingress takes them: BINARY inputs (hugflake's callers give base64) become
    /// hex, the text form Snowflake gives BINARY values when it calls a service itself
    /// (BINARY_OUTPUT_FORMAT's default) (?: the live suite's image call settles it).
    async fn rows_for_rest(
        &self,
        q: &Qualified,
        method: &str,
        rows: &[Vec<Value>],
    ) -> Vec<Vec<Value>> {
        let binary = self.binary_for(q, method, rows).await;
        if !binary.iter().any(|b| *b) {
            return rows.to_vec();
        }
        rows.iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) if binary.get(i) == Some(&true) => {
                            Value::String(base64_to_hex(s).unwrap_or_else(|| s.clone()))
                        }
                        other => other.clone(),
                    })
                    .collect()
            })
            .collect()
    }

    pub(super) async fn predict_sql(
        &self,
        q: &Qualified,
        method: &str,
        rows: &[Vec<Value>],
    ) -> Result<Prediction> {
        let started = std::time::Instant::now();
        let mut outputs = Vec::with_capacity(rows.len());
        let binary = self.binary_for(q, method, rows).await;
        for row in rows {
            // Inputs in signature order; BINARY ones (images, given as base64) decoded in SQL.
            let rs = self
                .run(&statements::service_call_values(q, method, row, &binary))
                .await?;
            outputs.push(variant(rs.scalar()));
        }
        Ok(Prediction {
            outputs,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }
}

/// Whether a signature type is binary (`BINARY`, ml's `BYTES`).
fn is_binary(kind: &str) -> bool {
    let k = kind.to_ascii_uppercase();
    k.contains("BINARY") || k.contains("BYTES")
}

/// Base64 text as upper-case hex, if it is base64.
fn base64_to_hex(s: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    Some(bytes.iter().map(|b| format!("{b:02X}")).collect())
}

/// The scope of the JWT → OAuth exchange for the ingress: `session:role:<ROLE> <host>` when the
/// connection names a role, else only the host, so the user's default role applies.
pub fn ingress_scope(role: Option<&str>, ingress_host: &str) -> String {
    let plain = |r: &str| {
        r.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '$')
    };
    match role {
        Some(r) if plain(r) => format!("session:role:{r} {ingress_host}"),
        // Any other name (lower case, spaces, punctuation) goes URL-encoded, as Snowflake's
        // OAuth documents `session:role-encoded:`.
        Some(r) => format!(
            "session:role-encoded:{} {ingress_host}",
            crate::http::encode_segment(r)
        ),
        None => ingress_host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_scopes_name_the_role_as_snowflake_reads_it() {
        assert_eq!(
            ingress_scope(None, "abc.snowflakecomputing.app"),
            "abc.snowflakecomputing.app"
        );
        assert_eq!(
            ingress_scope(Some("ML_ENGINEER"), "h"),
            "session:role:ML_ENGINEER h"
        );
        assert_eq!(
            ingress_scope(Some("Data Team"), "h"),
            "session:role-encoded:Data%20Team h"
        );
    }

    #[test]
    fn images_travel_as_hex_to_the_ingress() {
        assert_eq!(base64_to_hex("AAEC/w==").as_deref(), Some("000102FF"));
        assert_eq!(base64_to_hex("not base64!"), None);
        assert!(is_binary("BINARY") && is_binary("bytes") && !is_binary("ARRAY"));
        let sig = super::super::parse_signature(Some(r#"["BINARY", "ARRAY"]"#));
        assert_eq!(sig.len(), 2);
        assert_eq!(sig[0].kind, "BINARY");
    }
}
