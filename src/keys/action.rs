//! What a key, a click or a command asks the app to do.

use std::fmt;
use std::str::FromStr;

/// Actions that keys can be bound to. The names are the keys of the `[keymap]` config table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Quit,
    Back,
    Help,
    Command,
    Filter,
    NextTab,
    PrevTab,
    TabCandidates,
    TabImports,
    TabHealth,
    TabQuery,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    FocusNext,
    Refresh,
    CycleSort,
    Download,
    DeleteCached,
    Import,
    CancelJob,
    RetryJob,
    Suspend,
    Resume,
    EditInput,
    RunQuery,
    ToggleMode,
    RawJson,
    CopyResult,
    Logs,
    PreviousLogs,
    Tree,
    Wrap,
    SaveLogs,
    LogWindow,
    Confirm,
    Deny,
}

impl Action {
    pub const ALL: [Action; 40] = [
        Action::Quit,
        Action::Back,
        Action::Help,
        Action::Command,
        Action::Filter,
        Action::NextTab,
        Action::PrevTab,
        Action::TabCandidates,
        Action::TabImports,
        Action::TabHealth,
        Action::TabQuery,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::FocusNext,
        Action::Refresh,
        Action::CycleSort,
        Action::Download,
        Action::DeleteCached,
        Action::Import,
        Action::CancelJob,
        Action::RetryJob,
        Action::Suspend,
        Action::Resume,
        Action::EditInput,
        Action::RunQuery,
        Action::ToggleMode,
        Action::RawJson,
        Action::CopyResult,
        Action::Logs,
        Action::PreviousLogs,
        Action::Tree,
        Action::Wrap,
        Action::SaveLogs,
        Action::LogWindow,
        Action::Confirm,
        Action::Deny,
    ];

    /// Actions that exist only in the log view and in questions, whose keys may repeat the panes'.
    pub fn overlay_only(self) -> bool {
        matches!(
            self,
            Action::Wrap | Action::SaveLogs | Action::LogWindow | Action::Confirm | Action::Deny
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Back => "back",
            Action::Help => "help",
            Action::Command => "command",
            Action::Filter => "filter",
            Action::NextTab => "next_tab",
            Action::PrevTab => "prev_tab",
            Action::TabCandidates => "tab_candidates",
            Action::TabImports => "tab_imports",
            Action::TabHealth => "tab_health",
            Action::TabQuery => "tab_query",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::FocusNext => "focus_next",
            Action::Refresh => "refresh",
            Action::CycleSort => "cycle_sort",
            Action::Download => "download",
            Action::DeleteCached => "delete_cached",
            Action::Import => "import",
            Action::CancelJob => "cancel_job",
            Action::RetryJob => "retry_job",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::EditInput => "edit_input",
            Action::RunQuery => "run_query",
            Action::ToggleMode => "toggle_mode",
            Action::RawJson => "raw_json",
            Action::CopyResult => "copy_result",
            Action::Logs => "logs",
            Action::PreviousLogs => "previous_logs",
            Action::Tree => "tree",
            Action::Wrap => "wrap",
            Action::LogWindow => "log_window",
            Action::SaveLogs => "save_logs",
            Action::Confirm => "confirm",
            Action::Deny => "deny",
        }
    }

    /// One line for the help overlay.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit hugflake",
            Action::Back => "close / clear / go back (quits at the top level)",
            Action::Help => "show or hide this help",
            Action::Command => "open the command bar",
            Action::Filter => "filter the table; on Candidates also search the Hub",
            Action::NextTab => "next tab",
            Action::PrevTab => "previous tab",
            Action::TabCandidates => "go to Candidates",
            Action::TabImports => "go to Imports",
            Action::TabHealth => "go to Health",
            Action::TabQuery => "go to Query",
            Action::Up => "select the row above",
            Action::Down => "select the row below",
            Action::PageUp => "one page up",
            Action::PageDown => "one page down",
            Action::Top => "first row",
            Action::Bottom => "last row",
            Action::FocusNext => "focus the next table of the pane",
            Action::Refresh => "refresh platform data and the Hub search now",
            Action::CycleSort => "Candidates: next Hub sort order",
            Action::Download => "Candidates: download the selected model into the HF cache",
            Action::DeleteCached => "Candidates: delete the selected cached revision (asks first)",
            Action::Import => "Candidates: import the selected model (form, plan first)",
            Action::CancelJob => "Imports: cancel the selected job (asks first)",
            Action::RetryJob => "Imports: retry the selected failed job (asks first)",
            Action::Suspend => "Health: suspend the pool or service (asks first)",
            Action::Resume => "Health: resume the pool or service (asks first)",
            Action::EditInput => "Query: type the inputs (esc stops typing)",
            Action::RunQuery => "Query: call the service with the inputs",
            Action::ToggleMode => "Query: embeddings: compare inputs / search notes",
            Action::RawJson => "Query: show the raw JSON request and response",
            Action::CopyResult => "Query: copy the result as JSON (OSC 52)",
            Action::Logs => "Health/Imports: the service's or job's log, full screen",
            Action::PreviousLogs => "Health/log view: the log from before the last restart",
            Action::Tree => "Health: model → version → service → instance → container tree",
            Action::Wrap => "log view: wrap long lines or cut them",
            Action::LogWindow => "log view: time window, all → 5m → 15m → 1h → 6h → 24h",
            Action::SaveLogs => "log view: save the lines shown to a file",
            Action::Confirm => "a question: yes, do it",
            Action::Deny => "a question: no, change nothing (back too)",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown action `{s}`, expected one of: {}",
                    names.join(", ")
                )
            })
    }
}
