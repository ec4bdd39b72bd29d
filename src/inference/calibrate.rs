//! The calibration check a reduced precision must pass when a model loads: a fixed set of inputs
//! run in fp32 and in the chosen precision, compared output by output (cosine; for token
//! classification also the share of tokens whose label is unchanged). Below the gate, the
//! precision is refused with the figures.

use super::bert::BertModel;
use super::quant::{self, Activations, Calibration, Precision};
use super::sentence::SentenceEncoder;
use super::token_classification::{FeatureExtractor, TokenClassifier};
use super::{InferenceError, Result};

/// The calibration inputs: short and long clinical notes, plain sentences, and edge cases (empty,
/// one word, numbers and units, accents, shouting, a text past the usual truncation).
pub fn inputs() -> Vec<String> {
    let mut texts: Vec<String> = [
        "Fever and cough for three days in a 4-year-old; chest clear, no hypoxia.",
        "Wheezing improved after two salbutamol nebulisers; discharged with an asthma plan.",
        "Term neonate with jaundice at 36 hours, bilirubin below the phototherapy line.",
        "Known type 1 diabetes, presents with vomiting and ketones 3.2 mmol/L.",
        "Rash on the trunk, non-blanching, with fever: meningococcal sepsis until proven otherwise.",
        "Parents report poor feeding and fewer wet nappies since yesterday.",
        "SpO2 92% on 2 L/min, RR 48, HR 165, temp 38.9 °C, CRT 3 s.",
        "Left forearm fracture after a fall from a trampoline; neurovascularly intact.",
        "Penicillin allergy (urticaria); started on clindamycin 10 mg/kg every 8 hours.",
        "No known drug allergies. Immunisations up to date.",
        "MRI brain: no acute abnormality; EEG shows generalised spike-wave discharges.",
        "Follow-up in the renal clinic in six weeks with a repeat urine culture.",
        "The weather was lovely and we walked along the river after lunch.",
        "Which model should we use to search the discharge summaries?",
        "naïve café – 37,5 °C, Größe 1,12 m, señal débil",
        "ABDOMINAL PAIN RIGHT ILIAC FOSSA, GUARDING, REBOUND TENDERNESS",
        "seizure",
        "",
        "q6h PRN PO paracetamol 15mg/kg max 60mg/kg/day",
        "Mother says he has been more tired than usual and has lost weight over the summer.",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    texts.push(
        "History: ".to_string()
            + &"recurrent chest infections with productive cough and failure to thrive, "
                .repeat(40),
    );
    texts
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum();
    if na == 0.0 && nb == 0.0 {
        return 1.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

/// What the check compares: one vector per input (by cosine) and, for token classification,
/// each token's label index.
pub struct Outputs {
    pub vectors: Vec<Vec<f32>>,
    pub labels: Option<Vec<usize>>,
}

/// A model whose encoder precision can be changed and whose outputs can be compared.
pub trait Calibrated {
    fn outputs(&self, texts: &[&str]) -> Result<Outputs>;
    fn encoder(&mut self) -> &mut BertModel;
}

/// Sets `precision` on a freshly loaded (fp32) model. A reduced precision is measured against fp32
/// first and refused below its gate; the figures come back either way. int8 starts with 8-bit
/// rows (12-bit for outlier rows) and falls back to 12-bit rows when that misses the gate.
pub fn set_precision<M: Calibrated>(
    model: &mut M,
    precision: Precision,
) -> Result<Option<Calibration>> {
    if !precision.is_reduced() {
        model.encoder().set_precision(precision)?;
        return Ok(None);
    }
    let texts = inputs();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let reference = model.outputs(&refs)?;
    model.encoder().set_precision(precision)?;
    let mut calibration = measure(model, &refs, &reference, precision)?;
    if let (Some(_), Some(Activations::Adaptive)) =
        (calibration.shortfall(), model.encoder().int8_activations())
    {
        model.encoder().set_int8_activations(Activations::Wide);
        let first = calibration.summary_figures();
        calibration = measure(model, &refs, &reference, precision)?;
        calibration.fallback = Some(format!(
            "8-bit rows fell below the gate ({first}), so every row is 12-bit"
        ));
    }
    if let Some(why) = calibration.shortfall() {
        let tried = calibration
            .fallback
            .as_ref()
            .map(|f| format!("; {f}"))
            .unwrap_or_default();
        return Err(InferenceError::Unsupported(format!(
            "{precision} is refused for this model: on the calibration check it falls below the \
             quality gate ({why}{tried}); serve it in fp32"
        )));
    }
    Ok(Some(calibration))
}

/// Runs the calibration inputs at the model's current precision and compares with fp32's.
fn measure<M: Calibrated>(
    model: &mut M,
    refs: &[&str],
    reference: &Outputs,
    precision: Precision,
) -> Result<Calibration> {
    let got = model.outputs(refs)?;
    let cos: Vec<f32> = got
        .vectors
        .iter()
        .zip(&reference.vectors)
        .map(|(a, b)| cosine(a, b))
        .collect();
    let mean = cos.iter().sum::<f32>() / cos.len().max(1) as f32;
    let min = cos.iter().copied().fold(f32::INFINITY, f32::min);
    let argmax_agreement = match (&reference.labels, got.labels) {
        (Some(r), Some(g)) if !r.is_empty() => {
            Some(r.iter().zip(&g).filter(|(a, b)| a == b).count() as f32 / r.len() as f32)
        }
        _ => None,
    };
    let kernel = match model.encoder().int8_activations() {
        Some(a) => quant::int8_kernel_name(a),
        None => quant::kernel_name(precision),
    };
    Ok(Calibration {
        precision,
        kernel: kernel.to_string(),
        inputs: refs.len(),
        mean_cosine: mean,
        min_cosine: min,
        argmax_agreement,
        fallback: None,
    })
}

impl Calibrated for SentenceEncoder {
    fn outputs(&self, texts: &[&str]) -> Result<Outputs> {
        Ok(Outputs {
            vectors: self.encode(texts, 32)?,
            labels: None,
        })
    }
    fn encoder(&mut self) -> &mut BertModel {
        &mut self.bert.model
    }
}

impl Calibrated for TokenClassifier {
    fn outputs(&self, texts: &[&str]) -> Result<Outputs> {
        let tagged = self.tag(texts)?;
        let mut labels = Vec::new();
        let vectors = tagged
            .iter()
            .map(|t| {
                for row in &t.logits {
                    let best = row
                        .iter()
                        .enumerate()
                        .fold(
                            (0, f32::NEG_INFINITY),
                            |b, (i, v)| if *v > b.1 { (i, *v) } else { b },
                        );
                    labels.push(best.0);
                }
                t.logits.concat()
            })
            .collect();
        Ok(Outputs {
            vectors,
            labels: Some(labels),
        })
    }
    fn encoder(&mut self) -> &mut BertModel {
        &mut self.bert.model
    }
}

impl Calibrated for FeatureExtractor {
    fn outputs(&self, texts: &[&str]) -> Result<Outputs> {
        let features = self.extract(texts)?;
        Ok(Outputs {
            vectors: features
                .into_iter()
                .map(|f| [f.cls, f.mean].concat())
                .collect(),
            labels: None,
        })
    }
    fn encoder(&mut self) -> &mut BertModel {
        &mut self.bert.model
    }
}
