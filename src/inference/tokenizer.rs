//! Tokenizers for BERT-family checkpoints: `tokenizer.json` when the repo has one (with its own
//! truncation and padding replaced by ours), else a WordPiece tokenizer built from `vocab.txt` and
//! `tokenizer_config.json` (BioBERT ships only those; it is cased).

use std::path::Path;

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::{InferenceError, Result, read_json};

fn err(e: impl std::fmt::Display) -> InferenceError {
    InferenceError::Tokenizer(e.to_string())
}

/// Loads the tokenizer of a model directory, truncating at `max_len` tokens (special tokens
/// included) and never padding (batches are padded to their longest sequence by the caller).
pub fn load(dir: &Path, max_len: usize) -> Result<Tokenizer> {
    let tok = match from_json(dir) {
        Some(t) => t?,
        None => from_vocab(dir)?,
    };
    limited(tok, max_len)
}

/// The directory's `tokenizer.json`, when it has one.
pub fn from_json(dir: &Path) -> Option<Result<Tokenizer>> {
    let json = dir.join("tokenizer.json");
    json.exists().then(|| {
        Tokenizer::from_file(&json).map_err(|e| InferenceError::BadFile {
            path: json.clone(),
            detail: e.to_string(),
        })
    })
}

/// The tokenizer with its own padding and truncation replaced by ours: truncation at `max_len`
/// tokens (special tokens kept), no padding.
pub fn limited(mut tok: Tokenizer, max_len: usize) -> Result<Tokenizer> {
    tok.with_padding(None);
    tok.with_truncation(Some(TruncationParams {
        max_length: max_len,
        ..Default::default()
    }))
    .map_err(err)?;
    Ok(tok)
}

/// A BERT WordPiece tokenizer from `vocab.txt`, honouring `do_lower_case`, `strip_accents` and
/// `tokenize_chinese_chars` of `tokenizer_config.json` (BERT's defaults when it is absent).
pub fn from_vocab(dir: &Path) -> Result<Tokenizer> {
    let vocab = dir.join("vocab.txt");
    if !vocab.exists() {
        return Err(InferenceError::Missing {
            path: vocab,
            hint: "neither tokenizer.json nor vocab.txt: the model has no tokenizer here".into(),
        });
    }
    let config = match read_json(&dir.join("tokenizer_config.json")) {
        Ok(v) => v,
        Err(InferenceError::Missing { .. }) => serde_json::json!({}),
        Err(e) => return Err(e),
    };
    let lowercase = config
        .get("do_lower_case")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let strip_accents = config.get("strip_accents").and_then(|v| v.as_bool());
    let chinese = config
        .get("tokenize_chinese_chars")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let token = |key: &str, default: &str| {
        config
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or(default)
            .to_string()
    };
    let (unk, cls, sep) = (
        token("unk_token", "[UNK]"),
        token("cls_token", "[CLS]"),
        token("sep_token", "[SEP]"),
    );
    let model = WordPiece::from_file(&vocab.to_string_lossy())
        .unk_token(unk)
        .build()
        .map_err(|e| InferenceError::BadFile {
            path: vocab.clone(),
            detail: e.to_string(),
        })?;
    let mut tok = Tokenizer::new(model);
    let id = |t: &str, tok: &Tokenizer| {
        tok.token_to_id(t)
            .ok_or_else(|| err(format!("`{t}` is not in vocab.txt")))
    };
    let cls_id = id(&cls, &tok)?;
    let sep_id = id(&sep, &tok)?;
    tok.with_normalizer(Some(BertNormalizer::new(
        true,
        chinese,
        strip_accents,
        lowercase,
    )))
    .map_err(err)?;
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    tok.with_post_processor(Some(BertProcessing::new((sep, sep_id), (cls, cls_id))));
    tok.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
    Ok(tok)
}

/// Encodes texts one by one with character offsets (what Python's tokenizers report). Only the
/// part of each text that truncation can keep is tokenized, so a 30 MiB row costs what a page does.
pub fn encode_all(tok: &Tokenizer, texts: &[&str]) -> Result<Vec<Encoding>> {
    let max_len = tok.get_truncation().map(|t| t.max_length);
    texts
        .iter()
        .map(|t| {
            let t = max_len.map_or(*t, |m| kept_prefix(t, m));
            tok.encode_char_offsets(t, true).map_err(err)
        })
        .collect()
}

/// The most bytes one token can stand for: WordPiece makes a word of over 100 characters one
/// `[UNK]`, and a character is at most 4 bytes; one more for the space before it.
const BYTES_PER_TOKEN: usize = 100 * 4 + 1;

/// The start of `text` that holds at least `max_len` tokens' worth of words, cut at whitespace so
/// no word is split: truncating it gives what truncating the whole text gives (offsets included,
/// as it is a prefix), unless the text hides long runs of blanks between words.
fn kept_prefix(text: &str, max_len: usize) -> &str {
    let budget = max_len.saturating_mul(BYTES_PER_TOKEN);
    if text.len() <= budget {
        return text;
    }
    let mut cut = budget;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    match text[..cut].rfind(char::is_whitespace) {
        Some(i) if i > 0 => &text[..i],
        _ => &text[..cut],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_text_is_truncated_without_being_tokenized_whole() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-bert");
        let tok = load(&dir, 16).unwrap_or_else(|e| panic!("{e}"));
        let huge = "fever and cough since monday ".repeat(1_000_000);
        // Only a bounded start is handed to the tokenizer.
        assert!(kept_prefix(&huge, 16).len() <= 16 * BYTES_PER_TOKEN);
        let got = encode_all(&tok, &[&huge]).unwrap_or_else(|e| panic!("{e}"));
        let short = encode_all(&tok, &[&huge[..400]]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got[0].get_ids(), short[0].get_ids());
        assert_eq!(got[0].get_offsets(), short[0].get_offsets());
        assert_eq!(got[0].get_ids().len(), 16);
        assert_eq!(kept_prefix("ab cd", 1), "ab cd");
    }
}
