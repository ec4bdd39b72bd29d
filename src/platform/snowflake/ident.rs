//! Snowflake identifiers and literals, as snowflake-ml-python's `SqlIdentifier` treats them
//! (SNOWFLAKE.md §6): a name matching `^[A-Za-z_][A-Za-z0-9_$]*$` is case-insensitive and is
//! emitted upper-cased and unquoted; anything else is double-quoted with inner `"` doubled and
//! keeps its case. Each part of `DB.SCHEMA.NAME` is treated on its own. Literals are single-quoted
//! with `'` doubled; user values never reach SQL text except through these functions or bindings.

use std::fmt;

/// One identifier part, already in the form Snowflake stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ident {
    /// The stored name: upper-cased for plain names, verbatim for quoted ones.
    pub name: String,
    quoted: bool,
}

fn plain(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

impl Ident {
    /// From what a user typed: `my_pool` → `MY_POOL`; `"My Pool"` (quoted) → `My Pool` as is;
    /// `My Pool` (not a plain name) → `My Pool`, quoted when emitted.
    pub fn parse(s: &str) -> Result<Ident, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("an empty name".into());
        }
        if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
            let inner = &s[1..s.len() - 1];
            if inner.is_empty() {
                return Err("an empty quoted name".into());
            }
            let unescaped = inner.replace("\"\"", "\"");
            if unescaped.contains('"') && inner.matches('"').count() % 2 == 1 {
                return Err(format!("`{s}` has an unpaired `\"`"));
            }
            return Ok(Ident::from_stored(&unescaped));
        }
        if s.len() > 255 {
            return Err(format!("`{s}` is longer than 255 characters"));
        }
        if plain(s) {
            Ok(Ident {
                name: s.to_ascii_uppercase(),
                quoted: false,
            })
        } else {
            Ok(Ident {
                name: s.to_string(),
                quoted: true,
            })
        }
    }

    /// From a name as Snowflake returns it in SHOW output (already stored form).
    pub fn from_stored(s: &str) -> Ident {
        let upper_plain = plain(s) && s == s.to_ascii_uppercase();
        Ident {
            name: s.to_string(),
            quoted: !upper_plain,
        }
    }

    /// The SQL text for it.
    pub fn sql(&self) -> String {
        if self.quoted {
            format!("\"{}\"", self.name.replace('"', "\"\""))
        } else {
            self.name.clone()
        }
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// `DB.SCHEMA.NAME`, each part its own identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Qualified {
    pub database: Ident,
    pub schema: Ident,
    pub name: Ident,
}

impl Qualified {
    /// `name` alone takes the connection's database and schema; `schema.name` its database.
    pub fn parse(s: &str, database: &Ident, schema: &Ident) -> Result<Qualified, String> {
        let parts = split_parts(s)?;
        match parts.as_slice() {
            [n] => Ok(Qualified {
                database: database.clone(),
                schema: schema.clone(),
                name: Ident::parse(n)?,
            }),
            [s, n] => Ok(Qualified {
                database: database.clone(),
                schema: Ident::parse(s)?,
                name: Ident::parse(n)?,
            }),
            [d, s, n] => Ok(Qualified {
                database: Ident::parse(d)?,
                schema: Ident::parse(s)?,
                name: Ident::parse(n)?,
            }),
            _ => Err(format!("`{s}` has more than three parts")),
        }
    }

    pub fn sql(&self) -> String {
        format!("{}.{}.{}", self.database, self.schema, self.name)
    }

    /// The schema part, `DB.SCHEMA`.
    pub fn schema_sql(&self) -> String {
        format!("{}.{}", self.database, self.schema)
    }
}

impl fmt::Display for Qualified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// Splits on dots outside double quotes.
fn split_parts(s: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = s.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                cur.push(c);
                if in_quotes && chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    in_quotes = !in_quotes;
                }
            }
            '.' if !in_quotes => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if in_quotes {
        return Err(format!("`{s}` has an unclosed `\"`"));
    }
    parts.push(cur);
    Ok(parts)
}

/// A SQL string literal: `it's` → `'it''s'`. Backslash is an escape character inside Snowflake
/// string literals, so it is doubled too.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A `LIKE` pattern that matches `s` exactly (`%`, `_` and `\` escaped), as a literal.
pub fn like_exact(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    literal(&escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> String {
        Ident::parse(s).map(|i| i.sql()).unwrap_or_else(|e| e)
    }

    #[test]
    fn identifiers_follow_snowflake_rules() {
        assert_eq!(id("my_pool"), "MY_POOL");
        assert_eq!(id("MY_POOL"), "MY_POOL");
        assert_eq!(id("a$1"), "A$1");
        assert_eq!(id("my pool"), "\"my pool\"");
        assert_eq!(id("1st"), "\"1st\"");
        assert_eq!(id("\"Mixed\""), "\"Mixed\"");
        assert_eq!(id("\"UPPER\""), "UPPER");
        assert_eq!(id("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(id("x; DROP TABLE t"), "\"x; DROP TABLE t\"");
        assert!(Ident::parse("").is_err());
        assert_eq!(Ident::from_stored("my_svc").sql(), "\"my_svc\"");
        assert_eq!(Ident::from_stored("MY_SVC").sql(), "MY_SVC");
    }

    #[test]
    fn qualified_names_take_the_context() {
        let db = Ident::parse("ml").unwrap_or_else(|e| panic!("{e}"));
        let sc = Ident::parse("public").unwrap_or_else(|e| panic!("{e}"));
        let q = |s| {
            Qualified::parse(s, &db, &sc)
                .map(|q| q.sql())
                .unwrap_or_else(|e| e)
        };
        assert_eq!(q("svc"), "ML.PUBLIC.SVC");
        assert_eq!(q("other.svc"), "ML.OTHER.SVC");
        assert_eq!(q("d.s.\"a.b\""), "D.S.\"a.b\"");
        assert!(q("a.b.c.d").contains("more than three"));
        assert!(q("\"open").contains("unclosed"));
    }

    #[test]
    fn literals_escape_quotes_and_patterns() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\b"), "'a\\\\b'");
        assert_eq!(like_exact("MY_SVC"), "'MY\\\\_SVC'");
        assert_eq!(like_exact("100%"), "'100\\\\%'");
    }
}
