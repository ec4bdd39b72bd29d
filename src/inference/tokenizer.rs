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
    let json = dir.join("tokenizer.json");
    let mut tok = if json.exists() {
        Tokenizer::from_file(&json).map_err(|e| InferenceError::BadFile {
            path: json.clone(),
            detail: e.to_string(),
        })?
    } else {
        from_vocab(dir)?
    };
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

/// Encodes texts one by one with character offsets (what Python's tokenizers report).
pub fn encode_all(tok: &Tokenizer, texts: &[&str]) -> Result<Vec<Encoding>> {
    texts
        .iter()
        .map(|t| tok.encode_char_offsets(*t, true).map_err(err))
        .collect()
}
