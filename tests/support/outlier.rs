//! A sentence model whose activations carry one outlier channel, as BERT's do, that 8-bit rows
//! cannot hold but 12-bit rows can: the tiny sentence model with bias `B` on channel 0 of every
//! layer norm but the last (whose channel 0 is zeroed, so the embedding itself has no outlier),
//! and channel 0 of every layer-norm output silenced in the linear layers that read it (query,
//! key, value, intermediate). In f32 the outlier changes the layer norms' statistics, which is the
//! reference; quantized, it sets each row's range, and with only 32 channels its range stays
//! within 16× the row's RMS, so the row is not sent to 12 bits on its own.

use std::path::Path;

use super::spiked::copy_dir;

/// Writes the outlier copy of the sentence model in `src` (the tiny BERT fixture) into `dst`,
/// with `bias` on channel 0.
pub fn write(src: &Path, dst: &Path, bias: f32) {
    copy_dir(src, dst);
    let path = dst.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let last = "encoder.layer.1.output.LayerNorm.";
    let mut changed = 0;
    for (name, t) in tensors.iter_mut() {
        let dims = t.dims().to_vec();
        let mut v = t
            .flatten_all()
            .and_then(|f| f.to_vec1::<f32>())
            .unwrap_or_default();
        if name.starts_with(last) {
            v[0] = 0.0;
        } else if name.contains("LayerNorm.bias") {
            v[0] = bias;
        } else if name.ends_with("output.dense.weight") {
            v.iter_mut().for_each(|w| *w *= 20.0);
        } else if [
            "query.weight",
            "key.weight",
            "value.weight",
            "intermediate.dense.weight",
        ]
        .iter()
        .any(|s| name.ends_with(s))
        {
            let cols = dims[1];
            v.iter_mut().for_each(|w| *w *= 20.0);
            for r in 0..dims[0] {
                v[r * cols] = 0.0;
            }
        } else {
            continue;
        }
        changed += 1;
        *t = candle_core::Tensor::from_vec(v, dims, &candle_core::Device::Cpu)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // 4 layer-norm biases, the last layer norm's weight and bias, 12 linears.
    assert_eq!(changed, 18);
    candle_core::safetensors::save(&tensors, &path).unwrap_or_else(|e| panic!("{e}"));
}
