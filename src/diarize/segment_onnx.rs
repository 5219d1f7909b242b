//! The pyannote segmentation-3.0 network of [`super::segment`] as an ONNX graph, in memory,
//! from the same installed safetensors weights, for onnxruntime ([`super::ort_backend`]). A port
//! of `../shared/prototypes/speaker-campplus/build_seg_onnx.py`.
//!
//! Input `waveform`: float32 `(1, 1, N)` at 16 kHz; output `logprobs`: `(1, frames, 7)`
//! powerset log-probabilities. The SincNet filters are the ones [`super::segment`] computes.
//! The same network also comes in two parts, the SincNet convolution ([`sinc_conv_onnx`]) and
//! the rest ([`after_sinc_onnx`]), so overlapping chunks can share one convolution.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;

use super::DiarizeError;
use super::campplus_onnx::{Array, Dim, Graph, float, int, ints, model};

const HIDDEN: usize = 128;
const LSTM_LAYERS: usize = 4;

struct Weights<'a> {
    tensors: &'a HashMap<String, Tensor>,
    path: &'a Path,
}

impl Weights<'_> {
    fn get(&self, name: &str) -> Result<Array, DiarizeError> {
        let bad = |problem: String| DiarizeError::SegmentationModel {
            path: self.path.to_path_buf(),
            problem: format!("tensor `{name}` {problem}"),
        };
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| bad("is missing".into()))?;
        let data = t
            .flatten_all()
            .and_then(|f| f.to_vec1::<f32>())
            .map_err(|e| bad(format!("is unreadable ({e})")))?;
        Ok(Array {
            data,
            dims: t.dims().iter().map(|&d| d as i64).collect(),
        })
    }
}

/// Torch's LSTM gate blocks (i, f, g, o) in ONNX's order (i, o, f, c).
fn onnx_gate_order(w: &[f32]) -> Vec<f32> {
    let block = w.len() / 4;
    let part = |k: usize| &w[k * block..(k + 1) * block];
    [part(0), part(3), part(1), part(2)].concat()
}

/// The ONNX model of the segmentation network in `tensors`, with the SincNet filters `sinc`
/// (`(80, 1, 251)`, as computed for the candle path): `waveform` `(1, 1, N)` → `logprobs`.
pub(crate) fn segmentation_onnx(
    tensors: &HashMap<String, Tensor>,
    sinc: Array,
    path: &Path,
) -> Result<Vec<u8>, DiarizeError> {
    let w = Weights { tensors, path };
    let mut g = Graph::default();
    let x = instance_norm(&mut g, &w, "waveform", "sincnet.wav_norm1d")?;
    sinc_conv(&mut g, &x, sinc, "filtered");
    after_sinc(&mut g, &w, "filtered")?;
    Ok(model(
        g,
        "pyannote_segmentation_3_0",
        ("waveform", &[Dim::Fixed(1), Dim::Fixed(1), Dim::Named("N")]),
        ("logprobs", &[Dim::Fixed(1), Dim::Named("F"), Dim::Fixed(7)]),
    ))
}

/// The SincNet band-pass convolution alone, on raw (not normalised) audio: `waveform`
/// `(1, 1, N)` → `filtered` `(1, 80, (N - 251) / 10 + 1)`. Run once over a whole recording, it
/// serves every chunk that overlaps there ([`super::segment::Segmenter::log_probs_in_recording`]).
pub(crate) fn sinc_conv_onnx(sinc: Array) -> Vec<u8> {
    let mut g = Graph::default();
    sinc_conv(&mut g, "waveform", sinc, "filtered");
    model(
        g,
        "pyannote_segmentation_3_0_sincnet_conv",
        ("waveform", &[Dim::Fixed(1), Dim::Fixed(1), Dim::Named("N")]),
        (
            "filtered",
            &[Dim::Fixed(1), Dim::Fixed(80), Dim::Named("T")],
        ),
    )
}

/// The network after the SincNet convolution: `filtered` `(B, 80, T)` (the convolution of the
/// instance-normalised waveform) → `logprobs` `(B, F, 7)`. Every chunk of a batch goes through
/// its own instance norms and its own LSTM state.
pub(crate) fn after_sinc_onnx(
    tensors: &HashMap<String, Tensor>,
    path: &Path,
) -> Result<Vec<u8>, DiarizeError> {
    let w = Weights { tensors, path };
    let mut g = Graph::default();
    after_sinc(&mut g, &w, "filtered")?;
    Ok(model(
        g,
        "pyannote_segmentation_3_0_after_sincnet_conv",
        (
            "filtered",
            &[Dim::Named("B"), Dim::Fixed(80), Dim::Named("T")],
        ),
        (
            "logprobs",
            &[Dim::Named("B"), Dim::Named("F"), Dim::Fixed(7)],
        ),
    ))
}

fn instance_norm(g: &mut Graph, w: &Weights, x: &str, p: &str) -> Result<String, DiarizeError> {
    let scale = g.const_f32(w.get(&format!("{p}.weight"))?);
    let bias = g.const_f32(w.get(&format!("{p}.bias"))?);
    Ok(g.op(
        "InstanceNormalization",
        &[x, &scale, &bias],
        vec![float("epsilon", INSTANCE_NORM_EPS)],
    ))
}

/// The epsilon of every instance norm of the network (torch's default, as the candle path).
pub(crate) const INSTANCE_NORM_EPS: f32 = 1e-5;

/// The SincNet convolution of `x` by the filters `sinc`, written to `output`.
fn sinc_conv(g: &mut Graph, x: &str, sinc: Array, output: &str) {
    let sinc = g.const_f32(sinc);
    g.op_into(
        "Conv",
        &[x, &sinc],
        vec![ints("kernel_shape", &[251]), ints("strides", &[10])],
        output,
    );
}

/// Abs, the two further SincNet stages, the LSTM and the classifier, from `x` `(B, 80, T)` to
/// the graph output `logprobs` `(B, F, 7)`.
fn after_sinc(g: &mut Graph, w: &Weights, x: &str) -> Result<(), DiarizeError> {
    let mut x = g.op("Abs", &[x], vec![]);
    for i in 0..3 {
        if i > 0 {
            let weight = g.const_f32(w.get(&format!("sincnet.conv1d.{i}.weight"))?);
            let bias = g.const_f32(w.get(&format!("sincnet.conv1d.{i}.bias"))?);
            x = g.op(
                "Conv",
                &[&x, &weight, &bias],
                vec![ints("kernel_shape", &[5])],
            );
        }
        x = g.op(
            "MaxPool",
            &[&x],
            vec![ints("kernel_shape", &[3]), ints("strides", &[3])],
        );
        x = instance_norm(g, w, &x, &format!("sincnet.norm1d.{i}"))?;
        x = g.op("LeakyRelu", &[&x], vec![float("alpha", 0.01)]);
    }
    let mut x = g.op("Transpose", &[&x], vec![ints("perm", &[2, 0, 1])]); // (T, B, 60)
    for layer in 0..LSTM_LAYERS {
        x = bidirectional_lstm(g, w, &x, layer)?;
    }
    let mut x = g.op("Transpose", &[&x], vec![ints("perm", &[1, 0, 2])]); // (B, T, 256)
    for name in ["linear.0", "linear.1", "classifier"] {
        let weight = transposed(w.get(&format!("{name}.weight"))?);
        let weight = g.const_f32(weight);
        let bias = g.const_f32(w.get(&format!("{name}.bias"))?);
        let y = g.op("MatMul", &[&x, &weight], vec![]);
        x = g.op("Add", &[&y, &bias], vec![]);
        if name != "classifier" {
            x = g.op("LeakyRelu", &[&x], vec![float("alpha", 0.01)]);
        }
    }
    g.op_into("LogSoftmax", &[&x], vec![int("axis", -1)], "logprobs");
    Ok(())
}

/// One bidirectional LSTM layer: `x` `(T, B, in)` → `(T, B, 256)`.
fn bidirectional_lstm(
    g: &mut Graph,
    w: &Weights,
    x: &str,
    layer: usize,
) -> Result<String, DiarizeError> {
    let name = |what: &str, reverse: bool| {
        format!(
            "lstm.{what}_l{layer}{}",
            if reverse { "_reverse" } else { "" }
        )
    };
    let mut input_w = Vec::new();
    let mut recurrent_w = Vec::new();
    let mut biases = Vec::new();
    let mut inputs = 0;
    for reverse in [false, true] {
        let ih = w.get(&name("weight_ih", reverse))?;
        inputs = ih.dims[1];
        input_w.extend(onnx_gate_order(&ih.data));
        recurrent_w.extend(onnx_gate_order(&w.get(&name("weight_hh", reverse))?.data));
        biases.extend(onnx_gate_order(&w.get(&name("bias_ih", reverse))?.data));
        biases.extend(onnx_gate_order(&w.get(&name("bias_hh", reverse))?.data));
    }
    let gates = (4 * HIDDEN) as i64;
    let ws = g.const_f32(Array {
        data: input_w,
        dims: vec![2, gates, inputs],
    });
    let rs = g.const_f32(Array {
        data: recurrent_w,
        dims: vec![2, gates, HIDDEN as i64],
    });
    let bs = g.const_f32(Array {
        data: biases,
        dims: vec![2, 2 * gates],
    });
    let y = g.op(
        "LSTM",
        &[x, &ws, &rs, &bs],
        vec![
            int("hidden_size", HIDDEN as i64),
            string("direction", "bidirectional"),
        ],
    );
    // Y: (T, 2, B, H) → (T, B, 2H)
    let y = g.op("Transpose", &[&y], vec![ints("perm", &[0, 2, 1, 3])]);
    let shape = g.vec_i64(&[0, 0, 2 * HIDDEN as i64]);
    Ok(g.op("Reshape", &[&y, &shape], vec![]))
}

/// A `(rows, cols)` matrix transposed.
fn transposed(a: Array) -> Array {
    let (rows, cols) = (a.dims[0] as usize, a.dims[1] as usize);
    let mut data = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            data[c * rows + r] = a.data[r * cols + c];
        }
    }
    Array {
        data,
        dims: vec![cols as i64, rows as i64],
    }
}

fn string(name: &str, value: &str) -> tract_onnx::pb::AttributeProto {
    tract_onnx::pb::AttributeProto {
        name: name.to_string(),
        r#type: tract_onnx::pb::attribute_proto::AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}
