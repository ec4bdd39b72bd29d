//! Zero-shot image classification ([`ZeroShot`]: either layout). open_clip checkpoints in
//! BiomedCLIP's layout
//! (`CustomTextCLIP`): a timm ViT image tower (`visual.trunk.*`, CLS-token pooling, linear
//! `visual.head.proj`), an HF BERT text tower (`text.transformer.*`, CLS of the last hidden state,
//! MLP projection `text.proj.0`/`text.proj.2`), and `logit_scale`.
//!
//! The real BiomedCLIP keeps its text tower's config and tokenizer in a second Hub repo,
//! [`TEXT_TOWER_REPO`]; the loader finds it beside the model directory or in the HF cache.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use super::bert::{Batch, BertModel, LayerNorm, Linear, attention, gelu, parse_config};
use super::image::{Rgb, preprocess};
use super::{InferenceError, Result, load_tensors, read_json, tokenizer, var_builder};

/// The Hub repo that holds BiomedCLIP's text-tower config and tokenizer.
pub const TEXT_TOWER_REPO: &str = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract";

/// The template labels go through.
pub const DEFAULT_TEMPLATE: &str = "this is a photo of {}";

/// Result labels carry this, always.
pub const RESEARCH_USE: &str = "research use only, not for diagnosis";

#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    pub patch: usize,
    pub mlp_ratio: f64,
    pub image_size: usize,
}

impl VisionConfig {
    /// Sizes from the config when given, else from the timm name.
    fn from_cfg(v: &serde_json::Value) -> Result<VisionConfig> {
        let name = v
            .get("timm_model_name")
            .and_then(|n| n.as_str())
            .unwrap_or("");
        let known = match name {
            "vit_base_patch16_224" => Some((768, 12, 64, 16, 4.0, 224)),
            "vit_base_patch32_224" => Some((768, 12, 64, 32, 4.0, 224)),
            "vit_large_patch16_224" => Some((1024, 24, 64, 16, 4.0, 224)),
            "vit_small_patch16_224" => Some((384, 12, 64, 16, 4.0, 224)),
            _ => None,
        };
        let get = |k: &str| v.get(k).and_then(|x| x.as_f64());
        let pick = |k: &str, i: usize| -> Result<f64> {
            get(k)
                .or_else(|| {
                    known.map(|t| match i {
                        0 => t.0 as f64,
                        1 => t.1 as f64,
                        2 => t.2 as f64,
                        3 => t.3 as f64,
                        4 => t.4,
                        _ => t.5 as f64,
                    })
                })
                .ok_or_else(|| {
                    InferenceError::Unsupported(format!(
                        "vision tower `{name}`: no `{k}` in the config and the timm name is not one hugflake knows"
                    ))
                })
        };
        let width = pick("width", 0)? as usize;
        let head_width = pick("head_width", 2)? as usize;
        Ok(VisionConfig {
            width,
            layers: pick("layers", 1)? as usize,
            heads: (width / head_width.max(1)).max(1),
            patch: pick("patch_size", 3)? as usize,
            mlp_ratio: pick("mlp_ratio", 4)?,
            image_size: pick("image_size", 5)? as usize,
        })
    }
}

struct Block {
    norm1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

struct Vit {
    cfg: VisionConfig,
    patch_w: Tensor,
    patch_b: Tensor,
    cls: Tensor,
    pos: Tensor,
    blocks: Vec<Block>,
    norm: LayerNorm,
    head: Linear,
}

impl Vit {
    fn load(vb: &VarBuilder, cfg: VisionConfig, embed: usize) -> candle_core::Result<Vit> {
        let w = cfg.width;
        let t = vb.pp("trunk");
        let p = cfg.patch;
        let n = (cfg.image_size / p).pow(2) + 1;
        let hidden = (w as f64 * cfg.mlp_ratio) as usize;
        let blocks = (0..cfg.layers)
            .map(|i| {
                let b = t.pp(format!("blocks.{i}"));
                let qkv_w = b.pp("attn.qkv").get((3 * w, w), "weight")?;
                let qkv_b = b.pp("attn.qkv").get(3 * w, "bias")?;
                Ok(Block {
                    norm1: LayerNorm::load(&b.pp("norm1"), w, 1e-6)?,
                    qkv: Linear::from(&[qkv_w], &[qkv_b])?,
                    proj: Linear::load(&b.pp("attn.proj"), w, w)?,
                    norm2: LayerNorm::load(&b.pp("norm2"), w, 1e-6)?,
                    fc1: Linear::load(&b.pp("mlp.fc1"), w, hidden)?,
                    fc2: Linear::load(&b.pp("mlp.fc2"), hidden, w)?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Vit {
            patch_w: t
                .pp("patch_embed.proj")
                .get((w, 3, p, p), "weight")?
                .reshape((w, 3 * p * p))?
                .t()?
                .contiguous()?,
            patch_b: t.pp("patch_embed.proj").get(w, "bias")?,
            cls: t.get((1, 1, w), "cls_token")?.reshape((1, w))?,
            pos: t.get((1, n, w), "pos_embed")?.reshape((n, w))?,
            blocks,
            norm: LayerNorm::load(&t.pp("norm"), w, 1e-6)?,
            head: Linear::no_bias(&vb.pp("head.proj"), w, embed)?,
            cfg,
        })
    }

    /// Image embeddings (not normalised) for preprocessed `[3, S, S]` images.
    fn forward(&self, images: &[Vec<f32>]) -> candle_core::Result<Tensor> {
        let c = &self.cfg;
        let (s, p, w) = (c.image_size, c.patch, c.width);
        let g = s / p;
        let b = images.len();
        let t = g * g + 1;
        let patches = patch_rows(images, s, p)?;
        let x = patches
            .matmul(&self.patch_w)?
            .broadcast_add(&self.patch_b)?
            .reshape((b, g * g, w))?;
        let cls = self.cls.unsqueeze(0)?.broadcast_as((b, 1, w))?;
        let x = Tensor::cat(&[&cls, &x], 1)?.broadcast_add(&self.pos.unsqueeze(0)?)?;
        let mut x = x.reshape((b * t, w))?;
        let d = w / c.heads;
        for blk in &self.blocks {
            let a = attention(&blk.norm1.forward(&x)?, &blk.qkv, (b, t, c.heads, d), None)?;
            x = (&x + blk.proj.forward(&a)?)?;
            let m = blk
                .fc2
                .forward(&gelu(&blk.fc1.forward(&blk.norm2.forward(&x)?)?)?)?;
            x = (&x + m)?;
        }
        let x = self.norm.forward(&x)?.reshape((b, t, w))?;
        let cls = x.narrow(1, 0, 1)?.squeeze(1)?;
        self.head.forward(&cls)
    }
}

/// `[3, s, s]` images as `[images × patches, 3·p·p]` rows (channel, ky, kx), so a patch
/// embedding's convolution is one matrix product.
pub(super) fn patch_rows(images: &[Vec<f32>], s: usize, p: usize) -> candle_core::Result<Tensor> {
    let g = s / p;
    let mut rows = vec![0f32; images.len() * g * g * 3 * p * p];
    let mut i = 0;
    for img in images {
        if img.len() != 3 * s * s {
            candle_core::bail!("an image of {} values for {s}×{s} pixels", img.len());
        }
        for py in 0..g {
            for px in 0..g {
                for ch in 0..3 {
                    for ky in 0..p {
                        let base = (ch * s + py * p + ky) * s + px * p;
                        rows[i..i + p].copy_from_slice(&img[base..base + p]);
                        i += p;
                    }
                }
            }
        }
    }
    Tensor::from_vec(rows, (images.len() * g * g, 3 * p * p), &Device::Cpu)
}

/// One label's probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
}

/// An open_clip BiomedCLIP-layout model.
pub struct OpenClip {
    vit: Vit,
    text: BertModel,
    proj0: Linear,
    proj2: Linear,
    pub logit_scale: f32,
    tokenizer: Tokenizer,
    context_length: usize,
    mean: [f32; 3],
    std: [f32; 3],
}

fn normalise(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.into_iter().map(|x| x / n).collect()
}

/// The text tower's directory: `explicit`, else a sibling named like `hf_model_name`'s last part,
/// else the `main` snapshot of that repo in the HF cache.
fn text_tower_dir(
    dir: &Path,
    hf_name: &str,
    explicit: Option<&Path>,
    hf_cache: Option<&Path>,
) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let last = hf_name.rsplit('/').next().unwrap_or(hf_name);
    if let Some(parent) = dir.parent() {
        let sibling = parent.join(last);
        if sibling.join("config.json").exists() {
            return Ok(sibling);
        }
    }
    if let Some(cache) = hf_cache {
        let repo = cache.join(format!("models--{}", hf_name.replace('/', "--")));
        if let Ok(commit) = std::fs::read_to_string(repo.join("refs/main")) {
            let snap = repo.join("snapshots").join(commit.trim());
            if snap.join("config.json").exists() {
                return Ok(snap);
            }
        }
    }
    Err(InferenceError::Missing {
        path: PathBuf::from(hf_name),
        hint: format!(
            "the text tower's config and tokenizer live in the Hub repo `{hf_name}`: download it too \
             (`hugflake download {hf_name}`)"
        ),
    })
}

impl OpenClip {
    pub fn load(dir: &Path, text_dir: Option<&Path>, hf_cache: Option<&Path>) -> Result<OpenClip> {
        let cfg = read_json(&dir.join("open_clip_config.json"))?;
        let model_cfg = cfg.get("model_cfg").cloned().unwrap_or_default();
        let embed = model_cfg
            .get("embed_dim")
            .and_then(|e| e.as_u64())
            .ok_or_else(|| InferenceError::BadFile {
                path: dir.join("open_clip_config.json"),
                detail: "no model_cfg.embed_dim".into(),
            })? as usize;
        let vision = VisionConfig::from_cfg(&model_cfg["vision_cfg"])?;
        let text_cfg = &model_cfg["text_cfg"];
        let hf_name = text_cfg
            .get("hf_model_name")
            .and_then(|n| n.as_str())
            .unwrap_or(TEXT_TOWER_REPO);
        let context_length = text_cfg
            .get("context_length")
            .and_then(|c| c.as_u64())
            .unwrap_or(256) as usize;
        let pre = cfg.get("preprocess_cfg");
        let triple = |k: &str, d: [f32; 3]| -> [f32; 3] {
            pre.and_then(|p| p.get(k))
                .and_then(|v| v.as_array())
                .filter(|a| a.len() == 3)
                .map_or(d, |a| {
                    [0, 1, 2].map(|i| a[i].as_f64().unwrap_or(f64::from(d[i])) as f32)
                })
        };
        let mean = triple("mean", [0.481_454_66, 0.457_827_5, 0.408_210_73]);
        let std = triple("std", [0.268_629_54, 0.261_302_6, 0.275_777_1]);

        let tower = text_tower_dir(dir, hf_name, text_dir, hf_cache)?;
        let bert_cfg_path = tower.join("config.json");
        let bert_cfg = parse_config(&read_json(&bert_cfg_path)?, &bert_cfg_path)?;
        let tok_dir = if dir.join("tokenizer.json").exists() || dir.join("vocab.txt").exists() {
            dir
        } else {
            tower.as_path()
        };
        let tokenizer = tokenizer::load(tok_dir, context_length)?;

        let weights = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.exists())
            .ok_or_else(|| InferenceError::Missing {
                path: dir.join("open_clip_pytorch_model.bin"),
                hint: "no open_clip weights in the directory".into(),
            })?;
        let tensors = load_tensors(&weights)?;
        let logit_scale = logit_scale(&tensors, &weights)?;
        let vb = var_builder(tensors);
        let bad = |e: candle_core::Error| InferenceError::Weights {
            path: weights.clone(),
            detail: format!("not BiomedCLIP-layout weights for this config: {e}"),
        };
        let vit = Vit::load(&vb.pp("visual"), vision, embed).map_err(bad)?;
        let text = BertModel::load(vb.pp("text.transformer"), &bert_cfg).map_err(bad)?;
        let h = bert_cfg.hidden_size;
        let mid = vb
            .get_unchecked("text.proj.0.weight")
            .map_err(bad)?
            .dims()
            .first()
            .copied()
            .unwrap_or((h + embed) / 2);
        let proj0 = Linear::no_bias(&vb.pp("text.proj.0"), h, mid).map_err(bad)?;
        let proj2 = Linear::no_bias(&vb.pp("text.proj.2"), mid, embed).map_err(bad)?;
        Ok(OpenClip {
            vit,
            text,
            proj0,
            proj2,
            logit_scale,
            tokenizer,
            context_length,
            mean,
            std,
        })
    }

    pub fn image_size(&self) -> usize {
        self.vit.cfg.image_size
    }

    /// Preprocessed pixels of an image, `[3, S, S]`.
    pub fn pixels(&self, img: &Rgb) -> Vec<f32> {
        preprocess(img, self.image_size(), self.mean, self.std)
    }

    /// L2-normalised image embeddings.
    pub fn image_features(&self, pixels: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let f = self.vit.forward(pixels)?.to_vec2::<f32>()?;
        Ok(f.into_iter().map(normalise).collect())
    }

    /// Token ids padded to the context length (0 = padding), as open_clip's HF tokenizer gives them.
    pub fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        Ok(tokenizer::encode_all(&self.tokenizer, texts)?
            .iter()
            .map(|e| {
                let mut ids = e.get_ids().to_vec();
                ids.resize(self.context_length, 0);
                ids
            })
            .collect())
    }

    /// L2-normalised text embeddings.
    pub fn text_features(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = self.token_ids(texts)?;
        let (n, t) = (ids.len(), self.context_length);
        // Padding (id 0) only trails the real tokens, so the mask is a length per row.
        let lengths: Vec<usize> = ids
            .iter()
            .map(|r| r.iter().filter(|&&i| i != 0).count())
            .collect();
        let flat: Vec<u32> = ids.into_iter().flatten().collect();
        let dev = Device::Cpu;
        let batch = Batch {
            ids: Tensor::from_vec(flat, (n, t), &dev)?,
            type_ids: Tensor::zeros((n, t), candle_core::DType::U32, &dev)?,
            lengths,
        };
        let hidden = self.text.forward(&batch)?;
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let f = self
            .proj2
            .forward(&gelu(&self.proj0.forward(&cls)?)?)?
            .to_vec2::<f32>()?;
        Ok(f.into_iter().map(normalise).collect())
    }

    /// `exp(logit_scale) · image · text` for each text.
    pub fn logits(&self, image: &[f32], texts: &[Vec<f32>]) -> Vec<f32> {
        let s = self.logit_scale.exp();
        texts.iter().map(|t| s * super::dot(image, t)).collect()
    }

    /// Probabilities of each label for an image (labels through `template`), highest first.
    pub fn classify(&self, img: &Rgb, labels: &[&str], template: &str) -> Result<Vec<LabelScore>> {
        let prompts = prompts(labels, template)?;
        let prompt_refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
        let image = self.image_features(&[self.pixels(img)])?;
        let texts = self.text_features(&prompt_refs)?;
        Ok(ranked(labels, &self.logits(&image[0], &texts)))
    }
}

/// Each label through the template (`{}` replaced; a template without one gets the label
/// appended).
pub(super) fn prompts(labels: &[&str], template: &str) -> Result<Vec<String>> {
    if labels.is_empty() {
        return Err(InferenceError::Unsupported(
            "give at least one candidate label".into(),
        ));
    }
    Ok(labels
        .iter()
        .map(|l| {
            if template.contains("{}") {
                template.replace("{}", l)
            } else {
                format!("{template} {l}")
            }
        })
        .collect())
}

/// Softmax over the logits, highest first; ties keep the labels' order (a stable sort, as the
/// transformers pipeline's).
pub(super) fn ranked(labels: &[&str], logits: &[f32]) -> Vec<LabelScore> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = exp.iter().sum();
    let mut out: Vec<LabelScore> = labels
        .iter()
        .zip(exp)
        .map(|(l, e)| LabelScore {
            label: (*l).to_string(),
            score: e / total,
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

/// A zero-shot image model of either layout the local platform serves.
pub enum ZeroShot {
    /// open_clip (BiomedCLIP): `open_clip_config.json`.
    OpenClip(OpenClip),
    /// transformers `CLIPModel` (OpenAI CLIP, PubMedCLIP): `config.json` with `model_type: clip`.
    Transformers(super::hf_clip::HfClip),
}

impl ZeroShot {
    /// Loads whichever layout the directory holds.
    pub fn load(dir: &Path, text_dir: Option<&Path>, hf_cache: Option<&Path>) -> Result<ZeroShot> {
        if dir.join("open_clip_config.json").exists() {
            return Ok(ZeroShot::OpenClip(OpenClip::load(dir, text_dir, hf_cache)?));
        }
        if super::hf_clip::is_hf_clip(dir) {
            return Ok(ZeroShot::Transformers(super::hf_clip::HfClip::load(dir)?));
        }
        Err(InferenceError::Unsupported(format!(
            "{}: neither an open_clip model (open_clip_config.json) nor a transformers CLIPModel \
             (config.json with model_type `clip`)",
            dir.display()
        )))
    }

    /// The template labels go through when the caller gives none: open_clip's usual prompt, or
    /// the transformers pipeline's default.
    pub fn default_template(&self) -> &'static str {
        match self {
            ZeroShot::OpenClip(_) => DEFAULT_TEMPLATE,
            ZeroShot::Transformers(_) => super::hf_clip::PIPELINE_TEMPLATE,
        }
    }

    pub fn classify(&self, img: &Rgb, labels: &[&str], template: &str) -> Result<Vec<LabelScore>> {
        match self {
            ZeroShot::OpenClip(m) => m.classify(img, labels, template),
            ZeroShot::Transformers(m) => m.classify(img, labels, template),
        }
    }
}

/// The scalar `logit_scale` of a CLIP checkpoint (logits use its exponential).
pub(super) fn logit_scale(
    tensors: &std::collections::HashMap<String, Tensor>,
    weights: &Path,
) -> Result<f32> {
    Ok(tensors
        .get("logit_scale")
        .ok_or_else(|| InferenceError::Weights {
            path: weights.to_path_buf(),
            detail: "no logit_scale".into(),
        })?
        .flatten_all()?
        .to_vec1::<f32>()?
        .first()
        .copied()
        .unwrap_or(0.0))
}

/// Read by `Task::detect` and the import resolver: the text tower this checkpoint needs.
pub fn text_tower_of(dir: &Path) -> Option<String> {
    read_json(&dir.join("open_clip_config.json"))
        .ok()?
        .get("model_cfg")?
        .get("text_cfg")?
        .get("hf_model_name")?
        .as_str()
        .map(String::from)
}
