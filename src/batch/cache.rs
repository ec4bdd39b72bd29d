//! The embedding cache: one SQLite file holding, per note and model, the embedding, the model
//! version that computed it, the hash of the text it was computed from, and when. No note text is
//! stored (the cache holds vectors and ids, not clinical text).
//!
//! Search is exact (every cached vector is scored); `pairs` finds the most similar pairs with
//! blocked matrix products, so memory stays at one block of scores however many notes there are.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use rusqlite::{Connection, params};

use super::BatchError;

pub struct Cache {
    conn: Connection,
    pub path: PathBuf,
}

/// What the cache holds for one note under one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub version: String,
    pub content_hash: String,
    /// The stored vector is whole: the model's dimension, every value finite, not all zero. A
    /// damaged one counts as stale, so the next `batch embed` computes it again.
    pub intact: bool,
}

/// A model's embeddings, row-normalised, in one matrix.
pub struct Matrix {
    pub model: String,
    pub version: String,
    pub ids: Vec<String>,
    pub dim: usize,
    /// `ids.len() × dim`, row after row, each row of unit length.
    pub data: Vec<f32>,
    /// Notes whose stored vector is damaged (left out of the matrix; re-embedding repairs them).
    pub damaged: Vec<String>,
}

/// The vector in `blob` when it is whole: `dim` values, `dim` the model's dimension, all finite
/// and not all zero.
fn intact_vector(blob: &[u8], dim: usize, expected: usize) -> Option<Vec<f32>> {
    if dim != expected || dim == 0 || blob.len() != dim * 4 {
        return None;
    }
    let v: Vec<f32> = blob
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0)).then_some(v)
}

/// One search hit or pair.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub score: f32,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> BatchError + '_ {
    move |e| BatchError::Cache {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

impl Cache {
    pub fn open(path: &Path) -> Result<Cache, BatchError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| BatchError::Cache {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        }
        let conn = Connection::open(path).map_err(db_err(path))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS embeddings (
                 note_id TEXT NOT NULL,
                 model TEXT NOT NULL,
                 model_version TEXT NOT NULL,
                 content_hash TEXT NOT NULL,
                 dim INTEGER NOT NULL,
                 embedding BLOB NOT NULL,
                 computed_at TEXT NOT NULL,
                 PRIMARY KEY (note_id, model)
             );",
        )
        .map_err(db_err(path))?;
        Ok(Cache {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Everything cached for a model: note id → version, text hash and whether its vector is
    /// intact. Rows are checked as they stream by; no vector is kept.
    pub fn entries(&self, model: &str) -> Result<HashMap<String, Entry>, BatchError> {
        let dims = self.usual_dims(model)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT note_id, model_version, content_hash, dim, embedding FROM embeddings
                 WHERE model = ?1",
            )
            .map_err(db_err(&self.path))?;
        let mut rows = stmt.query(params![model]).map_err(db_err(&self.path))?;
        let mut out = HashMap::new();
        while let Some(r) = rows.next().map_err(db_err(&self.path))? {
            let get = |i| -> Result<String, BatchError> { r.get(i).map_err(db_err(&self.path)) };
            let (id, version, content_hash) = (get(0)?, get(1)?, get(2)?);
            let d = r.get::<_, i64>(3).map_err(db_err(&self.path))? as usize;
            let blob = r.get_ref(4).map_err(db_err(&self.path))?;
            let expected = dims.get(&version).copied().unwrap_or(0);
            let intact = blob
                .as_blob()
                .is_ok_and(|b| intact_vector(b, d, expected).is_some());
            out.insert(
                id,
                Entry {
                    version,
                    content_hash,
                    intact,
                },
            );
        }
        Ok(out)
    }

    /// Each version's dimension: the one most of its rows have (a damaged row's is not it).
    fn usual_dims(&self, model: &str) -> Result<HashMap<String, usize>, BatchError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT model_version, dim, COUNT(*) FROM embeddings WHERE model = ?1
                 GROUP BY model_version, dim",
            )
            .map_err(db_err(&self.path))?;
        let rows = stmt
            .query_map(params![model], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as usize,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(db_err(&self.path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err(&self.path))?;
        let mut best: HashMap<String, (i64, usize)> = HashMap::new();
        for (version, dim, n) in rows {
            let e = best.entry(version).or_insert((0, 0));
            if (n, dim) > *e {
                *e = (n, dim);
            }
        }
        Ok(best.into_iter().map(|(v, (_, d))| (v, d)).collect())
    }

    /// Stores embeddings computed by `model`/`version` in one transaction (replacing older ones).
    pub fn store(
        &mut self,
        model: &str,
        version: &str,
        items: &[(String, String, Vec<f32>)],
    ) -> Result<(), BatchError> {
        let now = chrono::Utc::now().to_rfc3339();
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(db_err(&path))?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT OR REPLACE INTO embeddings
                     (note_id, model, model_version, content_hash, dim, embedding, computed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db_err(&path))?;
            for (id, hash, v) in items {
                let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                stmt.execute(params![id, model, version, hash, v.len() as i64, blob, now])
                    .map_err(db_err(&path))?;
            }
        }
        tx.commit().map_err(db_err(&path))
    }

    /// Models in the cache with their row counts, largest first.
    pub fn models(&self) -> Result<Vec<(String, String, usize)>, BatchError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT model, model_version, COUNT(*) FROM embeddings
                 GROUP BY model, model_version ORDER BY COUNT(*) DESC, model",
            )
            .map_err(db_err(&self.path))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as usize))
            })
            .map_err(db_err(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(db_err(&self.path))
    }

    /// Loads one model's current embeddings (the model may be left out when the cache holds one).
    pub fn matrix(&self, model: Option<&str>) -> Result<Matrix, BatchError> {
        let models = self.models()?;
        let (model, version) = match model {
            Some(m) => {
                let m = m.to_ascii_uppercase();
                let found = models.iter().find(|(n, _, _)| *n == m);
                match found {
                    Some((n, v, _)) => (n.clone(), v.clone()),
                    None => {
                        return Err(BatchError::Invalid(format!(
                            "the cache {} holds no embeddings of {m}",
                            self.path.display()
                        )));
                    }
                }
            }
            None => {
                let mut names: Vec<&str> = models.iter().map(|(n, _, _)| n.as_str()).collect();
                names.dedup();
                match names.as_slice() {
                    [] => {
                        return Err(BatchError::Invalid(format!(
                            "the cache {} is empty: run `hugflake batch embed` first",
                            self.path.display()
                        )));
                    }
                    [_] => (models[0].0.clone(), models[0].1.clone()),
                    many => {
                        return Err(BatchError::Invalid(format!(
                            "the cache holds several models ({}): say which with --model",
                            many.join(", ")
                        )));
                    }
                }
            }
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT note_id, dim, embedding FROM embeddings
                 WHERE model = ?1 AND model_version = ?2 ORDER BY note_id",
            )
            .map_err(db_err(&self.path))?;
        // One damaged row is reported and left out; it never breaks the search of the others.
        let dim = self.usual_dims(&model)?.get(&version).copied().unwrap_or(0);
        let (mut ids, mut data, mut damaged) = (Vec::new(), Vec::new(), Vec::new());
        let mut rows = stmt
            .query(params![model, version])
            .map_err(db_err(&self.path))?;
        while let Some(r) = rows.next().map_err(db_err(&self.path))? {
            let id: String = r.get(0).map_err(db_err(&self.path))?;
            let d = r.get::<_, i64>(1).map_err(db_err(&self.path))? as usize;
            let blob = r.get_ref(2).map_err(db_err(&self.path))?;
            match blob.as_blob().ok().and_then(|b| intact_vector(b, d, dim)) {
                Some(mut v) => {
                    normalise(&mut v);
                    ids.push(id);
                    data.extend(v);
                }
                None => damaged.push(id),
            }
        }
        drop(rows);
        Ok(Matrix {
            model,
            version,
            ids,
            dim,
            data,
            damaged,
        })
    }
}

pub fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// A min-heap entry, so the heap keeps the best `k`.
#[derive(PartialEq)]
struct Worst<T: PartialEq>(f32, T);

impl<T: PartialEq> Eq for Worst<T> {}
impl<T: PartialEq> PartialOrd for Worst<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T: PartialEq> Ord for Worst<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0)
    }
}

/// Keeps the `k` highest scores seen.
struct TopK<T: PartialEq> {
    k: usize,
    heap: BinaryHeap<Worst<T>>,
}

impl<T: PartialEq> TopK<T> {
    fn new(k: usize) -> TopK<T> {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// The score a candidate must beat to enter.
    #[inline]
    fn floor(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0)
        }
    }

    fn push(&mut self, score: f32, item: T) {
        if self.k == 0 || score.is_nan() {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Worst(score, item));
        } else if score > self.floor() {
            self.heap.pop();
            self.heap.push(Worst(score, item));
        }
    }

    /// Best first.
    fn into_sorted(self) -> Vec<(f32, T)> {
        let mut v: Vec<(f32, T)> = self.heap.into_iter().map(|w| (w.0, w.1)).collect();
        v.sort_by(|a, b| b.0.total_cmp(&a.0));
        v
    }
}

/// Rows per block in the blocked products.
const BLOCK: usize = 1024;

impl Matrix {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn block(&self, start: usize, end: usize) -> candle_core::Result<Tensor> {
        Tensor::from_slice(
            &self.data[start * self.dim..end * self.dim],
            (end - start, self.dim),
            &Device::Cpu,
        )
    }

    /// The `k` notes most similar (cosine) to `query`, best first; ties by id.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, BatchError> {
        if query.len() != self.dim {
            return Err(BatchError::Invalid(format!(
                "the query embedding has {} dimensions, the cache {} ({} {}): was it embedded by another model?",
                query.len(),
                self.dim,
                self.model,
                self.version
            )));
        }
        let mut q = query.to_vec();
        normalise(&mut q);
        // Chunks of rows in parallel, each keeping its own best k, then merged.
        let dim = self.dim.max(1);
        let rows_per_task = 4096;
        let partial: Vec<Vec<(f32, usize)>> = self
            .data
            .par_chunks(dim * rows_per_task)
            .enumerate()
            .map(|(c, block)| {
                let mut top = TopK::new(k);
                for (r, row) in block.chunks_exact(dim).enumerate() {
                    let s = crate::inference::dot(row, &q);
                    if s > top.floor() {
                        top.push(s, c * rows_per_task + r);
                    }
                }
                top.into_sorted()
            })
            .collect();
        let mut top = TopK::new(k);
        for (s, i) in partial.into_iter().flatten() {
            top.push(s, i);
        }
        let mut hits: Vec<Hit> = top
            .into_sorted()
            .into_iter()
            .map(|(score, i)| Hit {
                id: self.ids[i].clone(),
                score,
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        Ok(hits)
    }

    /// The `k` most similar pairs of distinct notes, best first: blocks of rows multiplied
    /// against the blocks at and after them, so only one block of scores is in memory.
    pub fn pairs(&self, k: usize) -> Result<Vec<Pair>, BatchError> {
        let n = self.len();
        let mut top = TopK::new(k);
        let mut i0 = 0;
        while i0 < n {
            let i1 = (i0 + BLOCK).min(n);
            let a = self.block(i0, i1)?;
            let mut j0 = i0;
            while j0 < n {
                let j1 = (j0 + BLOCK).min(n);
                let b = self.block(j0, j1)?;
                let scores = a.matmul(&b.t()?)?.flatten_all()?.to_vec1::<f32>()?;
                let w = j1 - j0;
                for (ri, row) in scores.chunks_exact(w).enumerate() {
                    let i = i0 + ri;
                    // Only pairs i < j.
                    let from = (i + 1).saturating_sub(j0).min(w);
                    let floor = top.floor();
                    for (cj, &s) in row[from..].iter().enumerate() {
                        if s > floor {
                            top.push(s, (i, j0 + from + cj));
                        }
                    }
                }
                j0 = j1;
            }
            i0 = i1;
        }
        Ok(top
            .into_sorted()
            .into_iter()
            .map(|(score, (i, j))| Pair {
                a: self.ids[i].clone(),
                b: self.ids[j].clone(),
                score,
            })
            .collect())
    }
}

impl From<candle_core::Error> for BatchError {
    fn from(e: candle_core::Error) -> BatchError {
        BatchError::Invalid(format!("vector arithmetic failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[&[f32]]) -> Matrix {
        let mut data = Vec::new();
        for r in rows {
            let mut v = r.to_vec();
            normalise(&mut v);
            data.extend(v);
        }
        Matrix {
            model: "M".into(),
            version: "V1".into(),
            ids: (0..rows.len()).map(|i| format!("n{i}")).collect(),
            dim: rows[0].len(),
            data,
            damaged: Vec::new(),
        }
    }

    /// A truncated blob and a NaN are left out of the search with their ids, and count as stale.
    #[test]
    fn damaged_vectors_are_reported_and_recomputed_not_fatal() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.sqlite");
        let mut cache = Cache::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let items: Vec<(String, String, Vec<f32>)> = (0..4)
            .map(|i| (format!("n{i}"), format!("h{i}"), vec![1.0, i as f32, 0.5]))
            .collect();
        cache
            .store("M", "V1", &items)
            .unwrap_or_else(|e| panic!("{e}"));
        let nan: Vec<u8> = [1.0f32, f32::NAN, 0.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        cache
            .conn
            .execute(
                "UPDATE embeddings SET embedding = x'0000' WHERE note_id = 'n1'",
                [],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        cache
            .conn
            .execute(
                "UPDATE embeddings SET embedding = ?1 WHERE note_id = 'n2'",
                params![nan],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let m = cache.matrix(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.ids, ["n0", "n3"]);
        assert_eq!(m.damaged, ["n1", "n2"]);
        assert_eq!(m.search(&[1.0, 0.0, 0.5], 5).map(|h| h.len()).ok(), Some(2));
        let e = cache.entries("M").unwrap_or_else(|e| panic!("{e}"));
        let intact: Vec<bool> = ["n0", "n1", "n2", "n3"]
            .iter()
            .map(|id| e.get(*id).is_some_and(|x| x.intact))
            .collect();
        assert_eq!(intact, [true, false, false, true]);
    }

    #[test]
    fn pairs_match_brute_force_across_blocks() {
        // 2,500 rows: three blocks, so pairs inside and across blocks are both seen.
        let n = 2500;
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let rows: Vec<Vec<f32>> = (0..n).map(|_| (0..8).map(|_| rnd()).collect()).collect();
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let m = matrix(&refs);
        let got = m.pairs(5).unwrap_or_default();
        let mut all = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                let s: f32 = m.data[i * 8..i * 8 + 8]
                    .iter()
                    .zip(&m.data[j * 8..j * 8 + 8])
                    .map(|(a, b)| a * b)
                    .sum();
                all.push((s, i, j));
            }
        }
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        assert_eq!(got.len(), 5);
        for (g, w) in got.iter().zip(&all) {
            assert_eq!(
                (g.a.as_str(), g.b.as_str()),
                (m.ids[w.1].as_str(), m.ids[w.2].as_str())
            );
            assert!((g.score - w.0).abs() < 1e-5);
        }
    }

    #[test]
    fn search_ranks_by_cosine_and_refuses_other_dimensions() {
        let m = matrix(&[&[1.0, 0.0], &[0.6, 0.8], &[0.0, 1.0]]);
        let hits = m.search(&[2.0, 0.1], 2).unwrap_or_default();
        assert_eq!(hits[0].id, "n0");
        assert_eq!(hits[1].id, "n1");
        let err = m
            .search(&[1.0, 0.0, 0.0], 2)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("3 dimensions, the cache 2"), "{err}");
    }

    #[test]
    fn store_reload_and_entries() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.sqlite");
        let mut c = Cache::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let items = vec![("a".to_string(), "h1".to_string(), vec![3.0, 4.0])];
        c.store("M", "V1", &items).unwrap_or_else(|e| panic!("{e}"));
        let e = c.entries("M").unwrap_or_default();
        assert_eq!(e["a"].version, "V1");
        let m = c.matrix(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.data, vec![0.6, 0.8]);
        c.store("OTHER", "V1", &items)
            .unwrap_or_else(|e| panic!("{e}"));
        let err = c
            .matrix(None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("several models"), "{err}");
    }
}
