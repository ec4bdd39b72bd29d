//! The Candidates pane's window onto the Hub: the search that follows the `/` filter, its filters
//! and sort, pagination, and the details fetched for the selected row.

use chrono::{DateTime, Utc};

use crate::domain::Candidate;
use crate::hub::api::{ModelSummary, SearchPage, SearchQuery};

/// Sort orders offered, in the order `o` cycles through them: (Hub API name, label).
pub const SORTS: &[(&str, &str)] = &[
    ("downloads", "downloads"),
    ("likes", "likes"),
    ("trendingScore", "trending"),
    ("lastModified", "modified"),
    ("createdAt", "created"),
];

pub fn sort_label(api: &str) -> &str {
    SORTS
        .iter()
        .find(|(a, _)| *a == api)
        .map_or(api, |(_, l)| l)
}

pub fn sort_api(label: &str) -> Option<&'static str> {
    SORTS
        .iter()
        .find(|(a, l)| *l == label || *a == label)
        .map(|(a, _)| *a)
}

/// A search or a next page to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub generation: u64,
    pub query: SearchQuery,
    /// The `next` link to follow; the first page when `None`.
    pub page: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HubSearch {
    pub query: SearchQuery,
    /// Bumped by every new query; answers to older ones are dropped.
    pub generation: u64,
    pub results: Vec<Candidate>,
    pub next: Option<String>,
    pub loading: bool,
    pub error: Option<String>,
    /// Why the Hub is not asked at all (HF_HUB_OFFLINE).
    pub offline: Option<String>,
    pub fetched_at: Option<DateTime<Utc>>,
}

impl HubSearch {
    pub fn new(offline: Option<String>) -> HubSearch {
        HubSearch {
            query: SearchQuery {
                sort: Some("downloads".into()),
                limit: Some(30),
                ..Default::default()
            },
            generation: 0,
            results: Vec::new(),
            next: None,
            loading: false,
            error: None,
            offline,
            fetched_at: None,
        }
    }

    pub fn online(&self) -> bool {
        self.offline.is_none()
    }

    /// Starts the current query again from its first page.
    pub fn restart(&mut self) -> Option<SearchRequest> {
        self.generation += 1;
        self.next = None;
        if !self.online() {
            return None;
        }
        self.loading = true;
        Some(SearchRequest {
            generation: self.generation,
            query: self.query.clone(),
            page: None,
        })
    }

    /// The next page, when there is one and nothing is loading.
    pub fn more(&mut self) -> Option<SearchRequest> {
        if self.loading || !self.online() {
            return None;
        }
        let page = self.next.clone()?;
        self.loading = true;
        Some(SearchRequest {
            generation: self.generation,
            query: self.query.clone(),
            page: Some(page),
        })
    }

    /// Applies an answer; returns false when it was for an older query.
    pub fn apply(
        &mut self,
        generation: u64,
        append: bool,
        result: Result<SearchPage, String>,
        at: DateTime<Utc>,
    ) -> bool {
        if generation != self.generation {
            return false;
        }
        self.loading = false;
        match result {
            Ok(page) => {
                let rows = page.models.iter().map(candidate);
                if append {
                    self.results.extend(rows);
                } else {
                    self.results = rows.collect();
                }
                self.next = page.next;
                self.error = None;
                self.fetched_at = Some(at);
            }
            Err(e) => {
                if !append {
                    self.results.clear();
                }
                self.error = Some(e);
            }
        }
        true
    }

    /// One line for the pane title.
    pub fn describe(&self) -> String {
        if let Some(why) = &self.offline {
            return format!("Hub offline ({why}): catalog and cache only");
        }
        let mut filters = vec![format!(
            "sort {}",
            sort_label(self.query.sort.as_deref().unwrap_or("downloads"))
        )];
        for (name, v) in [
            ("task", &self.query.pipeline_tag),
            ("author", &self.query.author),
            ("library", &self.query.library),
        ] {
            if let Some(v) = v {
                filters.push(format!("{name} {v}"));
            }
        }
        let state = match (&self.error, self.loading) {
            (Some(e), _) => format!("Hub unreachable: {e}"),
            (None, true) => "Hub: searching…".into(),
            (None, false) => format!(
                "Hub: {}{}",
                self.results.len(),
                if self.next.is_some() { "+" } else { "" }
            ),
        };
        format!("{state} · {}", filters.join(", "))
    }
}

fn candidate(m: &ModelSummary) -> Candidate {
    let library = if m.tags.iter().any(|t| t == "sentence-transformers") {
        Some("sentence-transformers")
    } else {
        m.library_name.as_deref()
    };
    Candidate::from_hub(&m.id, m.pipeline_tag.as_deref(), library)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(ids: &[&str], next: Option<&str>) -> SearchPage {
        SearchPage {
            models: ids
                .iter()
                .map(|id| ModelSummary {
                    id: (*id).into(),
                    pipeline_tag: None,
                    library_name: None,
                    downloads: None,
                    likes: None,
                    last_modified: None,
                    tags: vec![],
                })
                .collect(),
            next: next.map(String::from),
        }
    }

    #[test]
    fn stale_answers_are_dropped_and_pages_append() {
        let mut s = HubSearch::new(None);
        let first = s.restart().map(|r| r.generation);
        s.query.search = Some("bert".into());
        let second = s.restart().map(|r| r.generation);
        assert_ne!(first, second);
        assert!(!s.apply(
            first.unwrap_or_default(),
            false,
            Ok(page(&["old/x"], None)),
            Utc::now()
        ));
        assert!(s.results.is_empty());
        assert!(s.apply(
            second.unwrap_or_default(),
            false,
            Ok(page(&["a/b"], Some("n"))),
            Utc::now()
        ));
        let more = s.more();
        assert_eq!(more.as_ref().and_then(|r| r.page.as_deref()), Some("n"));
        assert!(s.more().is_none(), "one page at a time");
        s.apply(s.generation, true, Ok(page(&["c/d"], None)), Utc::now());
        assert_eq!(s.results.len(), 2);
        assert!(s.more().is_none());
    }

    #[test]
    fn offline_never_asks() {
        let mut s = HubSearch::new(Some("HF_HUB_OFFLINE is set".into()));
        assert!(s.restart().is_none());
        assert!(s.describe().contains("offline"));
        assert_eq!(sort_api("trending"), Some("trendingScore"));
        assert_eq!(sort_label("lastModified"), "modified");
    }
}
