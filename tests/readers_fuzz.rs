//! Mutation fuzzing of every reader of user input: notes files (CSV, JSON Lines, Parquet), images
//! and the config file. Each case starts from a valid input, damages it at random (bytes flipped,
//! cut, repeated, quotes and newlines thrown in) and must end within a time bound, without a
//! panic, with every row either read or reported. A few hundred cases run in the test command;
//! `scripts/fuzz.sh` runs many more (`HUGFLAKE_FUZZ_CASES`).

use std::path::Path;
use std::time::Duration;

use hugflake::batch::input::{self, Columns};

/// Cases per reader: `HUGFLAKE_FUZZ_CASES`, else 500.
fn cases() -> usize {
    std::env::var("HUGFLAKE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// xorshift64*: reproducible from the seed printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A few random edits of `seed`, with bytes the readers care about.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    const SPICE: &[u8] = b"\"\n\r,{}[]:\\\x00\xff\xc3";
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        if v.is_empty() {
            v.push(b'"');
        }
        let at = rng.below(v.len());
        match rng.below(6) {
            0 => v[at] = rng.next() as u8,
            1 => v[at] = SPICE[rng.below(SPICE.len())],
            2 => v.insert(at, SPICE[rng.below(SPICE.len())]),
            3 => v.truncate(at),
            4 => {
                let end = (at + 1 + rng.below(64)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
            _ => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
        }
    }
    v
}

/// Runs `f` on its own thread: it must end within `limit` and must not panic.
fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => {
            if handle.is_finished() {
                panic!("{what}: the reader panicked");
            }
            panic!("{what}: no answer within {limit:?}");
        }
    }
}

fn cols() -> Columns {
    Columns {
        id: "NOTE_ID".into(),
        text: "NOTE_TEXT".into(),
    }
}

fn seed_notes() -> Vec<(String, String)> {
    (0..40)
        .map(|i| {
            (
                format!("N{i:04}"),
                format!("Patient {i} with fever, cough and \"wheeze\"; seen on day {i}."),
            )
        })
        .collect()
}

/// Reads `bytes` as `name` and checks the accounting: every data line is a note or a rejection.
fn read_case(dir: &Path, name: &str, bytes: Vec<u8>, seed: u64) -> Option<(usize, usize)> {
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let what = format!("{name} (seed {seed})");
    let result = bounded(&what, Duration::from_secs(10), move || {
        input::read(&path, &cols()).map(|t| (t.notes.len(), t.rejected.len()))
    });
    result.ok()
}

#[test]
fn csv_jsonl_and_parquet_readers_survive_damage() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let notes = seed_notes();
    let mut csv = String::from("NOTE_ID,NOTE_TEXT\r\n");
    let mut jsonl = String::new();
    for (id, text) in &notes {
        csv.push_str(&format!("{id},\"{}\"\r\n", text.replace('"', "\"\"")));
        jsonl.push_str(&serde_json::json!({ "NOTE_ID": id, "NOTE_TEXT": text }).to_string());
        jsonl.push('\n');
    }
    let parquet = write_parquet(dir.path(), &notes);
    for case in 0..cases() {
        let seed = 0x9e37_79b9_7f4a_7c15 ^ case as u64;
        let mut rng = Rng(seed | 1);
        // JSON Lines: every non-blank line is a note or a rejection, exactly.
        let bytes = mutate(&mut rng, jsonl.as_bytes());
        let lines = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .count();
        if let Some((n, r)) = read_case(dir.path(), "notes.jsonl", bytes, seed) {
            assert_eq!(n + r, lines, "JSONL rows lost (seed {seed})");
        }
        // CSV: read or refused with a reason; when read, some row is accounted for.
        let bytes = mutate(&mut rng, csv.as_bytes());
        let had_data = bytes.windows(2).filter(|w| w == b"\r\n").count() > 1;
        if let Some((n, r)) = read_case(dir.path(), "notes.csv", bytes, seed) {
            assert!(!had_data || n + r > 0, "CSV rows lost (seed {seed})");
        }
        // Parquet: read or refused, never a hang or a panic.
        let bytes = mutate(&mut rng, &parquet);
        let _ = read_case(dir.path(), "notes.parquet", bytes, seed);
    }
}

#[test]
fn image_decoding_survives_damage() {
    let img = image::RgbImage::from_fn(48, 32, |x, y| image::Rgb([x as u8 * 5, y as u8 * 7, 90]));
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .unwrap_or_else(|e| panic!("{e}"));
    let seeds = [png.into_inner(), jpeg.into_inner()];
    for case in 0..cases() {
        let seed = 0x51_7cc1_b727_220a ^ case as u64;
        let mut rng = Rng(seed | 1);
        for s in &seeds {
            let bytes = mutate(&mut rng, s);
            bounded(
                &format!("image (seed {seed})"),
                Duration::from_secs(10),
                move || {
                    let _ = hugflake::inference::image::Rgb::decode(&bytes);
                },
            );
        }
    }
}

#[test]
fn config_loading_survives_damage() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let seed_text = hugflake::config::DEFAULT_CONFIG.as_bytes().to_vec();
    for case in 0..cases() {
        let seed = 0x2545_f491_4f6c_dd1d ^ case as u64;
        let mut rng = Rng(seed | 1);
        let path = dir.path().join("config.toml");
        std::fs::write(&path, mutate(&mut rng, &seed_text)).unwrap_or_else(|e| panic!("{e}"));
        let located = hugflake::paths::Located {
            path,
            source: "--config".into(),
        };
        let outcome = bounded(
            &format!("config (seed {seed})"),
            Duration::from_secs(10),
            move || {
                hugflake::config::Config::load(&located)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        );
        // A refusal names the file.
        if let Err(e) = outcome {
            assert!(e.contains("config.toml"), "{e} (seed {seed})");
        }
    }
}

/// A small snappy Parquet file of the notes.
fn write_parquet(dir: &Path, notes: &[(String, String)]) -> Vec<u8> {
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(
            "message notes { REQUIRED BYTE_ARRAY NOTE_ID (UTF8); REQUIRED BYTE_ARRAY NOTE_TEXT (UTF8); }",
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let path = dir.join("seed.parquet");
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut w = SerializedFileWriter::new(file, schema, props).unwrap_or_else(|e| panic!("{e}"));
    let mut rg = w.next_row_group().unwrap_or_else(|e| panic!("{e}"));
    let mut index = 0;
    while let Some(mut col) = rg.next_column().unwrap_or_else(|e| panic!("{e}")) {
        let values: Vec<ByteArray> = notes
            .iter()
            .map(|(id, text)| {
                ByteArray::from(if index == 0 {
                    id.as_str()
                } else {
                    text.as_str()
                })
            })
            .collect();
        col.typed::<ByteArrayType>()
            .write_batch(&values, None, None)
            .unwrap_or_else(|e| panic!("{e}"));
        col.close().unwrap_or_else(|e| panic!("{e}"));
        index += 1;
    }
    rg.close().unwrap_or_else(|e| panic!("{e}"));
    w.close().unwrap_or_else(|e| panic!("{e}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"))
}
