//! Token-classification output read one way for every face (`predict --model-dir`, `predict
//! SERVICE`, the Query pane, `batch entities`): per-token rows as a service answers them
//! (`entity, score, index, word, start, end`: Snowflake's pipeline shape, `O` tokens left out)
//! grouped as Hugging Face's `aggregation_strategy="simple"` groups them. A missing token index
//! between two rows stands for the `O` tokens the service left out, so grouping the service's rows
//! gives what grouping every token gives.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One token's prediction, as Snowflake's `__CALL__` returns rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenPrediction {
    pub entity: String,
    pub score: f32,
    pub index: usize,
    pub word: String,
    pub start: usize,
    pub end: usize,
}

/// A group of tokens with one entity type (`aggregation_strategy="simple"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityGroup {
    pub entity_group: String,
    pub score: f32,
    pub word: String,
    pub start: usize,
    pub end: usize,
}

/// The token rows of one output (`{"outputs": [...]}` or a bare array); rows that are not
/// token objects are skipped.
pub fn tokens_from_json(v: &Value) -> Vec<TokenPrediction> {
    v.get("outputs")
        .unwrap_or(v)
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(TokenPrediction {
                entity: t["entity"].as_str()?.to_string(),
                score: t["score"].as_f64().unwrap_or(0.0) as f32,
                index: t["index"].as_u64().unwrap_or(0) as usize,
                word: t["word"].as_str().unwrap_or("").to_string(),
                start: t["start"].as_u64().unwrap_or(0) as usize,
                end: t["end"].as_u64().unwrap_or(0) as usize,
            })
        })
        .collect()
}

/// `B-X`/`I-X` → (`B`/`I`, `X`); anything else is its own type, read as a continuation (`I`), as
/// transformers' `get_tag` reads it.
fn tag(label: &str) -> (&str, &str) {
    if let Some(t) = label.strip_prefix("B-") {
        ("B", t)
    } else if let Some(t) = label.strip_prefix("I-") {
        ("I", t)
    } else {
        ("I", label)
    }
}

/// `aggregation_strategy="simple"`: consecutive tokens of one type form a group (a `B-` starts a
/// new one, and so does a gap in the token indices, where `O` tokens were), scored by their mean,
/// worded by joining the word pieces, spanning the first token's start to the last one's end;
/// `O` groups are dropped.
pub fn group_simple(tokens: &[TokenPrediction]) -> Vec<EntityGroup> {
    let mut groups: Vec<Vec<&TokenPrediction>> = Vec::new();
    for t in tokens {
        let (bi, ty) = tag(&t.entity);
        match groups.last_mut() {
            Some(g)
                if bi != "B"
                    && g.last().is_some_and(|l| {
                        tag(&l.entity).1 == ty && (l.index + 1 == t.index || l.index == t.index)
                    }) =>
            {
                g.push(t)
            }
            _ => groups.push(vec![t]),
        }
    }
    groups
        .into_iter()
        .filter_map(|g| {
            let first = g.first()?;
            let last = g.last()?;
            // Named as transformers names it: what follows the first `-` (`S-PER` → `PER`).
            let ty = first
                .entity
                .split_once('-')
                .map_or(first.entity.as_str(), |(_, t)| t)
                .to_string();
            (ty != "O").then(|| EntityGroup {
                entity_group: ty,
                score: g.iter().map(|t| t.score).sum::<f32>() / g.len() as f32,
                word: tokens_to_string(&g.iter().map(|t| t.word.as_str()).collect::<Vec<_>>()),
                start: first.start,
                end: last.end,
            })
        })
        .collect()
}

/// The entities of one service output.
pub fn group_json(v: &Value) -> Vec<EntityGroup> {
    group_simple(&tokens_from_json(v))
}

/// What transformers gives for a group's word: the WordPiece decoder (glue `##` pieces after the
/// first token, spaces elsewhere) with its clean-up of spaces before punctuation and contractions.
pub fn tokens_to_string(tokens: &[&str]) -> String {
    let mut s = String::new();
    for (i, t) in tokens.iter().enumerate() {
        match t.strip_prefix("##") {
            Some(rest) if i > 0 => s.push_str(rest),
            _ => {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(t);
            }
        }
    }
    for (from, to) in [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ] {
        s = s.replace(from, to);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(
        entity: &str,
        word: &str,
        index: usize,
        start: usize,
        end: usize,
        score: f32,
    ) -> TokenPrediction {
        TokenPrediction {
            entity: entity.into(),
            score,
            index,
            word: word.into(),
            start,
            end,
        }
    }

    #[test]
    fn a_services_rows_group_as_every_token_does() {
        // Every token, `O` included (what `predict --model-dir` sees) ...
        let all = vec![
            t("B-DRUG", "Am", 1, 0, 2, 0.8),
            t("I-DRUG", "##ox", 2, 2, 4, 0.6),
            t("O", "for", 3, 5, 8, 0.9),
            t("I-DRUG", "ibu", 4, 9, 12, 0.5),
            t("I-DISEASE", "otitis", 5, 13, 19, 0.4),
            t("I-DISEASE", "media", 6, 20, 25, 0.2),
        ];
        // ... and a service's rows, the `O` left out.
        let rows: Vec<TokenPrediction> = all.iter().filter(|x| x.entity != "O").cloned().collect();
        let a = group_simple(&all);
        assert_eq!(a, group_simple(&rows));
        assert_eq!(a.len(), 3);
        assert_eq!(
            (a[0].entity_group.as_str(), a[0].word.as_str()),
            ("DRUG", "Amox")
        );
        assert!((a[0].score - 0.7).abs() < 1e-6);
        assert_eq!((a[1].start, a[1].end), (9, 12));
        assert_eq!(a[2].word, "otitis media");
        let json = serde_json::json!({"outputs": [
            {"entity": "B-DRUG", "score": 0.8, "index": 1, "word": "Am", "start": 0, "end": 2},
            {"entity": "I-DRUG", "score": 0.6, "index": 2, "word": "##ox", "start": 2, "end": 4}
        ]});
        assert_eq!(group_json(&json)[0].word, "Amox");
    }
}
