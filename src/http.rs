//! HTTP facts every hugflake client shares: which answers mean "ask again later", and the
//! `Snowflake Token` header that service endpoints take (on Snowflake's ingress and the local
//! platform's alike).

/// Busy or not up yet: throttled (429), or a gateway whose service is restarting or overloaded
/// (502, 503, 504). Every client waits and asks again on these; an API that documents its own
/// 500s as passing (Snowflake's SQL API, the Hub) adds 500 where it calls this.
pub fn transient_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The value of `Authorization` for a service endpoint: `Snowflake Token="<token>"`.
pub fn snowflake_token(token: &str) -> String {
    format!("Snowflake Token=\"{token}\"")
}

/// The token a request presents: `Authorization: Bearer <t>` or `Snowflake Token="<t>"`.
pub fn presented_token(authorization: &str) -> Option<&str> {
    if let Some(t) = authorization.strip_prefix("Bearer ") {
        return Some(t.trim());
    }
    authorization
        .strip_prefix("Snowflake Token=")
        .map(|t| t.trim().trim_matches('"'))
}

/// One path segment or form value, percent-encoded: everything but RFC 3986's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
pub fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_tokens() {
        assert!(transient_status(503) && transient_status(429) && !transient_status(500));
        assert_eq!(snowflake_token("abc"), "Snowflake Token=\"abc\"");
        assert_eq!(presented_token(&snowflake_token("abc")), Some("abc"));
        assert_eq!(presented_token("Bearer xyz"), Some("xyz"));
        assert_eq!(presented_token("Basic xyz"), None);
        assert_eq!(encode_segment("MY_SVC"), "MY_SVC");
        assert_eq!(encode_segment("\"My Svc\"$"), "%22My%20Svc%22%24");
    }
}
