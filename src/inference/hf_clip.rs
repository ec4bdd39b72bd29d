//! Zero-shot image classification with transformers `CLIPModel` checkpoints (OpenAI's CLIP layout,
//! PubMedCLIP): a pre-norm ViT image tower (`vision_model.*`, CLS pooled through
//! `post_layernorm`), a causal text tower (`text_model.*`, pooled at the first end-of-text token
//! after `final_layer_norm`), `visual_projection` and `text_projection` without bias, and
//! `logit_scale`. The tokenizer is CLIP's byte-level BPE (`vocab.json` + `merges.txt`, or
//! `tokenizer.json`), lower-cased, at most 77 tokens; images go through transformers' CLIP image
//! processor as `preprocessor_config.json` describes it.

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;
use tokenizers::Model;
use tokenizers::Tokenizer;

use super::bert::{LayerNorm, Linear, attention, attention_spans, gelu};
use super::clip::LabelScore;
use super::image::{Rgb, preprocess_transformers};
use super::{InferenceError, Result, load_tensors, read_json, var_builder, weights_file};

/// The template transformers' zero-shot image pipeline puts each label through.
pub const PIPELINE_TEMPLATE: &str = "This is a photo of {}.";

/// CLIP's special tokens (OpenAI's vocabulary).
const BOS: &str = "<|startoftext|>";
const EOS: &str = "<|endoftext|>";

#[derive(Debug, Clone, Deserialize)]
struct TowerConfig {
    hidden_size: usize,
    intermediate_size: usize,
    num_attention_heads: usize,
    num_hidden_layers: usize,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    // Text tower only.
    #[serde(default)]
    vocab_size: usize,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
    #[serde(default)]
    eos_token_id: Option<u32>,
    // Vision tower only.
    #[serde(default)]
    image_size: usize,
    #[serde(default)]
    patch_size: usize,
}

fn default_act() -> String {
    "quick_gelu".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_positions() -> usize {
    77
}

impl TowerConfig {
    fn check(&self, which: &str) -> std::result::Result<(), String> {
        if !matches!(self.hidden_act.as_str(), "quick_gelu" | "gelu") {
            return Err(format!(
                "{which} tower: hidden_act `{}` is not supported (quick_gelu and gelu are)",
                self.hidden_act
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "{which} tower: hidden_size must be a multiple of num_attention_heads"
            ));
        }
        Ok(())
    }
}

/// One pre-norm encoder block.
struct Block {
    norm1: LayerNorm,
    qkv: Linear,
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

struct Encoder {
    blocks: Vec<Block>,
    heads: usize,
    hidden: usize,
    quick: bool,
}

impl Encoder {
    fn load(vb: &VarBuilder, c: &TowerConfig) -> candle_core::Result<Encoder> {
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        let blocks = (0..c.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layers.{i}"));
                let a = l.pp("self_attn");
                let get = |name: &str| -> candle_core::Result<(Tensor, Tensor)> {
                    let p = a.pp(name);
                    Ok((p.get((h, h), "weight")?, p.get(h, "bias")?))
                };
                let (qw, qb) = get("q_proj")?;
                let (kw, kb) = get("k_proj")?;
                let (vw, vbias) = get("v_proj")?;
                Ok(Block {
                    norm1: LayerNorm::load(&l.pp("layer_norm1"), h, eps)?,
                    qkv: Linear::from(&[qw, kw, vw], &[qb, kb, vbias])?,
                    out: Linear::load(&a.pp("out_proj"), h, h)?,
                    norm2: LayerNorm::load(&l.pp("layer_norm2"), h, eps)?,
                    fc1: Linear::load(&l.pp("mlp.fc1"), h, c.intermediate_size)?,
                    fc2: Linear::load(&l.pp("mlp.fc2"), c.intermediate_size, h)?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Encoder {
            blocks,
            heads: c.num_attention_heads,
            hidden: h,
            quick: c.hidden_act == "quick_gelu",
        })
    }

    fn act(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.quick {
            // x · sigmoid(1.702 x)
            x * candle_nn::ops::sigmoid(&(x * 1.702)?)?
        } else {
            gelu(x)
        }
    }

    /// `[rows, hidden]` through every block; `attend` is the attention over the normed rows.
    fn forward(
        &self,
        mut x: Tensor,
        attend: impl Fn(&Tensor, &Linear) -> candle_core::Result<Tensor>,
    ) -> candle_core::Result<Tensor> {
        for b in &self.blocks {
            let a = attend(&b.norm1.forward(&x)?, &b.qkv)?;
            x = (&x + b.out.forward(&a)?)?;
            let m = b
                .fc2
                .forward(&self.act(&b.fc1.forward(&b.norm2.forward(&x)?)?)?)?;
            x = (&x + m)?;
        }
        Ok(x)
    }
}

struct Vision {
    patch_w: Tensor,
    cls: Tensor,
    pos: Tensor,
    pre_norm: LayerNorm,
    encoder: Encoder,
    post_norm: LayerNorm,
    image_size: usize,
    patch: usize,
}

impl Vision {
    fn load(vb: &VarBuilder, c: &TowerConfig) -> candle_core::Result<Vision> {
        let (w, p, s) = (c.hidden_size, c.patch_size, c.image_size);
        if p == 0 || s == 0 || !s.is_multiple_of(p) {
            candle_core::bail!("vision_config: image_size {s} is not a multiple of patch_size {p}");
        }
        let n = (s / p).pow(2) + 1;
        let e = vb.pp("embeddings");
        Ok(Vision {
            patch_w: e
                .pp("patch_embedding")
                .get((w, 3, p, p), "weight")?
                .reshape((w, 3 * p * p))?
                .t()?
                .contiguous()?,
            cls: e.get(w, "class_embedding")?.reshape((1, w))?,
            pos: e.pp("position_embedding").get((n, w), "weight")?,
            pre_norm: LayerNorm::load(&vb.pp("pre_layrnorm"), w, c.layer_norm_eps)?,
            encoder: Encoder::load(vb, c)?,
            post_norm: LayerNorm::load(&vb.pp("post_layernorm"), w, c.layer_norm_eps)?,
            image_size: s,
            patch: p,
        })
    }

    /// Pooled (CLS, post-layer-norm) states of preprocessed `[3, S, S]` images.
    fn forward(&self, images: &[Vec<f32>]) -> candle_core::Result<Tensor> {
        let (s, p, w) = (self.image_size, self.patch, self.encoder.hidden);
        let g = s / p;
        let b = images.len();
        let t = g * g + 1;
        let patches = super::clip::patch_rows(images, s, p)?
            .matmul(&self.patch_w)?
            .reshape((b, g * g, w))?;
        let cls = self.cls.unsqueeze(0)?.broadcast_as((b, 1, w))?;
        let x = Tensor::cat(&[&cls, &patches], 1)?
            .broadcast_add(&self.pos.unsqueeze(0)?)?
            .reshape((b * t, w))?;
        let x = self.pre_norm.forward(&x)?;
        let heads = self.encoder.heads;
        let d = w / heads;
        let x = self
            .encoder
            .forward(x, |x, qkv| attention(x, qkv, (b, t, heads, d), None))?;
        let cls = x.reshape((b, t, w))?.narrow(1, 0, 1)?.squeeze(1)?;
        self.post_norm.forward(&cls)
    }
}

struct Text {
    token: Tensor,
    pos: Tensor,
    encoder: Encoder,
    final_norm: LayerNorm,
    max_len: usize,
    /// The end-of-text id pooled at; `None`: the legacy rule (the highest id in the sequence).
    eos: Option<u32>,
}

impl Text {
    fn load(vb: &VarBuilder, c: &TowerConfig) -> candle_core::Result<Text> {
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        Ok(Text {
            token: e.pp("token_embedding").get((c.vocab_size, h), "weight")?,
            pos: e
                .pp("position_embedding")
                .get((c.max_position_embeddings, h), "weight")?,
            encoder: Encoder::load(vb, c)?,
            final_norm: LayerNorm::load(&vb.pp("final_layer_norm"), h, c.layer_norm_eps)?,
            max_len: c.max_position_embeddings,
            // transformers: eos_token_id 2 (old configs) means "pool at the highest id".
            eos: c.eos_token_id.filter(|&id| id != 2),
        })
    }

    /// The position pooled in one sequence: the first end-of-text token.
    fn pooled_at(&self, ids: &[u32]) -> usize {
        let target = match self.eos {
            Some(id) => id,
            None => ids.iter().copied().max().unwrap_or(0),
        };
        ids.iter()
            .position(|&i| i == target)
            .unwrap_or(ids.len().saturating_sub(1))
    }

    /// Pooled states of token sequences (each at most `max_len`), packed without padding.
    fn forward(&self, sequences: &[Vec<u32>]) -> candle_core::Result<Tensor> {
        let h = self.encoder.hidden;
        let mut spans = Vec::with_capacity(sequences.len());
        let (mut ids, mut positions) = (Vec::new(), Vec::new());
        for s in sequences {
            if s.is_empty() || s.len() > self.max_len {
                candle_core::bail!("a text of {} tokens (1 to {})", s.len(), self.max_len);
            }
            spans.push((ids.len(), s.len()));
            ids.extend_from_slice(s);
            positions.extend(0..s.len() as u32);
        }
        let n = ids.len();
        let dev = Device::Cpu;
        let x = (self
            .token
            .index_select(&Tensor::from_slice(&ids, n, &dev)?, 0)?
            + self
                .pos
                .index_select(&Tensor::from_vec(positions, n, &dev)?, 0)?)?;
        let heads = self.encoder.heads;
        let d = h / heads;
        let x = self.encoder.forward(x, |x, qkv| {
            attention_spans(x, qkv, (heads, d), &spans, true)
        })?;
        let x = self.final_norm.forward(&x)?;
        let rows: Vec<u32> = spans
            .iter()
            .zip(sequences)
            .map(|(&(start, _), s)| (start + self.pooled_at(s)) as u32)
            .collect();
        let len = rows.len();
        x.index_select(&Tensor::from_vec(rows, len, &dev)?, 0)
    }
}

/// How `preprocessor_config.json` says pictures are prepared.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessing {
    pub shortest_edge: usize,
    pub crop: (usize, usize),
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl ImageProcessing {
    fn read(dir: &Path, image_size: usize) -> Result<ImageProcessing> {
        let path = dir.join("preprocessor_config.json");
        let cfg = match read_json(&path) {
            Ok(v) => v,
            Err(InferenceError::Missing { .. }) => serde_json::json!({}),
            Err(e) => return Err(e),
        };
        let bad = |detail: String| InferenceError::BadFile {
            path: path.clone(),
            detail,
        };
        for (key, what) in [
            ("do_resize", "resizing"),
            ("do_center_crop", "centre cropping"),
            ("do_normalize", "normalising"),
        ] {
            if cfg.get(key).and_then(|v| v.as_bool()) == Some(false) {
                return Err(InferenceError::Unsupported(format!(
                    "{}: `{key}: false` (no {what}) is not supported",
                    path.display()
                )));
            }
        }
        if cfg.get("do_rescale").and_then(|v| v.as_bool()) == Some(false)
            || cfg
                .get("rescale_factor")
                .and_then(|v| v.as_f64())
                .is_some_and(|f| (f - 1.0 / 255.0).abs() > 1e-9)
        {
            return Err(InferenceError::Unsupported(format!(
                "{}: only rescaling by 1/255 is supported",
                path.display()
            )));
        }
        if cfg
            .get("size")
            .is_some_and(|v| v.is_object() && v.get("shortest_edge").is_none())
        {
            return Err(InferenceError::Unsupported(format!(
                "{}: `size` without `shortest_edge` (an exact resize) is not supported",
                path.display()
            )));
        }
        if let Some(r) = cfg.get("resample").and_then(|v| v.as_u64())
            && r != 3
        {
            return Err(InferenceError::Unsupported(format!(
                "{}: resample {r} is not supported (3, bicubic, is)",
                path.display()
            )));
        }
        let size = |v: Option<&serde_json::Value>, key: &str| -> Option<usize> {
            let v = v?;
            v.as_u64()
                .or_else(|| v.get(key).and_then(|x| x.as_u64()))
                .map(|x| x as usize)
        };
        let shortest_edge = size(cfg.get("size"), "shortest_edge").unwrap_or(image_size);
        let crop = match cfg.get("crop_size") {
            Some(c) if c.is_object() => (
                size(c.get("height"), "").unwrap_or(image_size),
                size(c.get("width"), "").unwrap_or(image_size),
            ),
            Some(c) => {
                let s = c.as_u64().map_or(image_size, |x| x as usize);
                (s, s)
            }
            None => (image_size, image_size),
        };
        if crop != (image_size, image_size) {
            return Err(bad(format!(
                "crop {}×{} does not match the vision tower's {image_size}×{image_size}",
                crop.1, crop.0
            )));
        }
        if shortest_edge < crop.0.max(crop.1) || shortest_edge > 4 * image_size {
            return Err(bad(format!(
                "shortest_edge {shortest_edge} is out of range"
            )));
        }
        let triple = |k: &str, d: [f32; 3]| -> Result<[f32; 3]> {
            match cfg.get(k).and_then(|v| v.as_array()) {
                None => Ok(d),
                Some(a) if a.len() == 3 && a.iter().all(|x| x.is_number()) => {
                    Ok([0, 1, 2].map(|i| a[i].as_f64().unwrap_or(0.0) as f32))
                }
                Some(_) => Err(bad(format!("{k} must be three numbers"))),
            }
        };
        let std = triple("image_std", [0.268_629_54, 0.261_302_6, 0.275_777_1])?;
        if std.iter().any(|&s| s <= 0.0) {
            return Err(bad("image_std must be positive".into()));
        }
        Ok(ImageProcessing {
            shortest_edge,
            crop,
            mean: triple("image_mean", [0.481_454_66, 0.457_827_5, 0.408_210_73])?,
            std,
        })
    }
}

/// A transformers CLIPModel.
pub struct HfClip {
    vision: Vision,
    text: Text,
    visual_projection: Linear,
    text_projection: Linear,
    pub logit_scale: f32,
    tokenizer: Tokenizer,
    pub processing: ImageProcessing,
}

/// Whether a directory holds a transformers CLIPModel (config.json `model_type: clip`).
pub fn is_hf_clip(dir: &Path) -> bool {
    read_json(&dir.join("config.json"))
        .ok()
        .and_then(|c| c.get("model_type")?.as_str().map(|t| t == "clip"))
        .unwrap_or(false)
}

fn tower(raw: &serde_json::Value, key: &str, path: &Path) -> Result<TowerConfig> {
    let mut v = raw
        .get(key)
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    // transformers' defaults (CLIP ViT-B/32), for configs saved with only what differs.
    let defaults: &[(&str, u64)] = if key == "text_config" {
        &[
            ("hidden_size", 512),
            ("intermediate_size", 2048),
            ("num_attention_heads", 8),
            ("num_hidden_layers", 12),
            ("vocab_size", 49408),
            ("max_position_embeddings", 77),
        ]
    } else {
        &[
            ("hidden_size", 768),
            ("intermediate_size", 3072),
            ("num_attention_heads", 12),
            ("num_hidden_layers", 12),
            ("image_size", 224),
            ("patch_size", 32),
        ]
    };
    let Some(obj) = v.as_object_mut() else {
        return Err(InferenceError::BadFile {
            path: path.to_path_buf(),
            detail: format!("{key} is not an object"),
        });
    };
    for (k, d) in defaults {
        obj.entry((*k).to_string()).or_insert((*d).into());
    }
    let c: TowerConfig = serde_json::from_value(v).map_err(|e| InferenceError::BadFile {
        path: path.to_path_buf(),
        detail: format!("{key}: {e}"),
    })?;
    c.check(key.trim_end_matches("_config"))
        .map_err(InferenceError::Unsupported)?;
    Ok(c)
}

impl HfClip {
    pub fn load(dir: &Path) -> Result<HfClip> {
        let config_path = dir.join("config.json");
        let raw = read_json(&config_path)?;
        let text_cfg = tower(&raw, "text_config", &config_path)?;
        let vision_cfg = tower(&raw, "vision_config", &config_path)?;
        if text_cfg.vocab_size == 0 || vision_cfg.patch_size == 0 || vision_cfg.image_size == 0 {
            return Err(InferenceError::BadFile {
                path: config_path,
                detail:
                    "text_config.vocab_size, vision_config.patch_size and image_size are needed"
                        .into(),
            });
        }
        let projection = raw
            .get("projection_dim")
            .and_then(|v| v.as_u64())
            .unwrap_or(512) as usize;
        let processing = ImageProcessing::read(dir, vision_cfg.image_size)?;
        let tokenizer = clip_tokenizer(dir, text_cfg.max_position_embeddings)?;

        let weights = weights_file(dir)?;
        let tensors = load_tensors(&weights)?;
        let logit_scale = super::clip::logit_scale(&tensors, &weights)?;
        let vb = var_builder(tensors);
        let bad = |e: candle_core::Error| InferenceError::Weights {
            path: weights.clone(),
            detail: format!("these are not the weights of a CLIPModel with this config.json: {e}"),
        };
        Ok(HfClip {
            vision: Vision::load(&vb.pp("vision_model"), &vision_cfg).map_err(bad)?,
            text: Text::load(&vb.pp("text_model"), &text_cfg).map_err(bad)?,
            visual_projection: Linear::no_bias(
                &vb.pp("visual_projection"),
                vision_cfg.hidden_size,
                projection,
            )
            .map_err(bad)?,
            text_projection: Linear::no_bias(
                &vb.pp("text_projection"),
                text_cfg.hidden_size,
                projection,
            )
            .map_err(bad)?,
            logit_scale,
            tokenizer,
            processing,
        })
    }

    /// Preprocessed pixels, `[3, H, W]`.
    pub fn pixels(&self, img: &Rgb) -> Vec<f32> {
        let p = &self.processing;
        preprocess_transformers(img, p.shortest_edge, p.crop, p.mean, p.std)
    }

    /// Projected image embeddings (not normalised), as `get_image_features` gives them.
    pub fn image_features(&self, pixels: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let pooled = self.vision.forward(pixels)?;
        Ok(self.visual_projection.forward(&pooled)?.to_vec2::<f32>()?)
    }

    /// Token ids, `<|startoftext|>` … `<|endoftext|>`, truncated to the text tower's positions
    /// with the end token kept.
    pub fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        Ok(super::tokenizer::encode_all(&self.tokenizer, texts)?
            .iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// Projected text embeddings (not normalised), as `get_text_features` gives them.
    pub fn text_features(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = self.token_ids(texts)?;
        let pooled = self.text.forward(&ids)?;
        Ok(self.text_projection.forward(&pooled)?.to_vec2::<f32>()?)
    }

    /// `logits_per_image`: `exp(logit_scale)` times the cosine of the image and each text.
    pub fn logits(&self, image: &[f32], texts: &[Vec<f32>]) -> Vec<f32> {
        let s = self.logit_scale.exp();
        let norm = |v: &[f32]| super::dot(v, v).sqrt().max(1e-12);
        let ni = norm(image);
        texts
            .iter()
            .map(|t| s * super::dot(image, t) / (ni * norm(t)))
            .collect()
    }

    /// The zero-shot pipeline: each label through `template`, softmax over the logits, highest
    /// first (ties keep the labels' order).
    pub fn classify(&self, img: &Rgb, labels: &[&str], template: &str) -> Result<Vec<LabelScore>> {
        let prompts = super::clip::prompts(labels, template)?;
        let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
        let image = self.image_features(&[self.pixels(img)])?;
        let texts = self.text_features(&refs)?;
        Ok(super::clip::ranked(labels, &self.logits(&image[0], &texts)))
    }
}

/// CLIP's tokenizer: `tokenizer.json` when the repo has one, else byte-level BPE built from
/// `vocab.json` and `merges.txt` as transformers' `CLIPTokenizer` builds it (NFC, whitespace runs
/// to one space, lower case; split into letters runs, single digits and other-symbol runs; byte
/// level; `</w>` ends each word; `<|startoftext|>` … `<|endoftext|>` around the text). Truncated at
/// `max_len` tokens with the end token kept; never padded.
pub fn clip_tokenizer(dir: &Path, max_len: usize) -> Result<Tokenizer> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::normalizers::{Lowercase, NFC, Replace, Sequence as Norms};
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::sequence::Sequence as Pres;
    use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
    use tokenizers::processors::roberta::RobertaProcessing;
    use tokenizers::{AddedToken, SplitDelimiterBehavior};

    let err = |e: tokenizers::Error| InferenceError::Tokenizer(e.to_string());
    let tok = if let Some(t) = super::tokenizer::from_json(dir) {
        t?
    } else {
        let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
        for p in [&vocab, &merges] {
            if !p.exists() {
                return Err(InferenceError::Missing {
                    path: p.clone(),
                    hint: "CLIP's tokenizer needs tokenizer.json, or vocab.json and merges.txt"
                        .into(),
                });
            }
        }
        let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
            .continuing_subword_prefix(String::new())
            .end_of_word_suffix("</w>".into())
            .unk_token(EOS.into())
            .build()
            .map_err(|e| InferenceError::BadFile {
                path: vocab.clone(),
                detail: format!("not a BPE vocabulary with its merges: {e}"),
            })?;
        let bos_id = bpe.token_to_id(BOS);
        let eos_id = bpe.token_to_id(EOS);
        let (Some(bos_id), Some(eos_id)) = (bos_id, eos_id) else {
            return Err(InferenceError::BadFile {
                path: vocab,
                detail: format!("no {BOS} or {EOS} in the vocabulary: not CLIP's"),
            });
        };
        let mut tok = Tokenizer::new(bpe);
        tok.with_normalizer(Some(Norms::new(vec![
            NFC.into(),
            Replace::new(
                tokenizers::normalizers::replace::ReplacePattern::Regex(r"\s+".into()),
                " ",
            )
            .map_err(err)?
            .into(),
            Lowercase.into(),
        ])))
        .map_err(err)?;
        let split = Split::new(
            SplitPattern::Regex(
                r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
                    .into(),
            ),
            SplitDelimiterBehavior::Removed,
            true,
        )
        .map_err(err)?;
        tok.with_pre_tokenizer(Some(Pres::new(vec![
            split.into(),
            ByteLevel::new(false, true, true).into(),
        ])));
        tok.with_decoder(Some(ByteLevel::default()));
        tok.with_post_processor(Some(
            RobertaProcessing::new((EOS.into(), eos_id), (BOS.into(), bos_id))
                .trim_offsets(false)
                .add_prefix_space(false),
        ));
        tok.add_special_tokens([AddedToken::from(BOS, true), AddedToken::from(EOS, true)])
            .map_err(err)?;
        tok
    };
    super::tokenizer::limited(tok, max_len)
}
