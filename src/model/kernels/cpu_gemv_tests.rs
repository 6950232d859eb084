//! Tests of `cpu_gemv`: f32 against a naive product; every quantized format against the product
//! with its dequantized weights, the weights quantized by candle's own (llama.cpp-compatible)
//! quantizer, so the block layouts are checked against an independent implementation; AVX2
//! against the portable kernels; batches against one row at a time.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::*;

fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2000) as f32 / 1000.0 - 1.0)
        .collect()
}

fn naive(w: &[f32], rows: usize, x: &[f32], m: usize) -> Vec<f32> {
    let k = x.len() / m;
    let mut out = vec![0f32; rows * m];
    for j in 0..m {
        for r in 0..rows {
            out[j * rows + r] = (0..k).map(|c| w[r * k + c] as f64 * x[j * k + c] as f64).sum::<f64>() as f32;
        }
    }
    out
}

#[test]
fn f32_kernel_matches_naive_over_several_matrices() {
    let (k, m) = (200, 3);
    let x = data(k * m, 1);
    let (a, b) = (data(130 * k, 2), data(7 * k, 3));
    let out = gemv(
        &x,
        m,
        &[
            KernelWeight::F32 {
                data: &a,
                rows: 130,
                cols: k,
            },
            KernelWeight::F32 {
                data: &b,
                rows: 7,
                cols: k,
            },
        ],
    );
    let want: Vec<f32> = naive(&a, 130, &x, m).into_iter().chain(naive(&b, 7, &x, m)).collect();
    for (g, w) in out.iter().zip(&want) {
        assert!((g - w).abs() < 1e-4, "{g} vs {w}");
    }
}

const FORMATS: [(GgmlDType, QFormat); 8] = [
    (GgmlDType::Q4_0, QFormat::Q4_0),
    (GgmlDType::Q4_1, QFormat::Q4_1),
    (GgmlDType::Q5_0, QFormat::Q5_0),
    (GgmlDType::Q5_1, QFormat::Q5_1),
    (GgmlDType::Q8_0, QFormat::Q8_0),
    (GgmlDType::Q4K, QFormat::Q4K),
    (GgmlDType::Q5K, QFormat::Q5K),
    (GgmlDType::Q6K, QFormat::Q6K),
];

/// A `[rows, cols]` matrix quantized by candle, as our `QMatrix` and as candle's dequantized f32.
fn quantized(dtype: GgmlDType, format: QFormat, rows: usize, cols: usize, seed: u32) -> (QMatrix, Vec<f32>) {
    // Rows of different magnitudes and a few outliers, so scales and mins vary.
    let mut w = data(rows * cols, seed);
    for (i, v) in w.iter_mut().enumerate() {
        *v *= 0.2 + (i / cols % 5) as f32 * 0.3;
        if i % 97 == 0 {
            *v *= 4.0;
        }
    }
    let t = Tensor::from_vec(w, (rows, cols), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&t, dtype).unwrap();
    let reference = q
        .dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let ours = QMatrix::from_bytes(format, rows, cols, &q.data().unwrap()).unwrap();
    (ours, reference)
}

#[test]
fn every_format_reads_candles_blocks_and_matches_the_dequantized_product() {
    // 38 rows: nine 4-row groups and a tail of 2; 512 columns: two K super-blocks.
    let (rows, cols) = (38, 512);
    for (i, (dtype, format)) in FORMATS.into_iter().enumerate() {
        let (q, reference) = quantized(dtype, format, rows, cols, 11 + i as u32);
        assert_eq!(q.format(), format);
        // Our reading of the blocks gives candle's weights exactly.
        let ours = q.dequantize();
        assert_eq!(ours.len(), reference.len());
        for (n, (a, b)) in ours.iter().zip(&reference).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "{format:?} weight {n}: {a} vs {b}"
            );
        }
        let mut single: Vec<Vec<f32>> = Vec::new();
        for m in [1, 3, 8, 16] {
            let x = data(cols * m, 100 + m as u32);
            let want = naive(&reference, rows, &x, m);
            let got = gemv(&x, m, &[KernelWeight::Quant(&q)]);
            let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
            let worst = got
                .iter()
                .zip(&want)
                .fold(0f32, |a, (g, w)| a.max((g - w).abs() / scale));
            // 8-bit activations: about 1% of the output scale at most.
            assert!(worst < 1e-2, "{format:?}, m = {m}: worst relative error {worst}");
            // A batch gives each row what that row alone gives.
            for j in 0..m {
                let alone = gemv(&x[j * cols..(j + 1) * cols], 1, &[KernelWeight::Quant(&q)]);
                assert_eq!(
                    &got[j * rows..(j + 1) * rows],
                    &alone[..],
                    "{format:?}, m = {m}, row {j}"
                );
            }
            single.push(got);
        }
        assert!(single.iter().all(|s| s.iter().all(|v| v.is_finite())));
    }
}

#[test]
fn avx2_kernels_agree_with_the_portable_ones() {
    if !has_avx2() {
        eprintln!("note: no AVX2 on this CPU; the dispatching kernels are the portable ones");
    }
    let (rows, cols) = (12, 768);
    for (i, (dtype, format)) in FORMATS.into_iter().enumerate() {
        let (q, _) = quantized(dtype, format, rows, cols, 40 + i as u32);
        let x = quantize_q81(&data(cols, 7 + i as u32));
        for r in (0..rows).step_by(4) {
            let (four, one) = q.dot_rows_dispatch(r, &x);
            for (k, v) in four.iter().enumerate() {
                let p = q.dot_row_portable(r + k, &x);
                assert!(
                    (v - p).abs() <= 1e-4 * p.abs().max(1.0),
                    "{format:?} row {}: {v} vs {p}",
                    r + k
                );
            }
            let p = q.dot_row_portable(r, &x);
            assert!(
                (one - p).abs() <= 1e-4 * p.abs().max(1.0),
                "{format:?} row {r}: {one} vs {p}"
            );
        }
    }
}

#[test]
fn q8_0_extremes_and_bad_sizes() {
    // Q8_0 with the full byte range, -128 included (candle's quantizer never writes it).
    let (rows, k) = (8, 64);
    let mut bytes = Vec::new();
    for i in 0..rows * k / 32 {
        bytes.extend(half::f16::from_f32(0.002 + (i % 3) as f32 * 0.001).to_le_bytes());
        bytes.extend((0..32).map(|j| ((i * 37 + j * 11) % 256) as u8));
    }
    let q = QMatrix::from_bytes(QFormat::Q8_0, rows, k, &bytes).unwrap();
    let x = quantize_q81(&data(k, 4));
    for r in (0..rows).step_by(4) {
        let (four, _) = q.dot_rows_dispatch(r, &x);
        for (i, v) in four.iter().enumerate() {
            let p = q.dot_row_portable(r + i, &x);
            assert!((v - p).abs() <= 1e-4 * p.abs().max(1.0), "{v} vs {p}");
        }
    }
    // Rows that are not whole blocks, and the wrong byte count, are refused.
    assert!(QMatrix::from_bytes(QFormat::Q8_0, rows, k, &bytes[1..]).is_none());
    assert!(QMatrix::from_bytes(QFormat::Q4K, 1, 128, &[0; 72]).is_none());
}
