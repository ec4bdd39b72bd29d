//! The TUI's state: what is on screen, what the user did, and what the program should do next
//! (effects). No terminal I/O and no drawing here: `tui` runs the loop, `ui` draws.

pub mod command;
pub mod import_form;
pub mod picture;
pub mod query;
pub mod search;
pub mod state;
