//! Batch work on Snowflake, as SQL run in the account (SNOWFLAKE.md §6): nothing is pulled to the
//! laptop. Every identifier goes through Snowflake's identifier rules, every value is a bound
//! parameter. The cache table keeps one embedding per note and model; only notes without a current
//! embedding (new, changed text, or another version) are computed, with `INSERT … SELECT … WHERE NOT
//! EXISTS`. Results are ordered with a tiebreak so paging is stable.

use super::input::Comparison;
use crate::platform::snowflake::ident::{Ident, Qualified};

/// One statement and its bound values (all text).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// What it does, for the plan.
    pub purpose: String,
    pub sql: String,
    pub binds: Vec<String>,
}

/// What answers the model calls: a service, or the model version itself on a warehouse.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Service(Qualified),
    Warehouse { model: Qualified, version: Ident },
}

impl Target {
    /// `SVC!METHOD(arg)` or `MODEL(M, V)!METHOD(arg)`.
    fn call(&self, method: &dyn std::fmt::Display, arg: &str) -> String {
        match self {
            Target::Service(s) => format!("{s}!{method}({arg})"),
            Target::Warehouse { model, version } => {
                format!("MODEL({model}, {version})!{method}({arg})")
            }
        }
    }
}

/// The source table and its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub table: Qualified,
    pub id: Ident,
    pub text: Ident,
}

/// A model and version, as the cache records them.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRef {
    pub model: String,
    pub version: String,
}

/// Warehouse size for a batch (the seed's table): X-SMALL/SMALL under 100 rows, MEDIUM to 10,000,
/// LARGE beyond, and LARGE for image models whatever the count.
pub fn warehouse_advice(rows: Option<u64>, images: bool) -> String {
    let size = match (rows, images) {
        (_, true) => "LARGE (image models)",
        (Some(n), _) if n < 100 => "SMALL (under 100 rows)",
        (Some(n), _) if n <= 10_000 => "MEDIUM (100 to 10,000 rows)",
        (Some(_), _) => "LARGE (over 10,000 rows)",
        (None, _) => "SMALL under 100 rows, MEDIUM to 10,000, LARGE beyond",
    };
    format!("warehouse size: {size}")
}

/// The statements of `batch embed`: create the cache table, drop stale rows, compute the missing.
pub fn embed(
    src: &Source,
    cache: &Qualified,
    target: &Target,
    method: &Ident,
    m: &ModelRef,
    dim: usize,
) -> Vec<Statement> {
    let (t, id, text) = (&src.table, &src.id, &src.text);
    let hash = format!("SHA2(t.{text}, 256)");
    vec![
        Statement {
            purpose: "create the cache table if it is not there".into(),
            sql: format!(
                "CREATE TABLE IF NOT EXISTS {cache} (NOTE_ID VARCHAR NOT NULL, EMBEDDING VECTOR(FLOAT, {dim}), \
                 MODEL VARCHAR NOT NULL, MODEL_VERSION VARCHAR NOT NULL, CONTENT_HASH VARCHAR NOT NULL, \
                 COMPUTED_AT TIMESTAMP_NTZ NOT NULL)"
            ),
            binds: vec![],
        },
        Statement {
            purpose: "drop cached rows whose note text changed or that another version computed"
                .into(),
            sql: format!(
                "DELETE FROM {cache} c USING {t} t WHERE c.NOTE_ID = TO_VARCHAR(t.{id}) AND c.MODEL = ? \
                 AND (c.MODEL_VERSION <> ? OR c.CONTENT_HASH <> {hash})"
            ),
            binds: vec![m.model.clone(), m.version.clone()],
        },
        Statement {
            purpose: "embed only the notes without a current embedding".into(),
            // `R:"output"` is the ENCODE result's one field (SNOWFLAKE.md §2). VECTOR is cast from
            // ARRAY (the documented source type), so the VARIANT goes through ARRAY first.
            sql: format!(
                "INSERT INTO {cache} (NOTE_ID, EMBEDDING, MODEL, MODEL_VERSION, CONTENT_HASH, COMPUTED_AT) \
                 SELECT s.NOTE_ID, s.R:\"output\"::ARRAY::VECTOR(FLOAT, {dim}), ?, ?, s.CONTENT_HASH, \
                 CURRENT_TIMESTAMP()::TIMESTAMP_NTZ FROM (SELECT TO_VARCHAR(t.{id}) AS NOTE_ID, {hash} AS CONTENT_HASH, \
                 {call} AS R FROM {t} t WHERE t.{text} IS NOT NULL AND LENGTH(TRIM(t.{text})) > 0 \
                 AND NOT EXISTS (SELECT 1 FROM {cache} c WHERE c.NOTE_ID = TO_VARCHAR(t.{id}) AND c.MODEL = ? \
                 AND c.MODEL_VERSION = ? AND c.CONTENT_HASH = {hash})) s",
                call = target.call(method, &format!("t.{text}")),
            ),
            binds: vec![
                m.model.clone(),
                m.version.clone(),
                m.model.clone(),
                m.version.clone(),
            ],
        },
        Statement {
            purpose: "count the rows skipped for empty text".into(),
            sql: format!(
                "SELECT COUNT(*) AS SKIPPED FROM {t} t WHERE t.{text} IS NULL OR LENGTH(TRIM(t.{text})) = 0"
            ),
            binds: vec![],
        },
    ]
}

/// `SELECT COUNT(*)` of the source, for the warehouse advice.
pub fn count(src: &Source) -> Statement {
    Statement {
        purpose: "count the rows".into(),
        sql: format!("SELECT COUNT(*) AS N FROM {}", src.table),
        binds: vec![],
    }
}

/// The `k` cached notes nearest a query text.
pub fn search(
    cache: &Qualified,
    target: &Target,
    method: &Ident,
    m: &ModelRef,
    dim: usize,
    query: &str,
    k: usize,
) -> Statement {
    Statement {
        purpose: format!("the {k} notes most similar to the query"),
        sql: format!(
            "SELECT c.NOTE_ID, VECTOR_COSINE_SIMILARITY(c.EMBEDDING, q.V) AS SCORE FROM {cache} c, \
             (SELECT R:\"output\"::ARRAY::VECTOR(FLOAT, {dim}) AS V FROM (SELECT {call} AS R)) q \
             WHERE c.MODEL = ? AND c.MODEL_VERSION = ? ORDER BY SCORE DESC, c.NOTE_ID LIMIT {k}",
            call = target.call(method, "?"),
        ),
        binds: vec![query.to_string(), m.model.clone(), m.version.clone()],
    }
}

/// The `k` most similar pairs of cached notes.
pub fn pairs(cache: &Qualified, m: &ModelRef, k: usize) -> Statement {
    Statement {
        purpose: format!("the {k} most similar pairs of notes"),
        sql: format!(
            "SELECT a.NOTE_ID AS NOTE_A, b.NOTE_ID AS NOTE_B, VECTOR_COSINE_SIMILARITY(a.EMBEDDING, b.EMBEDDING) AS SCORE \
             FROM {cache} a JOIN {cache} b ON a.NOTE_ID < b.NOTE_ID AND b.MODEL = a.MODEL AND b.MODEL_VERSION = a.MODEL_VERSION \
             WHERE a.MODEL = ? AND a.MODEL_VERSION = ? ORDER BY SCORE DESC, NOTE_A, NOTE_B LIMIT {k}"
        ),
        binds: vec![m.model.clone(), m.version.clone()],
    }
}

/// The statements of `batch entities`: a results table, then `__CALL__` over the (filtered) notes
/// not yet processed by this version, in a stable order.
pub fn entities(
    src: &Source,
    out: &Qualified,
    target: &Target,
    m: &ModelRef,
    filter: Option<(&Ident, Comparison, &str)>,
    limit: Option<usize>,
) -> Vec<Statement> {
    let (t, id, text) = (&src.table, &src.id, &src.text);
    // The pipeline method is named `"__CALL__"` in SQL, quoted as Snowflake's docs write it.
    let call = target.call(&"\"__CALL__\"", &format!("t.{text}"));
    let mut binds = vec![
        m.model.clone(),
        m.version.clone(),
        m.model.clone(),
        m.version.clone(),
    ];
    let filter_sql = filter_sql(filter, &mut binds);
    let limit_sql = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    vec![
        Statement {
            purpose: "create the results table if it is not there".into(),
            sql: format!(
                "CREATE TABLE IF NOT EXISTS {out} (NOTE_ID VARCHAR NOT NULL, ENTITIES VARIANT, \
                 MODEL VARCHAR NOT NULL, MODEL_VERSION VARCHAR NOT NULL, COMPUTED_AT TIMESTAMP_NTZ NOT NULL)"
            ),
            binds: vec![],
        },
        Statement {
            purpose: "extract entities from the notes not yet processed by this version".into(),
            sql: format!(
                "INSERT INTO {out} (NOTE_ID, ENTITIES, MODEL, MODEL_VERSION, COMPUTED_AT) \
                 SELECT s.NOTE_ID, s.R:\"outputs\", ?, ?, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ FROM \
                 (SELECT TO_VARCHAR(t.{id}) AS NOTE_ID, {call} AS R FROM {t} t \
                 WHERE t.{text} IS NOT NULL AND LENGTH(TRIM(t.{text})) > 0 \
                 AND NOT EXISTS (SELECT 1 FROM {out} o WHERE o.NOTE_ID = TO_VARCHAR(t.{id}) AND o.MODEL = ? AND o.MODEL_VERSION = ?)\
                 {filter_sql} ORDER BY t.{id}{limit_sql}) s",
            ),
            binds,
        },
    ]
}

/// ` AND t.COL <op> ?` with the value bound (the value is never part of the SQL text).
fn filter_sql(filter: Option<(&Ident, Comparison, &str)>, binds: &mut Vec<String>) -> String {
    match filter {
        Some((col, op, value)) => {
            binds.push(value.to_string());
            format!(" AND t.{col} {} ?", op.sql())
        }
        None => String::new(),
    }
}

/// Which rows: `--where` and `--limit`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    pub filter: Option<(&'a Ident, Comparison, &'a str)>,
    pub limit: Option<usize>,
}

/// An images table: its id column and the BINARY column with each image file's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    pub table: Qualified,
    pub id: Ident,
    pub image: Ident,
}

/// How the service's `__CALL__` takes its arguments (from `SHOW FUNCTIONS IN MODEL`): the image
/// and the candidate labels, then the parameters the call must give (`hypothesis_template`,
/// `timeout`) when Snowflake says they have no defaults, or when a template is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageCall {
    pub method: String,
    /// Parameters after the two inputs, in signature order: the template (bound) or NULL.
    pub params: Vec<ImageParam>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageParam {
    Template(String),
    Null,
}

/// Zero-shot classification of the images in a table, in the account (the seed's Test 3): each
/// image's bytes go to the service's `__CALL__` with the labels as an ARRAY; the best label, its
/// score and every label's score land in `out`, once per image, model version and label set. The
/// rows are chosen (filter, order, limit) in an inner query and only those reach the service.
pub fn classify_images(
    src: &Images,
    out: &Qualified,
    service: &Qualified,
    call: &ImageCall,
    labels: &[String],
    m: &ModelRef,
    rows: Selection<'_>,
) -> Vec<Statement> {
    let Selection { filter, limit } = rows;
    let (t, id, image) = (&src.table, &src.id, &src.image);
    let label_set = serde_json::to_string(labels).unwrap_or_default();
    let mut args = vec![format!("t.{image}"), "PARSE_JSON(?)::ARRAY".to_string()];
    // Bound in the order the `?` appear: the outer SELECT's (label set, model, version), the
    // call's, the NOT EXISTS's, the filter's.
    let mut binds = vec![label_set.clone(), m.model.clone(), m.version.clone()];
    let mut call_binds = vec![label_set.clone()];
    for p in &call.params {
        match p {
            ImageParam::Template(text) => {
                args.push("?".into());
                call_binds.push(text.clone());
            }
            ImageParam::Null => args.push("NULL".into()),
        }
    }
    binds.extend(call_binds);
    binds.extend([m.model.clone(), m.version.clone(), label_set]);
    let filter_sql = filter_sql(filter, &mut binds);
    let limit_sql = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    let method = if call.method.starts_with('"') {
        call.method.clone()
    } else {
        format!("\"{}\"", call.method)
    };
    vec![
        Statement {
            purpose: "create the results table if it is not there".into(),
            sql: format!(
                "CREATE TABLE IF NOT EXISTS {out} (IMAGE_ID VARCHAR NOT NULL, LABEL VARCHAR, SCORE FLOAT, \
                 LABELS VARIANT, LABEL_SET VARCHAR NOT NULL, MODEL VARCHAR NOT NULL, \
                 MODEL_VERSION VARCHAR NOT NULL, COMPUTED_AT TIMESTAMP_NTZ NOT NULL)"
            ),
            binds: vec![],
        },
        Statement {
            purpose: "classify the images not yet classified by this version with these labels \
                      (research use only, not for diagnosis)"
                .into(),
            sql: format!(
                "INSERT INTO {out} (IMAGE_ID, LABEL, SCORE, LABELS, LABEL_SET, MODEL, MODEL_VERSION, COMPUTED_AT) \
                 SELECT s.IMAGE_ID, s.R:\"labels\"[0]:\"label\"::VARCHAR, s.R:\"labels\"[0]:\"score\"::FLOAT, \
                 s.R:\"labels\", ?, ?, ?, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ FROM \
                 (SELECT t.IMAGE_ID, {service}!{method}({}) AS R FROM \
                 (SELECT TO_VARCHAR(t.{id}) AS IMAGE_ID, t.{image} FROM {t} t WHERE t.{image} IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM {out} o WHERE o.IMAGE_ID = TO_VARCHAR(t.{id}) AND o.MODEL = ? \
                 AND o.MODEL_VERSION = ? AND o.LABEL_SET = ?){filter_sql} ORDER BY t.{id}{limit_sql}) t) s",
                args.join(", ")
            ),
            binds,
        },
    ]
}

/// The plan as text: advice, then each statement with its bound values.
pub fn plan(statements: &[Statement], advice: &str) -> String {
    let mut out = format!(
        "-- {advice}\n-- autocapture: off (inputs and outputs are not stored by the service)\n"
    );
    for s in statements {
        out.push_str(&format!("\n-- {}\n{};\n", s.purpose, s.sql));
        if !s.binds.is_empty() {
            let shown: Vec<String> = s
                .binds
                .iter()
                .map(|b| {
                    crate::platform::snowflake::ident::literal(
                        &crate::domain::units::strip_control(b),
                    )
                })
                .collect();
            out.push_str(&format!("-- bound: {}\n", shown.join(", ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Qualified {
        let db = Ident::parse("CLINICAL").unwrap_or_else(|e| panic!("{e}"));
        let sc = Ident::parse("NOTES").unwrap_or_else(|e| panic!("{e}"));
        Qualified::parse(s, &db, &sc).unwrap_or_else(|e| panic!("{e}"))
    }

    fn i(s: &str) -> Ident {
        Ident::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn advice_follows_the_seed_table() {
        assert!(warehouse_advice(Some(99), false).contains("SMALL"));
        assert!(warehouse_advice(Some(100), false).contains("MEDIUM"));
        assert!(warehouse_advice(Some(10_001), false).contains("LARGE"));
        assert!(warehouse_advice(Some(5), true).contains("LARGE (image"));
    }

    #[test]
    fn identifiers_follow_the_rules_and_values_are_bound() {
        let src = Source {
            table: q("clinical_notes"),
            id: i("note_id"),
            text: i("\"Note Text\""),
        };
        let m = ModelRef {
            model: "ALL_MINILM_L6_V2".into(),
            version: "V1'; DROP TABLE X; --".into(),
        };
        let s = embed(
            &src,
            &q("note_embeddings"),
            &Target::Service(q("minilm_svc")),
            &i("encode"),
            &m,
            384,
        );
        assert!(
            s[2].sql
                .contains("CLINICAL.NOTES.MINILM_SVC!ENCODE(t.\"Note Text\")"),
            "{}",
            s[2].sql
        );
        assert!(!s.iter().any(|s| s.sql.contains("DROP TABLE")));
        assert!(s[2].binds.contains(&m.version));
    }

    #[test]
    fn search_pairs_and_entities_are_golden() {
        let m = ModelRef {
            model: "BIOBERT_NER".into(),
            version: "V1".into(),
        };
        let src = Source {
            table: q("clinical_notes"),
            id: i("note_id"),
            text: i("note_text"),
        };
        let mut all = vec![
            search(
                &q("note_embeddings"),
                &Target::Warehouse {
                    model: q("all_minilm_l6_v2"),
                    version: i("v1"),
                },
                &i("ENCODE"),
                &m,
                384,
                "fever in a neutropenic child",
                10,
            ),
            pairs(&q("note_embeddings"), &m, 20),
        ];
        all.extend(entities(
            &src,
            &q("note_entities"),
            &Target::Service(q("ner_svc")),
            &m,
            Some((&i("note_type"), Comparison::Eq, "ONCOLOGY")),
            Some(100),
        ));
        insta::assert_snapshot!(plan(&all, &warehouse_advice(Some(5_000), false)));
    }
}
