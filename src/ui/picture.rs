//! Pictures in the terminal: the kitty graphics protocol or iTerm2's inline images where the
//! terminal says it speaks them, half-blocks (two pixels per cell) everywhere else. The protocols
//! are escape sequences written after ratatui has drawn the frame, at the cells the pane left
//! blank for the picture.
//!
//! Sixel is not used: finding out whether a terminal speaks it needs a device-attributes query and
//! its answer on standard input, which the event loop owns.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ratatui::layout::Rect;

use crate::app::picture::Protocol;

/// The escape sequences that draw `png` over `area` (cursor moved there first), or nothing for
/// half-blocks.
pub fn escapes(protocol: Protocol, png: &[u8], area: Rect) -> String {
    let goto = format!("\x1b[{};{}H", area.y + 1, area.x + 1);
    let data = STANDARD.encode(png);
    match protocol {
        Protocol::HalfBlocks => String::new(),
        Protocol::Iterm => format!(
            "{goto}\x1b]1337;File=inline=1;size={};width={};height={};preserveAspectRatio=1:{data}\x07",
            png.len(),
            area.width,
            area.height
        ),
        Protocol::Kitty => {
            // Chunks of at most 4096 base64 bytes; m=1 on all but the last.
            let chunks: Vec<&str> = data
                .as_bytes()
                .chunks(4096)
                .map(|c| std::str::from_utf8(c).unwrap_or(""))
                .collect();
            let mut out = goto;
            for (i, c) in chunks.iter().enumerate() {
                let more = u8::from(i + 1 < chunks.len());
                if i == 0 {
                    out.push_str(&format!(
                        "\x1b_Ga=T,f=100,q=2,c={},r={},m={more};{c}\x1b\\",
                        area.width, area.height
                    ));
                } else {
                    out.push_str(&format!("\x1b_Gm={more};{c}\x1b\\"));
                }
            }
            out
        }
    }
}

/// Removes pictures drawn earlier (kitty keeps them until told; iTerm's are plain cells that the
/// next frame overwrites).
pub fn clear(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Kitty => "\x1b_Ga=d,q=2\x1b\\",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kitty_sends_chunks_and_iterm_one_sequence() {
        let png = vec![7u8; 5000];
        let area = Rect::new(10, 4, 20, 8);
        let k = escapes(Protocol::Kitty, &png, area);
        assert!(k.starts_with("\x1b[5;11H\x1b_Ga=T,f=100,q=2,c=20,r=8,m=1;"));
        assert_eq!(k.matches("\x1b_G").count(), 2);
        assert!(k.ends_with("\x1b\\") && k.contains("\x1b_Gm=0;"));
        let i = escapes(Protocol::Iterm, &png, area);
        assert!(i.contains("\x1b]1337;File=inline=1;size=5000;width=20;height=8"));
        assert!(escapes(Protocol::HalfBlocks, &png, area).is_empty());
    }
}
