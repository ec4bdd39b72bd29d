//! Image preprocessing, bit-exact with what torchvision (open_clip) and transformers' PIL image
//! processor do: shorter side to `size` with PIL's bicubic resampling (antialiased, two 8-bit
//! fixed-point passes), centre crop, RGB, /255, normalise with the config's mean and std.

use std::path::Path;

use super::{InferenceError, Result};

/// The widest or tallest picture a service decodes.
pub const MAX_SIDE: u32 = 8192;
/// The most memory one picture may take to decode.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
/// The most elongated picture accepted (long side over short side).
pub const MAX_ASPECT: u32 = 32;
/// The largest image file read from disk.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// An 8-bit RGB image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Rgb {
    /// Decodes a PNG or JPEG file (any colour mode is converted to RGB, as PIL's `convert("RGB")`).
    /// Regular files only, at most `MAX_FILE_BYTES`, decoded under the same limits as a request's
    /// image.
    pub fn open(path: &Path) -> Result<Rgb> {
        let bytes = crate::paths::read_user_file(path, MAX_FILE_BYTES).map_err(|e| {
            InferenceError::BadFile {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }
        })?;
        Rgb::decode_named(&bytes, path)
    }

    /// Decodes image bytes (a request body's base64-decoded image), refusing pictures over
    /// `MAX_SIDE` pixels on a side or needing over `MAX_DECODE_BYTES` to decode (a small file can
    /// claim a huge canvas).
    pub fn decode(bytes: &[u8]) -> Result<Rgb> {
        Rgb::decode_named(bytes, Path::new("<image bytes>"))
    }

    fn decode_named(bytes: &[u8], path: &Path) -> Result<Rgb> {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        let decoded = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(image::ImageError::IoError)
            .and_then(|mut r| {
                r.limits(limits);
                r.decode()
            });
        if let Err(image::ImageError::Limits(_)) = &decoded {
            return Err(InferenceError::BadFile {
                path: path.to_path_buf(),
                detail: format!(
                    "the image is over {MAX_SIDE} pixels on a side or {} MiB decoded: send a smaller picture",
                    MAX_DECODE_BYTES / (1024 * 1024)
                ),
            });
        }
        Rgb::from_decoded(decoded, path)
    }

    fn from_decoded(img: image::ImageResult<image::DynamicImage>, path: &Path) -> Result<Rgb> {
        let img = img.map_err(|e| InferenceError::BadFile {
            path: path.to_path_buf(),
            detail: format!("not a readable PNG or JPEG image: {e}"),
        })?;
        // Preprocessing scales the short side to the model's size: a 8192×1 picture would become a
        // 1,835,008×224 canvas. The work is bounded before it is done.
        let (w, h) = (img.width().max(1), img.height().max(1));
        if w.max(h) > MAX_ASPECT * w.min(h) {
            return Err(InferenceError::BadFile {
                path: path.to_path_buf(),
                detail: format!(
                    "the image is {w}×{h}, longer than {MAX_ASPECT}:1; crop or pad it to a less elongated shape"
                ),
            });
        }
        let rgb = img.to_rgb8();
        Ok(Rgb {
            width: rgb.width() as usize,
            height: rgb.height() as usize,
            data: rgb.into_raw(),
        })
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc`: per output pixel, the first input index and
/// fixed-point weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut w: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|k| *k /= total);
            }
            let fixed = w
                .iter()
                .map(|k| {
                    let v = k * f64::from(1u32 << PRECISION_BITS);
                    if *k < 0.0 {
                        (v - 0.5) as i32
                    } else {
                        (v + 0.5) as i32
                    }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    if v >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// PIL's `Image.resize((w, h), BICUBIC)` for 8-bit RGB: horizontal pass, then vertical.
pub fn resize_bicubic(img: &Rgb, width: usize, height: usize) -> Rgb {
    let mut cur = img.clone();
    if width != img.width {
        let coeffs = coefficients(img.width, width);
        let mut out = vec![0u8; width * img.height * 3];
        for y in 0..img.height {
            for (x, (xmin, k)) in coeffs.iter().enumerate() {
                for c in 0..3 {
                    let mut ss = 1i64 << (PRECISION_BITS - 1);
                    for (i, w) in k.iter().enumerate() {
                        ss +=
                            i64::from(cur.data[(y * cur.width + xmin + i) * 3 + c]) * i64::from(*w);
                    }
                    out[(y * width + x) * 3 + c] = clip8(ss);
                }
            }
        }
        cur = Rgb {
            width,
            height: img.height,
            data: out,
        };
    }
    if height != img.height {
        let coeffs = coefficients(img.height, height);
        let mut out = vec![0u8; cur.width * height * 3];
        for (y, (ymin, k)) in coeffs.iter().enumerate() {
            for x in 0..cur.width {
                for c in 0..3 {
                    let mut ss = 1i64 << (PRECISION_BITS - 1);
                    for (i, w) in k.iter().enumerate() {
                        ss += i64::from(cur.data[((ymin + i) * cur.width + x) * 3 + c])
                            * i64::from(*w);
                    }
                    out[(y * cur.width + x) * 3 + c] = clip8(ss);
                }
            }
        }
        cur = Rgb {
            width: cur.width,
            height,
            data: out,
        };
    }
    cur
}

/// Resize (shorter side to `size`, as torchvision computes it), centre crop `size`², normalise:
/// `[3, size, size]` channel-major floats (open_clip's preprocessing).
pub fn preprocess(img: &Rgb, size: usize, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let (nw, nh) = shorter_side_to(img, size);
    let resized = resize_bicubic(img, nw, nh);
    // torchvision rounds the crop's offset.
    let top = ((nh.saturating_sub(size)) as f64 / 2.0).round() as usize;
    let left = ((nw.saturating_sub(size)) as f64 / 2.0).round() as usize;
    crop_normalise(&resized, (size, size), (top, left), mean, std)
}

/// transformers' `CLIPImageProcessor` (PIL backend): shorter side to `shortest`, the longer one
/// truncated in proportion; bicubic on 8-bit pixels; centre crop `crop` (height, width) with the
/// offset rounded down; /255; normalise.
pub fn preprocess_transformers(
    img: &Rgb,
    shortest: usize,
    crop: (usize, usize),
    mean: [f32; 3],
    std: [f32; 3],
) -> Vec<f32> {
    let (nw, nh) = shorter_side_to(img, shortest);
    let resized = resize_bicubic(img, nw, nh);
    let top = nh.saturating_sub(crop.0) / 2;
    let left = nw.saturating_sub(crop.1) / 2;
    crop_normalise(&resized, crop, (top, left), mean, std)
}

/// The size with the shorter side at `size` and the longer one scaled and truncated.
fn shorter_side_to(img: &Rgb, size: usize) -> (usize, usize) {
    let (w, h) = (img.width.max(1), img.height.max(1));
    if w <= h {
        (size, (size as f64 * h as f64 / w as f64) as usize)
    } else {
        ((size as f64 * w as f64 / h as f64) as usize, size)
    }
}

/// `[3, height, width]` channel-major floats of a window of `img` at `(top, left)` (zero outside
/// the image), /255 and normalised.
fn crop_normalise(
    img: &Rgb,
    (height, width): (usize, usize),
    (top, left): (usize, usize),
    mean: [f32; 3],
    std: [f32; 3],
) -> Vec<f32> {
    let (nw, nh) = (img.width, img.height);
    let mut out = vec![0f32; 3 * height * width];
    for c in 0..3 {
        for y in 0..height {
            for x in 0..width {
                let (sy, sx) = (y + top, x + left);
                let v = if sy < nh && sx < nw {
                    f32::from(img.data[(sy * nw + sx) * 3 + c]) / 255.0
                } else {
                    0.0
                };
                out[(c * height + y) * width + x] = (v - mean[c]) / std[c];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG that is only a header claiming `w`×`h` pixels (a decompression bomb's first bytes).
    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut crc = flate2::Crc::new();
        crc.update(&ihdr);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend_from_slice(&13u32.to_be_bytes());
        out.extend_from_slice(&ihdr);
        out.extend_from_slice(&crc.sum().to_be_bytes());
        out
    }

    #[test]
    fn a_huge_canvas_is_refused_before_it_is_decoded() {
        let err = Rgb::decode(&png_header(20_000, 20_000))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("over 8192 pixels on a side"), "{err}");
        // A normal header gets past the limits (and fails later for want of pixel data).
        let err = Rgb::decode(&png_header(64, 64))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not a readable PNG or JPEG"), "{err}");
        assert!(Rgb::decode(b"not an image").is_err());
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 10, 10]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{e}"));
        out.into_inner()
    }

    /// 106 bytes of PNG must not become a 1,835,008×224 resize.
    #[test]
    fn an_elongated_picture_is_refused_before_preprocessing() {
        let err = Rgb::decode(&png(8192, 1))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("8192×1, longer than 32:1"), "{err}");
        assert!(Rgb::decode(&png(64, 2)).is_ok());
        assert!(Rgb::decode(&png(2, 64)).is_ok());
    }
}
