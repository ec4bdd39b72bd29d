//! Tabs, tables and their cursors: which rows a table shows, where its cursor is, how it pages.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Candidates,
    Imports,
    Health,
    Query,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Candidates, Tab::Imports, Tab::Health, Tab::Query];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Candidates => "Candidates",
            Tab::Imports => "Imports",
            Tab::Health => "Health",
            Tab::Query => "Query",
        }
    }

    /// The tables the pane shows, in focus order.
    pub fn tables(self) -> Vec<TableId> {
        match self {
            Tab::Candidates => vec![TableId::Candidates],
            Tab::Imports => vec![TableId::Jobs],
            Tab::Health => vec![TableId::Pools, TableId::Services],
            Tab::Query => vec![TableId::QueryServices],
        }
    }

    pub(super) fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    pub(super) fn offset(self, by: isize) -> Tab {
        let n = Tab::ALL.len() as isize;
        Tab::ALL[((self.index() as isize + by).rem_euclid(n)) as usize]
    }
}

/// The tables the user can focus, select in and filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableId {
    Candidates,
    Jobs,
    Pools,
    Services,
    QueryServices,
}

/// Data from a worker: what arrived last, the last error, and whether a fetch is under way.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote<T> {
    pub data: Option<T>,
    pub error: Option<String>,
    pub loading: bool,
    pub fetched_at: Option<DateTime<Utc>>,
}

impl<T> Default for Remote<T> {
    fn default() -> Self {
        Remote {
            data: None,
            error: None,
            loading: true,
            fetched_at: None,
        }
    }
}

impl<T> Remote<T> {
    /// Applies a fetch result: new data replaces old; an error keeps the old data (shown stale).
    pub fn set(&mut self, result: Result<T, String>, at: DateTime<Utc>) {
        self.loading = false;
        match result {
            Ok(d) => {
                self.data = Some(d);
                self.error = None;
                self.fetched_at = Some(at);
            }
            Err(e) => self.error = Some(e),
        }
    }
}

/// Selection and scroll position of a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub selected: usize,
    pub offset: usize,
}

impl Cursor {
    /// Moves to `target` (clamped) and scrolls so it stays within `height` visible rows.
    pub fn select(&mut self, target: isize, len: usize, height: usize) {
        let height = height.max(1);
        self.selected = if len == 0 {
            0
        } else {
            target.clamp(0, len as isize - 1) as usize
        };
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.offset = self.offset.min(len.saturating_sub(height));
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableView {
    pub cursor: Cursor,
    pub filter: String,
}

impl App {
    pub(super) fn row_count(&self, id: TableId) -> usize {
        match id {
            TableId::Candidates => self.visible_candidates().len(),
            TableId::Jobs => self.visible_jobs().len(),
            TableId::Pools => self.visible_pools().len(),
            TableId::Services => self.visible_services().len(),
            TableId::QueryServices => self.visible_query_services().len(),
        }
    }

    /// Rows visible at once in a table, as the last frame drew it (10 before the first frame).
    pub(super) fn page(&self, id: TableId) -> usize {
        self.drawn.rows_of(id).map_or(10, |r| r.height as usize)
    }

    pub(super) fn move_cursor(&mut self, id: TableId, to: impl FnOnce(isize, isize) -> isize) {
        let len = self.row_count(id);
        let page = self.page(id);
        let view = self.view_mut(id);
        let target = to(view.cursor.selected as isize, page as isize);
        view.cursor.select(target, len, page);
    }

    /// Keeps every cursor within its (possibly shrunk) table.
    pub(super) fn clamp_cursors(&mut self) {
        for id in [
            TableId::Candidates,
            TableId::Jobs,
            TableId::Pools,
            TableId::Services,
            TableId::QueryServices,
        ] {
            let len = self.row_count(id);
            let page = self.page(id);
            let view = self.view_mut(id);
            let sel = view.cursor.selected as isize;
            view.cursor.select(sel, len, page);
        }
    }

    // ----- updates -----
}
