//! Precision as a serving choice: the arithmetic a local service's linear layers use, the quality
//! gate a reduced precision must pass against fp32 when an instance loads, and the figures that
//! check measured.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The arithmetic a served model's linear layers use (local platform only: Snowflake's container
/// runs transformers in fp32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Int8,
    Bf16,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Int8, Precision::Bf16];

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
            Precision::Bf16 => "bf16",
        }
    }

    pub fn parse(s: &str) -> Option<Precision> {
        Precision::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn is_reduced(self) -> bool {
        self != Precision::Fp32
    }

    /// What the choice trades, in a few words (import form, `--help`).
    pub fn trade(self) -> &'static str {
        match self {
            Precision::Fp32 => "reference results",
            Precision::Int8 => "fastest; embeddings within cosine 0.995 of fp32",
            Precision::Bf16 => "half the weight memory; within cosine 0.9999 of fp32",
        }
    }

    /// The tasks whose models can run at this precision (the BERT-family text encoders).
    pub fn supports_task(self, task: &str) -> bool {
        !self.is_reduced()
            || matches!(
                task,
                "sentence-similarity" | "token-classification" | "feature-extraction"
            )
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Precision, String> {
        Precision::parse(s).ok_or_else(|| format!("unknown precision `{s}`: fp32, int8 or bf16"))
    }
}

/// The quality a reduced precision must keep against fp32 on the calibration check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gate {
    /// Least mean cosine between fp32 and reduced-precision outputs.
    pub mean: f32,
    /// Least cosine of any one output.
    pub min: f32,
    /// Least share of tokens whose argmax label is unchanged (token classification).
    pub argmax: f32,
}

impl Gate {
    pub fn for_precision(p: Precision) -> Gate {
        match p {
            Precision::Fp32 => Gate {
                mean: 1.0,
                min: 1.0,
                argmax: 1.0,
            },
            Precision::Int8 => Gate {
                mean: 0.995,
                min: 0.99,
                argmax: 0.99,
            },
            Precision::Bf16 => Gate {
                mean: 0.9999,
                min: 0.999,
                argmax: 0.99,
            },
        }
    }
}

/// What the calibration check measured when an instance loaded a reduced precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub precision: Precision,
    /// The kernel that ran it on this CPU (e.g. "AVX2 vpmaddwd, 12-bit rows").
    pub kernel: String,
    /// Inputs compared (sentences).
    pub inputs: usize,
    pub mean_cosine: f32,
    pub min_cosine: f32,
    /// Token classification: the share of tokens whose label is the fp32 one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argmax_agreement: Option<f32>,
    /// What the check fell back from, and why (int8: 8-bit rows below the gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

impl Calibration {
    /// Why the figures fall short of the gate, or None when they pass. Embeddings are gated on
    /// their cosines; token classification on its labels (its logits' cosines are reported only:
    /// the labels are what it answers).
    pub fn shortfall(&self) -> Option<String> {
        let g = Gate::for_precision(self.precision);
        let mut why = Vec::new();
        if let Some(a) = self.argmax_agreement {
            if a.is_nan() || a < g.argmax {
                why.push(format!(
                    "labels kept {:.1}% < {:.0}%",
                    a * 100.0,
                    g.argmax * 100.0
                ));
            }
            return (!why.is_empty()).then(|| why.join(", "));
        }
        if self.mean_cosine.is_nan() || self.mean_cosine < g.mean {
            why.push(format!("mean cosine {:.4} < {}", self.mean_cosine, g.mean));
        }
        if self.min_cosine.is_nan() || self.min_cosine < g.min {
            why.push(format!("min cosine {:.4} < {}", self.min_cosine, g.min));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    /// A few words for a narrow panel: the precision and the figure its gate looks at (and, after
    /// a fallback, that it runs the fallback).
    pub fn short(&self) -> String {
        let fallback = if self.fallback.is_some() {
            " · 12-bit rows (8-bit below the gate)"
        } else {
            ""
        };
        let figures = match self.argmax_agreement {
            Some(a) => format!(
                "{} · labels kept {:.1}% of fp32's",
                self.precision,
                a * 100.0
            ),
            None => format!(
                "{} · cosine vs fp32 {:.4} (min {:.4})",
                self.precision, self.mean_cosine, self.min_cosine
            ),
        };
        figures + fallback
    }

    /// The measured figures alone, e.g. "mean 0.9991, min 0.9952".
    pub fn summary_figures(&self) -> String {
        let labels = self
            .argmax_agreement
            .map(|a| format!(", labels kept {:.1}%", a * 100.0))
            .unwrap_or_default();
        format!(
            "mean {:.4}, min {:.4}{labels}",
            self.mean_cosine, self.min_cosine
        )
    }

    /// One line for Health and the logs.
    pub fn summary(&self) -> String {
        let verdict = match self.shortfall() {
            None => "passes the gate".to_string(),
            Some(w) => format!("below the gate: {w}"),
        };
        let fallback = self
            .fallback
            .as_ref()
            .map(|f| format!("; {f}"))
            .unwrap_or_default();
        format!(
            "{} ({}): cosine vs fp32 {} over {} inputs; {verdict}{fallback}",
            self.precision,
            self.kernel,
            self.summary_figures(),
            self.inputs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(p: Precision, mean: f32, min: f32, argmax: Option<f32>) -> Calibration {
        Calibration {
            precision: p,
            kernel: "test".into(),
            inputs: 3,
            mean_cosine: mean,
            min_cosine: min,
            argmax_agreement: argmax,
            fallback: None,
        }
    }

    #[test]
    fn a_fallback_is_said_in_every_form() {
        let mut c = cal(Precision::Int8, 0.9999, 0.9998, None);
        assert!(!c.short().contains("12-bit"));
        c.fallback = Some(
            "8-bit rows fell below the gate (mean 0.9891, min 0.9890), so every row is 12-bit"
                .into(),
        );
        assert_eq!(
            c.short(),
            "int8 · cosine vs fp32 0.9999 (min 0.9998) · 12-bit rows (8-bit below the gate)"
        );
        assert!(c.summary().ends_with("passes the gate; 8-bit rows fell below the gate (mean 0.9891, min 0.9890), so every row is 12-bit"));
        let json = serde_json::to_string(&c).unwrap_or_default();
        assert!(json.contains("\"fallback\":\"8-bit rows fell"), "{json}");
        // Absent, the field is left out (older records read back the same).
        let plain =
            serde_json::to_string(&cal(Precision::Int8, 0.9, 0.9, None)).unwrap_or_default();
        assert!(!plain.contains("fallback"), "{plain}");
    }

    #[test]
    fn gates_by_precision() {
        assert_eq!(cal(Precision::Int8, 0.9976, 0.9962, None).shortfall(), None);
        let low = cal(Precision::Int8, 0.994, 0.98, None);
        let why = low.shortfall().unwrap_or_default();
        assert!(why.contains("mean cosine 0.9940 < 0.995"), "{why}");
        assert!(why.contains("min cosine 0.9800 < 0.99"), "{why}");
        // Token classification: the labels decide.
        let ner = cal(Precision::Int8, 0.98, 0.95, Some(0.95));
        assert_eq!(
            ner.shortfall().unwrap_or_default(),
            "labels kept 95.0% < 99%"
        );
        assert_eq!(
            cal(Precision::Int8, 0.98, 0.95, Some(0.995)).shortfall(),
            None
        );
        assert!(
            cal(Precision::Bf16, 0.9998, 0.9995, None)
                .shortfall()
                .is_some()
        );
        assert!(
            cal(Precision::Int8, f32::NAN, f32::NAN, None)
                .shortfall()
                .is_some()
        );
        assert!(low.summary().contains("below the gate"));
    }

    #[test]
    fn names_and_tasks() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>(), Ok(p));
        }
        assert_eq!(Precision::parse(" INT8 "), Some(Precision::Int8));
        assert!("fp16".parse::<Precision>().is_err());
        assert!(Precision::Int8.supports_task("sentence-similarity"));
        assert!(!Precision::Int8.supports_task("zero-shot-image-classification"));
        assert!(Precision::Fp32.supports_task("zero-shot-image-classification"));
    }
}
