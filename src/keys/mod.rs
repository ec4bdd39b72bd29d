//! What a key does: the actions the TUI offers and the chords bound to them. Plain data with no
//! terminal drawing, so `config` can parse and report `[keymap]` without importing the TUI.

pub mod action;
pub mod keymap;
