//! Reading a table of notes: CSV (with a header row), JSON Lines (one object per line) or Parquet.
//! Every row that cannot be used is reported with its line and reason, never dropped silently.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::BatchError;

/// Texts longer than this many bytes are refused (a model reads its first few hundred tokens; a
/// megabyte "note" is a broken export, not a note).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// The largest notes file read (it is read whole): split bigger inputs.
pub const MAX_INPUT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// One usable row.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// 1-based line (CSV: the record's line) in the input, for messages.
    pub line: usize,
    pub id: String,
    pub text: String,
    /// The other columns, as text, for `--where`.
    pub fields: BTreeMap<String, String>,
}

impl Note {
    /// sha256 of the text, hex: what "changed" means for the cache.
    pub fn content_hash(&self) -> String {
        hash_text(&self.text)
    }
}

pub fn hash_text(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A row that was not used, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rejected {
    pub line: usize,
    pub id: Option<String>,
    pub reason: String,
}

/// The rows of a table, split into usable notes and rejected rows.
#[derive(Debug, Default)]
pub struct Table {
    pub notes: Vec<Note>,
    pub rejected: Vec<Rejected>,
}

/// A `--where` filter: `COLUMN=VALUE`, or a comparison (`<`, `<=`, `>`, `>=`, `!=`), e.g.
/// `NOTE_TYPE=ONCOLOGY`, `PATIENT_AGE<18`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub op: Comparison,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparison {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Comparison::Eq => "=",
            Comparison::Ne => "<>",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
        }
    }

    /// Whether `a op b` holds: numerically when both are numbers, else as text ignoring case.
    /// An ordering against a number needs a number (`AGE<18` leaves out `unknown` and empty
    /// ages, as SQL does).
    pub fn holds(self, a: &str, b: &str) -> bool {
        let order = match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
            (Ok(x), Ok(y)) => x.partial_cmp(&y),
            (Err(_), Ok(_)) if !matches!(self, Comparison::Eq | Comparison::Ne) => None,
            _ => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        };
        let Some(o) = order else { return false };
        match self {
            Comparison::Eq => o.is_eq(),
            Comparison::Ne => o.is_ne(),
            Comparison::Lt => o.is_lt(),
            Comparison::Le => o.is_le(),
            Comparison::Gt => o.is_gt(),
            Comparison::Ge => o.is_ge(),
        }
    }
}

impl std::str::FromStr for Filter {
    type Err = String;
    fn from_str(s: &str) -> Result<Filter, String> {
        let bad = || {
            format!(
                "`{s}`: expected COLUMN=VALUE or a comparison (<, <=, >, >=, !=), e.g. NOTE_TYPE=ONCOLOGY or PATIENT_AGE<18"
            )
        };
        let at = s.find(['=', '<', '>', '!']).ok_or_else(bad)?;
        let (column, rest) = s.split_at(at);
        let (op, value) = [
            ("<=", Comparison::Le),
            (">=", Comparison::Ge),
            ("!=", Comparison::Ne),
            ("<>", Comparison::Ne),
            ("<", Comparison::Lt),
            (">", Comparison::Gt),
            ("=", Comparison::Eq),
        ]
        .iter()
        .find_map(|(text, op)| rest.strip_prefix(text).map(|v| (*op, v)))
        .ok_or_else(bad)?;
        if column.trim().is_empty() {
            return Err(bad());
        }
        Ok(Filter {
            column: column.trim().to_string(),
            op,
            value: value.trim().to_string(),
        })
    }
}

/// Which columns hold the id and the text.
#[derive(Debug, Clone)]
pub struct Columns {
    pub id: String,
    pub text: String,
}

/// Reads a CSV, JSON Lines or Parquet file (by extension: .csv, .jsonl / .ndjson / .json,
/// .parquet).
pub fn read(path: &Path, cols: &Columns) -> Result<Table, BatchError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes =
        crate::paths::read_user_file(path, MAX_INPUT_BYTES).map_err(|e| BatchError::Input {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    match ext.as_str() {
        "csv" => read_csv(&bytes, cols).map_err(|detail| BatchError::Input {
            path: path.to_path_buf(),
            detail,
        }),
        "jsonl" | "ndjson" | "json" => Ok(read_jsonl(&bytes, cols)),
        "parquet" => std::panic::catch_unwind(|| read_parquet(path, cols))
            .unwrap_or_else(|_| {
                // The Parquet library asserts on some damaged files: a refusal, never a crash.
                Err("the file is damaged: the Parquet reader gave up on it".into())
            })
            .map_err(|detail| BatchError::Input {
                path: path.to_path_buf(),
                detail,
            }),
        _ => Err(BatchError::Input {
            path: path.to_path_buf(),
            detail: "unknown format: give a .csv (with a header row), .jsonl or .parquet file"
                .into(),
        }),
    }
}

/// Checks one row's id and text; `Err` is the reason it is refused.
fn check(id: Option<String>, text: Option<Result<String, ()>>) -> Result<(String, String), String> {
    let id = match id {
        Some(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => return Err("no id".into()),
    };
    match text {
        None => Err("no text column".into()),
        Some(Err(())) => Err("the text is not valid UTF-8".into()),
        Some(Ok(t)) if t.trim().is_empty() => Err("empty text".into()),
        Some(Ok(t)) if t.len() > MAX_TEXT_BYTES => Err(format!(
            "text of {} bytes is over the {} KiB limit",
            t.len(),
            MAX_TEXT_BYTES / 1024
        )),
        Some(Ok(t)) => Ok((id, t)),
    }
}

fn read_csv(bytes: &[u8], cols: &Columns) -> Result<Table, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers: Vec<String> = reader
        .byte_headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let shown: Vec<String> = headers
                    .iter()
                    .take(20)
                    .map(|h| {
                        let h: String = h.chars().take(40).collect();
                        crate::domain::units::printable(&h).into_owned()
                    })
                    .collect();
                format!("no column `{name}`; the header has: {}", shown.join(", "))
            })
    };
    let (id_at, text_at) = (find(&cols.id)?, find(&cols.text)?);
    let mut table = Table::default();
    let mut seen = std::collections::HashSet::new();
    // Lines are counted here from byte offsets: the reader's own count drifts by one for each
    // CRLF inside a quoted field.
    let mut lines = LineCounter::new(bytes);
    let mut last_start = None;
    // The first record whose quoted field swallowed rows: (its start, the refusal).
    let mut swallow: Option<(usize, String)> = None;
    for record in reader.byte_records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e
                    .position()
                    .map(|p| lines.line_at(p.byte() as usize))
                    .unwrap_or(0);
                table.rejected.push(Rejected {
                    line,
                    id: None,
                    reason: format!("unreadable CSV record: {e}"),
                });
                continue;
            }
        };
        // The reader's offset can point at the end of the previous line (the `\n` of a CRLF):
        // the record starts after it.
        let mut start = record.position().map_or(0, |p| p.byte() as usize);
        while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        last_start = Some(start);
        let line = lines.line_at(start);
        // A quote opened in one row and closed by a stray quote many rows later swallows the rows
        // between into one field, silently: refuse the file when a field's lines look like rows.
        if swallow.is_none()
            && let Some((swallowed, first)) = swallowed_rows(&record, headers.len(), id_at)
        {
            swallow = Some((
                start,
                format!(
                    "line {line}: a quote opens in this row and closes only {} line(s) later, so {swallowed} line(s) that look like rows (the first: `{}`) would be read as one note's text; nothing was read. Close the quote, or write a quote inside a quoted field as two (\"\")",
                    record
                        .iter()
                        .map(|f| f.iter().filter(|&&b| b == b'\n').count())
                        .sum::<usize>(),
                    crate::domain::units::printable(&first.chars().take(60).collect::<String>())
                ),
            ));
        }
        let field = |i: usize| {
            record
                .get(i)
                .map(|b| String::from_utf8(b.to_vec()).map_err(|_| ()))
        };
        let fields = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != text_at)
            .filter_map(|(i, h)| {
                field(i)
                    .and_then(Result::ok)
                    .map(|v| (h.to_ascii_uppercase(), v))
            })
            .collect();
        table.accept(
            line,
            field(id_at).and_then(Result::ok),
            field(text_at),
            fields,
            &mut seen,
        );
    }
    // A quote that never closes makes every later line part of one field, silently: refuse the
    // file and say where the quote opened. Such a field can only be the last record's (or the
    // header's, when no record is left).
    let start = last_start.unwrap_or(0);
    if let Some((at, why)) = &swallow
        && *at < start
    {
        return Err(why.clone());
    }
    if let Some(at) = unclosed_quote(&bytes[start..]) {
        let line = lines.line_at(start + at);
        let after = bytes[start + at..].iter().filter(|&&b| b == b'\n').count();
        return Err(format!(
            "line {line}: a quote opens here and never closes, so the {after} line(s) after it would be read as one note's text; nothing was read. Close the quote, or write a quote inside a quoted field as two (\"\")"
        ));
    }
    if let Some((_, why)) = swallow {
        return Err(why);
    }
    Ok(table)
}

/// Whether a record's quoted fields hold lines that look like rows of the file: a line that,
/// read alone, has at least the header's number of fields and an id shaped like this record's id
/// (the same letters, digit runs alike). Two or more of them, making up at least half of the
/// field's lines, mean a quote swallowed rows; returns how many and the first. (A stray quote that
/// swallows a single row is not caught this way.)
fn swallowed_rows(
    record: &csv::ByteRecord,
    columns: usize,
    id_at: usize,
) -> Option<(usize, String)> {
    if columns < 2 || !record.iter().any(|f| f.contains(&b'\n')) {
        return None;
    }
    // Letters count as themselves (any case), a run of digits as one: `N00004` and `N12` are
    // both `N9`, while a note's `L4, L5, S1` (`L9`) is not shaped like them.
    let shape = |s: &[u8]| -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        for &b in s {
            let c = if b.is_ascii_digit() {
                b'#'
            } else {
                b.to_ascii_uppercase()
            };
            if c != b'#' || out.last() != Some(&b'#') {
                out.push(c);
            }
        }
        out
    };
    let id_shape = shape(record.get(id_at)?.trim_ascii());
    if id_shape.is_empty() {
        return None;
    }
    let mut found = 0;
    let mut lines = 0;
    let mut first = None;
    for field in record.iter().filter(|f| f.contains(&b'\n')) {
        // The field's first line is on the record's own line; the others are what it swallowed.
        for line in field.split(|&b| b == b'\n').skip(1) {
            lines += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(line);
            let Some(Ok(row)) = r.byte_records().next() else {
                continue;
            };
            let looks_like_row = row.len() >= columns
                && row
                    .get(id_at)
                    .is_some_and(|id| shape(id.trim_ascii()) == id_shape);
            if looks_like_row {
                found += 1;
                first.get_or_insert_with(|| String::from_utf8_lossy(line).into_owned());
            }
        }
    }
    // Swallowed rows make up most of such a field; a note quoting a row or two does not.
    (found >= 2 && found * 2 >= lines).then(|| (found, first.unwrap_or_default()))
}

/// Line numbers (1-based) of byte offsets, counted forward (offsets come in increasing order).
struct LineCounter<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            at: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.bytes.len());
        if offset < self.at {
            self.at = 0;
            self.line = 1;
        }
        self.line += self.bytes[self.at..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.at = offset;
        self.line
    }
}

/// Where, in the text of one record to the end of the file, a quoted field opens and is never
/// closed (RFC 4180: a field is quoted when it starts with `"`; `""` inside it is one quote).
fn unclosed_quote(rest: &[u8]) -> Option<usize> {
    let mut i = 0;
    let mut field_start = true;
    while i < rest.len() {
        let b = rest[i];
        if field_start && b == b'"' {
            let open = i;
            i += 1;
            loop {
                match rest.get(i) {
                    None => return Some(open),
                    Some(b'"') if rest.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            field_start = false;
            continue;
        }
        field_start = matches!(b, b',' | b'\n' | b'\r');
        i += 1;
    }
    None
}

/// Parquet through the row API (no Arrow): strings as they are, other values as text; a
/// byte-array column that is not UTF-8 is that row's problem, not the file's. Snappy, gzip and
/// LZ4 pages are read; other codecs say so.
fn read_parquet(path: &Path, cols: &Columns) -> Result<Table, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file).map_err(|e| format!("not a Parquet file: {e}"))?;
    // Codecs this build cannot decompress are named before any row is read: the row reader
    // would otherwise fail on every page.
    let file_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    for group in reader.metadata().row_groups() {
        for column in group.columns() {
            use parquet::basic::Compression;
            // Damaged metadata the library would assert on (a negative or out-of-file range).
            let start = column
                .dictionary_page_offset()
                .unwrap_or(column.data_page_offset());
            let len = column.compressed_size();
            if start < 0 || len < 0 || (start as u64).saturating_add(len as u64) > file_len {
                return Err(format!(
                    "the file's metadata is damaged (column `{}` claims bytes {start}..+{len} of a {file_len}-byte file)",
                    column.column_path()
                ));
            }
            let codec = column.compression();
            if !matches!(
                codec,
                Compression::UNCOMPRESSED
                    | Compression::SNAPPY
                    | Compression::GZIP(_)
                    | Compression::LZ4
                    | Compression::LZ4_RAW
            ) {
                return Err(format!(
                    "column `{}` is compressed with {codec}, which hugflake does not read (it reads snappy, gzip, lz4 and uncompressed Parquet): re-write the file with snappy or none, e.g. pandas `df.to_parquet(path, compression=\"snappy\")`",
                    column.column_path()
                ));
            }
        }
    }
    let names: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    for want in [&cols.id, &cols.text] {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(want)) {
            return Err(format!(
                "no column `{want}`; the file has: {}",
                names.join(", ")
            ));
        }
    }
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| format!("cannot read the rows: {e}"))?;
    let mut table = Table::default();
    let mut seen = std::collections::HashSet::new();
    for (i, row) in rows.enumerate() {
        let line = i + 1;
        // A damaged page fails every row after it: end the input with the cause, never loop.
        let row = row.map_err(|e| {
            format!("row {line} cannot be read ({e}); nothing was read from this file")
        })?;
        let mut fields = BTreeMap::new();
        let (mut id, mut text) = (None, None);
        for (name, value) in row.get_column_iter() {
            let as_text: Result<String, ()> = match value {
                Field::Null => Ok(String::new()),
                Field::Str(s) => Ok(s.clone()),
                Field::Bytes(b) => b.as_utf8().map(str::to_string).map_err(|_| ()),
                Field::Decimal(d) => Ok(decimal_text(d)),
                other => Ok(other.to_string()),
            };
            if name.eq_ignore_ascii_case(&cols.text) {
                text = Some(as_text);
                continue;
            }
            if name.eq_ignore_ascii_case(&cols.id) {
                id = as_text.clone().ok();
            }
            if let Ok(v) = as_text {
                fields.insert(name.to_ascii_uppercase(), v);
            }
        }
        table.accept(line, id, text, fields, &mut seen);
    }
    Ok(table)
}

/// A Parquet decimal as its exact digits (`12345` for decimal(38,0), `123.45` at scale 2); the
/// library's own text adds a trailing dot to whole numbers.
fn decimal_text(d: &parquet::data_type::Decimal) -> String {
    let data = d.data();
    if data.is_empty() || data.len() > 16 {
        return parquet::record::Field::Decimal(d.clone()).to_string();
    }
    // Big-endian two's complement, sign-extended to 128 bits.
    let fill = if data[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - data.len()..].copy_from_slice(data);
    let n = i128::from_be_bytes(buf);
    let scale = d.scale().max(0) as usize;
    if scale == 0 {
        return n.to_string();
    }
    let digits = n.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (whole, frac) = digits.split_at(digits.len() - scale);
    format!("{}{whole}.{frac}", if n < 0 { "-" } else { "" })
}

fn read_jsonl(bytes: &[u8], cols: &Columns) -> Table {
    let mut table = Table::default();
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reject = |reason: String| Rejected {
            line,
            id: None,
            reason,
        };
        let Ok(text_line) = std::str::from_utf8(raw) else {
            table
                .rejected
                .push(reject("the line is not valid UTF-8".into()));
            continue;
        };
        // Values are kept as written: an id such as 18446744073709551617 is text, and parsing it
        // as a JSON number would round it to a float and merge it with its neighbour.
        let obj: BTreeMap<String, &serde_json::value::RawValue> =
            match serde_json::from_str(text_line) {
                Ok(o) => o,
                // Only to say which: valid JSON that is not an object, or not JSON.
                Err(e) => {
                    let reason =
                        match serde_json::from_str::<&serde_json::value::RawValue>(text_line) {
                            Ok(_) => "not a JSON object".to_string(),
                            Err(_) => format!("not JSON: {e}"),
                        };
                    table.rejected.push(reject(reason));
                    continue;
                }
            };
        let text_of = |raw: &serde_json::value::RawValue| -> String {
            let r = raw.get();
            if r.starts_with('"') {
                serde_json::from_str::<String>(r).unwrap_or_default()
            } else if r == "null" {
                String::new()
            } else {
                r.to_string()
            }
        };
        let get = |name: &str| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| text_of(v))
        };
        let fields = obj
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(&cols.text))
            .map(|(k, v)| (k.to_ascii_uppercase(), text_of(v)))
            .collect();
        table.accept(
            line,
            get(&cols.id),
            get(&cols.text).map(Ok),
            fields,
            &mut seen,
        );
    }
    table
}

impl Table {
    /// One row: a note when its id and text pass [`check`] and the id is new, else a rejected
    /// row with the reason.
    fn accept(
        &mut self,
        line: usize,
        id: Option<String>,
        text: Option<Result<String, ()>>,
        fields: BTreeMap<String, String>,
        seen: &mut std::collections::HashSet<String>,
    ) {
        match check(id.clone(), text) {
            Ok((id, _)) if !seen.insert(id.clone()) => self.rejected.push(Rejected {
                line,
                id: Some(id),
                reason: "duplicate id (the first row with it is used)".into(),
            }),
            Ok((id, text)) => self.notes.push(Note {
                line,
                id,
                text,
                fields,
            }),
            Err(reason) => self.rejected.push(Rejected { line, id, reason }),
        }
    }

    /// Keeps the notes whose column satisfies the filter (case-insensitive column name; values
    /// compared as numbers when both are, else as text ignoring case).
    pub fn filter(&mut self, f: &Filter) -> Result<(), String> {
        let col = f.column.to_ascii_uppercase();
        if !self.notes.is_empty() && !self.notes.iter().any(|n| n.fields.contains_key(&col)) {
            return Err(format!("no column `{}` to filter on", f.column));
        }
        self.notes
            .retain(|n| n.fields.get(&col).is_some_and(|v| f.op.holds(v, &f.value)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Columns {
        Columns {
            id: "NOTE_ID".into(),
            text: "NOTE_TEXT".into(),
        }
    }

    #[test]
    fn csv_rows_are_read_and_bad_rows_reported_with_their_line() {
        let mut data =
            b"NOTE_ID,NOTE_TYPE,NOTE_TEXT\n1,ONCOLOGY,\"Fever, cough\"\n2,GENERAL,\n".to_vec();
        data.extend_from_slice(b"3,GENERAL,caf\xe9 au lait\n,GENERAL,no id\n1,GENERAL,again\n");
        let t = read_csv(&data, &cols()).unwrap_or_default();
        assert_eq!(t.notes.len(), 1);
        assert_eq!(t.notes[0].text, "Fever, cough");
        assert_eq!(t.notes[0].fields["NOTE_TYPE"], "ONCOLOGY");
        let reasons: Vec<(usize, &str)> = t
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (3, "empty text"),
                (4, "the text is not valid UTF-8"),
                (5, "no id"),
                (6, "duplicate id (the first row with it is used)"),
            ]
        );
    }

    #[test]
    fn a_missing_column_names_the_columns_there_are() {
        let err = read_csv(b"ID,TEXT\n1,a\n", &cols())
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("no column `NOTE_ID`") && err.contains("ID, TEXT"),
            "{err}"
        );
    }

    #[test]
    fn jsonl_rows_over_long_texts_and_filters() {
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        let data = format!(
            "{{\"note_id\": 7, \"note_type\": \"ONCOLOGY\", \"note_text\": \"Mass in the left lung\"}}\n\n[1]\n{{\"note_id\": 8, \"note_type\": \"GENERAL\", \"note_text\": \"{long}\"}}\n{{\"note_id\": 9, \"note_type\": \"general\", \"note_text\": \"Rash\"}}\n"
        );
        let mut t = read_jsonl(data.as_bytes(), &cols());
        assert_eq!(t.notes.len(), 2);
        assert_eq!(t.notes[0].id, "7");
        assert_eq!(t.rejected.len(), 2);
        assert_eq!(t.rejected[0].reason, "not a JSON object");
        assert!(t.rejected[1].reason.contains("over the 64 KiB limit"));
        let f: Filter = "note_type=general".parse().unwrap_or(Filter {
            column: String::new(),
            op: Comparison::Ne,
            value: String::new(),
        });
        assert!(t.filter(&f).is_ok());
        assert_eq!(t.notes.len(), 1);
        assert_eq!(t.notes[0].id, "9");
        assert!("NOTE_TYPE".parse::<Filter>().is_err());
        assert!("=3".parse::<Filter>().is_err());
    }

    #[test]
    fn where_filters_compare_numbers_as_numbers() {
        let parse = |s: &str| s.parse::<Filter>().unwrap_or_else(|e| panic!("{e}"));
        let f = parse(" PATIENT_AGE < 18 ");
        assert_eq!(
            (f.column.as_str(), f.op, f.value.as_str()),
            ("PATIENT_AGE", Comparison::Lt, "18")
        );
        assert_eq!(parse("a<=1").op, Comparison::Le);
        assert_eq!(parse("a>=1").op, Comparison::Ge);
        assert_eq!(parse("a!=1").op, Comparison::Ne);
        assert_eq!(parse("a<>1").op, Comparison::Ne);
        assert_eq!(parse("a>1").op, Comparison::Gt);
        assert_eq!(parse("a=b=c").value, "b=c");
        assert!(
            Comparison::Lt.holds("9", "18"),
            "9 < 18 as numbers, not as text"
        );
        assert!(!Comparison::Lt.holds("18", "18"));
        assert!(Comparison::Ge.holds("18.0", "18"));
        assert!(Comparison::Eq.holds("Oncology", "ONCOLOGY"));
        assert!(Comparison::Lt.holds("apple", "Banana"));
        assert!(!Comparison::Lt.holds("", "18") && !Comparison::Gt.holds("unknown", "65"));
        assert!(Comparison::Ne.holds("unknown", "65"));
        let data = "{\"note_id\": 1, \"age\": 9, \"note_text\": \"a\"}\n{\"note_id\": 2, \"age\": 18, \"note_text\": \"b\"}\n";
        let mut t = read_jsonl(data.as_bytes(), &cols());
        assert!(t.filter(&parse("AGE<18")).is_ok());
        assert_eq!(
            t.notes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            ["1"]
        );
    }

    /// Writes a small snappy-compressed Parquet file: NOTE_ID (int64), NOTE_TYPE (string),
    /// NOTE_TEXT (optional binary, one value not UTF-8, one null).
    fn write_parquet(path: &Path) {
        use parquet::basic::Compression;
        use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        use std::sync::Arc;
        let schema = Arc::new(
            parquet::schema::parser::parse_message_type(
                "message notes { REQUIRED INT64 NOTE_ID; REQUIRED BYTE_ARRAY NOTE_TYPE (UTF8); OPTIONAL BYTE_ARRAY NOTE_TEXT; }",
            )
            .unwrap_or_else(|e| panic!("{e}")),
        );
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build(),
        );
        let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
        let mut w =
            SerializedFileWriter::new(file, schema, props).unwrap_or_else(|e| panic!("{e}"));
        let mut rg = w.next_row_group().unwrap_or_else(|e| panic!("{e}"));
        let mut index = 0;
        while let Some(mut col) = rg.next_column().unwrap_or_else(|e| panic!("{e}")) {
            let written = match index {
                0 => col
                    .typed::<Int64Type>()
                    .write_batch(&[1, 2, 3, 4], None, None),
                1 => col.typed::<ByteArrayType>().write_batch(
                    &["ONCOLOGY", "GENERAL", "GENERAL", "ONCOLOGY"].map(ByteArray::from),
                    None,
                    None,
                ),
                _ => col.typed::<ByteArrayType>().write_batch(
                    &[
                        ByteArray::from("Mass in the left lung"),
                        ByteArray::from(b"caf\xe9".to_vec()),
                        ByteArray::from("Rash on both arms"),
                    ],
                    Some(&[1, 1, 0, 1]),
                    None,
                ),
            };
            written.unwrap_or_else(|e| panic!("{e}"));
            col.close().unwrap_or_else(|e| panic!("{e}"));
            index += 1;
        }
        rg.close().unwrap_or_else(|e| panic!("{e}"));
        w.close().unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn parquet_rows_are_read_and_bad_rows_reported() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notes.parquet");
        write_parquet(&path);
        let mut t = read(&path, &cols()).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(&str, &str)> = t
            .notes
            .iter()
            .map(|n| (n.id.as_str(), n.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [("1", "Mass in the left lung"), ("4", "Rash on both arms")]
        );
        let reasons: Vec<(usize, &str)> = t
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [(2, "the text is not valid UTF-8"), (3, "empty text")]
        );
        let f: Filter = "NOTE_TYPE=oncology"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(t.filter(&f).is_ok());
        assert_eq!(t.notes.len(), 2);
        let bad = dir.path().join("bad.parquet");
        std::fs::write(&bad, b"PAR1 not really").unwrap_or_else(|e| panic!("{e}"));
        let err = read(&bad, &cols())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not a Parquet file"), "{err}");
        let other = Columns {
            id: "ID".into(),
            text: "NOTE_TEXT".into(),
        };
        let err = read(&path, &other)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("no column `ID`; the file has: NOTE_ID, NOTE_TYPE, NOTE_TEXT"),
            "{err}"
        );
    }

    /// Runs `f` on a thread and fails the test if it does not end within `secs` (a hang is the
    /// fault being tested).
    fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(secs))
            .unwrap_or_else(|_| panic!("did not finish in {secs} s"))
    }

    #[test]
    fn an_unclosed_quote_refuses_the_file_and_names_its_line() {
        let mut csv = String::from("NOTE_ID,NOTE_TEXT\n1,fever\n2,cough\n3,\"rash on arms\n");
        for i in 4..1000 {
            csv.push_str(&format!("{i},note {i}\n"));
        }
        let err = read_csv(csv.as_bytes(), &cols())
            .err()
            .unwrap_or_else(|| panic!("the swallowed rows were accepted"));
        assert!(err.starts_with("line 4: a quote opens here"), "{err}");
        assert!(err.contains("997 line(s) after it"), "{err}");
        // Doubled quotes inside a quoted field, and quotes inside unquoted fields, are fine.
        let ok = "NOTE_ID,NOTE_TEXT\n1,\"said \"\"no\"\"\"\n2,a 5\" wound\n";
        let t = read_csv(ok.as_bytes(), &cols()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.notes.len(), 2, "{:?}", t.rejected);
        assert_eq!(t.notes[0].text, "said \"no\"");
    }

    #[test]
    fn a_quote_closed_rows_later_refuses_the_file_and_names_its_line() {
        // Row 3 opens a quote that a stray quote in row 900 closes: 896 rows would become one
        // note's text.
        let mut csv = String::from("NOTE_ID,NOTE_TYPE,NOTE_TEXT\n");
        for i in 1..=1000 {
            match i {
                3 => csv.push_str("N00003,GENERAL,\"rash on both arms\n"),
                900 => csv.push_str("N00900,GENERAL,a 5\" wound\n"),
                _ => csv.push_str(&format!("N{i:05},GENERAL,note {i}, with a comma\n")),
            }
        }
        let err = read_csv(csv.as_bytes(), &cols())
            .err()
            .unwrap_or_else(|| panic!("the swallowed rows were accepted"));
        assert!(
            err.starts_with("line 4: a quote opens in this row"),
            "{err}"
        );
        assert!(
            err.contains("`N00004,GENERAL,note 4, with a comma`"),
            "{err}"
        );
        // A real multi-line note, commas and all, is read as it is (spine levels included).
        let ok = "NOTE_ID,NOTE_TYPE,NOTE_TEXT\nN00001,GENERAL,\"Seen today.\nPlan: fluids, rest, review\nin 2 days, or sooner\nL4, L5, S1: mild change\nC5, C6, C7 bulge\"\nN00002,GENERAL,fine\n";
        let t = read_csv(ok.as_bytes(), &cols()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.notes.len(), 2, "{:?}", t.rejected);
        assert!(t.notes[0].text.contains("fluids, rest"));
    }

    #[test]
    fn csv_lines_stay_right_after_quoted_crlfs() {
        let csv = "NOTE_ID,NOTE_TEXT\r\n1,\"two\r\nlines\"\r\n2,\"three\r\nmore\r\nlines\"\r\n3,\r\n4,ok\r\n";
        let t = read_csv(csv.as_bytes(), &cols()).unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<(usize, &str)> = t
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        // Row 3 starts on line 7 of the file (1 header, 2 + 3 lines of quoted text).
        assert_eq!(lines, [(7, "empty text")]);
        let ids: Vec<&str> = t.notes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "4"]);
    }

    #[test]
    fn ids_keep_their_exact_spelling() {
        let jsonl = "{\"NOTE_ID\": 18446744073709551616, \"NOTE_TEXT\": \"a\"}\n{\"NOTE_ID\": 18446744073709551617, \"NOTE_TEXT\": \"b\"}\n{\"NOTE_ID\": 1.50, \"NOTE_TEXT\": \"c\"}\n";
        let t = read_jsonl(jsonl.as_bytes(), &cols());
        let ids: Vec<&str> = t.notes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(
            ids,
            ["18446744073709551616", "18446744073709551617", "1.50"],
            "{:?}",
            t.rejected
        );
        let d = |v: i128, scale: i32| {
            let bytes = v.to_be_bytes().to_vec();
            decimal_text(&parquet::data_type::Decimal::from_bytes(
                bytes.into(),
                38,
                scale,
            ))
        };
        assert_eq!(d(18446744073709551617, 0), "18446744073709551617");
        assert_eq!(d(12345, 2), "123.45");
        assert_eq!(d(-5, 3), "-0.005");
    }

    #[test]
    fn parquet_with_a_codec_not_built_in_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notes.parquet");
        write_parquet(&path);
        // The footer's codec of NOTE_ID, right after its path: SNAPPY (1, zigzag 2) → ZSTD (6, 12).
        let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let at = bytes
            .windows(9)
            .position(|w| w == b"NOTE_ID\x15\x02")
            .unwrap_or_else(|| panic!("codec not found in the footer"));
        bytes[at + 8] = 0x0c;
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let err = within(10, move || {
            read(&path, &cols()).err().map(|e| e.to_string())
        })
        .unwrap_or_default();
        assert!(
            err.contains("compressed with ZSTD") && err.contains("re-write the file with snappy"),
            "{err}"
        );
    }

    #[test]
    fn a_damaged_parquet_page_ends_the_input() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notes.parquet");
        write_parquet(&path);
        let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        // The first page header, just after the leading magic.
        for b in &mut bytes[4..24] {
            *b = 0xff;
        }
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let err = within(10, move || {
            read(&path, &cols()).err().map(|e| e.to_string())
        })
        .unwrap_or_else(|| panic!("a damaged file was read"));
        assert!(err.contains("cannot be read"), "{err}");
    }
}
