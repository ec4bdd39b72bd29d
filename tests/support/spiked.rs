//! A sentence model that int8 cannot serve: the tiny sentence model with its linear weights made 20 times larger (so the layers,
//! not the residual path, shape its output), channel 0 of every linear layer's input
//! silenced (layer norms zero there; value row 0 zero; intermediate row 0 zero with bias
//! -10, so GELU gives 0) and a huge weight on that channel in every row of every linear
//! layer. In f32 the huge weight meets a zero and changes nothing; in int8 it sets each
//! row's scale, and the row's real weights round to zero.

use std::path::Path;

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap_or_else(|e| panic!("{e}"));
    for e in std::fs::read_dir(src)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
    {
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// Writes the spiked copy of the sentence model in `src` (the tiny BERT fixture) into `dst`.
pub fn write(src: &Path, dst: &Path) {
    copy_dir(src, dst);
    let path = dst.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut spiked = 0;
    for (name, t) in tensors.iter_mut() {
        if !name.starts_with("encoder.") && !name.starts_with("embeddings.LayerNorm") {
            continue;
        }
        let dims = t.dims().to_vec();
        let mut v = t
            .flatten_all()
            .and_then(|f| f.to_vec1::<f32>())
            .unwrap_or_default();
        if name.contains("LayerNorm.") || name.ends_with("value.bias") {
            v[0] = 0.0;
        } else if name.ends_with("intermediate.dense.bias") {
            v[0] = -10.0;
        } else if name.ends_with(".weight") && dims.len() == 2 {
            let cols = dims[1];
            v.iter_mut().for_each(|w| *w *= 20.0);
            if name.ends_with("value.weight") || name.ends_with("intermediate.dense.weight") {
                v[..cols].iter_mut().for_each(|w| *w = 0.0);
            }
            for r in 0..dims[0] {
                v[r * cols] = 1000.0;
            }
            spiked += 1;
        } else {
            continue;
        }
        *t = candle_core::Tensor::from_vec(v, dims, &candle_core::Device::Cpu)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(spiked, 12, "6 linears in each of 2 layers");
    candle_core::safetensors::save(&tensors, &path).unwrap_or_else(|e| panic!("{e}"));
}
