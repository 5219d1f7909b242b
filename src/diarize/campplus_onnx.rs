//! The CAM++ network of [`super::campplus`] written out as an ONNX graph, in memory, from the
//! same installed safetensors weights, so that onnxruntime can run it ([`super::ort_backend`]).
//! A port of `../shared/prototypes/speaker-campplus/build_onnx.py`.
//!
//! Input `feats`: float32 `(B, T, 80)`, mean-normalised fbank; output `embedding`: `(B, 192)`,
//! not normalised. Batch norms that follow a convolution are folded into it (as the candle path
//! does); the others stay `BatchNormalization` nodes. Opset 17, IR version 8.
//!
//! Promises: the graph is a pure function of the weights (byte-identical for the same file);
//! every tensor it reads is checked by [`super::campplus::CamPlus::new`] first, so a missing one
//! here is a defect, reported as [`DiarizeError::ModelInvalid`].

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use prost::Message;
use tract_onnx::pb;

use super::DiarizeError;

/// Batch norm epsilon (PyTorch's default).
const BN_EPS: f32 = 1e-5;
/// Frames per segment of the CAM layers' segment pooling.
const SEGMENT: i64 = 100;
/// (layers, dilation) of the three dense blocks.
const BLOCKS: [(usize, i64); 3] = [(12, 1), (24, 2), (16, 2)];

/// A float tensor's values and shape.
#[derive(Clone)]
pub(super) struct Array {
    pub(super) data: Vec<f32>,
    pub(super) dims: Vec<i64>,
}

/// The graph being written: nodes, initialisers, and a counter for unique value names.
#[derive(Default)]
pub(super) struct Graph {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    names: usize,
}

impl Graph {
    fn fresh(&mut self, prefix: &str) -> String {
        self.names += 1;
        format!("{prefix}_{}", self.names)
    }

    pub(super) fn const_f32(&mut self, a: Array) -> String {
        let name = self.fresh("c");
        let raw_data = a.data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.initializers.push(pb::TensorProto {
            dims: a.dims,
            data_type: pb::tensor_proto::DataType::Float as i32,
            raw_data,
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    /// An int64 constant; `dims` empty for a scalar.
    fn const_i64(&mut self, values: &[i64], dims: &[i64]) -> String {
        let name = self.fresh("c");
        self.initializers.push(pb::TensorProto {
            dims: dims.to_vec(),
            data_type: pb::tensor_proto::DataType::Int64 as i32,
            int64_data: values.to_vec(),
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    pub(super) fn vec_i64(&mut self, values: &[i64]) -> String {
        self.const_i64(values, &[values.len() as i64])
    }

    fn scalar_i64(&mut self, value: i64) -> String {
        self.const_i64(&[value], &[])
    }

    pub(super) fn op(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attribute: Vec<pb::AttributeProto>,
    ) -> String {
        let out = self.fresh(op_type);
        self.op_into(op_type, inputs, attribute, &out);
        out
    }

    pub(super) fn op_into(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attribute: Vec<pb::AttributeProto>,
        output: &str,
    ) {
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            op_type: op_type.to_string(),
            attribute,
            ..Default::default()
        });
    }

    fn relu(&mut self, x: &str) -> String {
        self.op("Relu", &[x], vec![])
    }

    /// A convolution with kernel `w` (`(O, I, k…)`), optional bias, strides, pads
    /// (`[begin…, end…]`) and dilations.
    fn conv(&mut self, x: &str, w: Array, bias: Option<Array>, geometry: ConvGeometry) -> String {
        let kernel: Vec<i64> = w.dims[2..].to_vec();
        let w = self.const_f32(w);
        let b = bias.map(|b| self.const_f32(b));
        let mut inputs = vec![x, w.as_str()];
        if let Some(b) = &b {
            inputs.push(b);
        }
        let mut attrs = vec![ints("kernel_shape", &kernel)];
        if let Some(s) = geometry.strides {
            attrs.push(ints("strides", s));
        }
        if let Some(p) = geometry.pads {
            attrs.push(ints("pads", p));
        }
        if let Some(d) = geometry.dilations {
            attrs.push(ints("dilations", d));
        }
        self.op("Conv", &inputs, attrs)
    }
}

#[derive(Default, Clone, Copy)]
struct ConvGeometry<'a> {
    strides: Option<&'a [i64]>,
    pads: Option<&'a [i64]>,
    dilations: Option<&'a [i64]>,
}

pub(super) fn ints(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

pub(super) fn int(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

pub(super) fn float(name: &str, value: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::Float as i32,
        f: value,
        ..Default::default()
    }
}

/// The weights by name, as plain arrays, with errors naming the file.
struct Weights<'a> {
    tensors: &'a HashMap<String, Tensor>,
    path: &'a Path,
}

impl Weights<'_> {
    fn get(&self, name: &str) -> Result<Array, DiarizeError> {
        let t = self.tensors.get(name).ok_or(DiarizeError::ModelInvalid {
            path: self.path.to_path_buf(),
            tensor: name.to_string(),
            problem: "is missing",
        })?;
        let unreadable = |source| DiarizeError::ModelUnreadable {
            path: self.path.to_path_buf(),
            source,
        };
        let data = t
            .flatten_all()
            .and_then(|f| f.to_vec1::<f32>())
            .map_err(unreadable)?;
        Ok(Array {
            data,
            dims: t.dims().iter().map(|&d| d as i64).collect(),
        })
    }

    fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// `(scale, shift)` of an evaluation-mode batch norm with affine weights.
    fn bn_scale_shift(&self, prefix: &str) -> Result<(Vec<f32>, Vec<f32>), DiarizeError> {
        let gamma = self.get(&format!("{prefix}.weight"))?.data;
        let beta = self.get(&format!("{prefix}.bias"))?.data;
        let mean = self.get(&format!("{prefix}.running_mean"))?.data;
        let var = self.get(&format!("{prefix}.running_var"))?.data;
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + BN_EPS).sqrt())
            .collect();
        let shift = beta
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        Ok((scale, shift))
    }

    /// A bias-free convolution's weight followed by a batch norm, folded: (weight, bias).
    fn conv_bn(&self, conv: &str, bn: &str) -> Result<(Array, Array), DiarizeError> {
        let mut w = self.get(&format!("{conv}.weight"))?;
        let (scale, shift) = self.bn_scale_shift(bn)?;
        let per_out = w.data.len() / scale.len().max(1);
        for (chunk, s) in w.data.chunks_mut(per_out).zip(&scale) {
            chunk.iter_mut().for_each(|x| *x *= s);
        }
        let n = shift.len() as i64;
        Ok((
            w,
            Array {
                data: shift,
                dims: vec![n],
            },
        ))
    }
}

/// The ONNX model (serialised protobuf) of the CAM++ network in `tensors` (the installed
/// safetensors' tensors; `path` names it in errors).
pub(crate) fn campplus_onnx(
    tensors: &HashMap<String, Tensor>,
    path: &Path,
) -> Result<Vec<u8>, DiarizeError> {
    let w = Weights { tensors, path };
    let mut g = Graph::default();
    let x = g.op("Transpose", &["feats"], vec![ints("perm", &[0, 2, 1])]);
    let axis1 = g.vec_i64(&[1]);
    let x = g.op("Unsqueeze", &[&x, &axis1], vec![]);
    let x = conv_bn_2d(&mut g, &w, &x, "head.conv1", "head.bn1", 1, true)?;
    let x = g.relu(&x);
    let mut x = x;
    for (layer, stride) in [("layer1", 2), ("layer2", 2)] {
        for (i, stride) in [stride, 1].into_iter().enumerate() {
            x = res_block(&mut g, &w, &x, &format!("head.{layer}.{i}"), stride)?;
        }
    }
    let x = conv_bn_2d(&mut g, &w, &x, "head.conv2", "head.bn2", 2, true)?;
    let x = g.relu(&x);
    let shape = g.vec_i64(&[0, 320, -1]);
    let x = g.op("Reshape", &[&x, &shape], vec![]);
    let (tw, tb) = w.conv_bn("xvector.tdnn.linear", "xvector.tdnn.nonlinear.batchnorm")?;
    let geometry = ConvGeometry {
        strides: Some(&[2]),
        pads: Some(&[2, 2]),
        dilations: None,
    };
    let x = g.conv(&x, tw, Some(tb), geometry);
    let mut x = g.relu(&x);

    let pooling = SegmentPooling::new(&mut g, &x);
    for (b, (n_layers, dilation)) in BLOCKS.into_iter().enumerate() {
        for l in 0..n_layers {
            let p = format!("xvector.block{}.tdnnd{}", b + 1, l + 1);
            let y = cam_layer(&mut g, &w, &pooling, &x, &p, dilation)?;
            x = g.op("Concat", &[&x, &y], vec![int("axis", 1)]);
        }
        let t = format!("xvector.transit{}", b + 1);
        let h = batch_norm(&mut g, &w, &x, &format!("{t}.nonlinear.batchnorm"))?;
        let h = g.relu(&h);
        x = g.conv(
            &h,
            w.get(&format!("{t}.linear.weight"))?,
            None,
            ConvGeometry::default(),
        );
    }
    let x = batch_norm(&mut g, &w, &x, "xvector.out_nonlinear.batchnorm")?;
    let x = g.relu(&x);
    let stats = mean_and_std(&mut g, &x, &pooling.frames);
    dense(&mut g, &w, &stats)?;
    // `(B, T, 80)` in, `(B, 192)` out; batch and length symbolic.
    Ok(model(
        g,
        "campplus",
        ("feats", &[Dim::Named("B"), Dim::Named("T"), Dim::Fixed(80)]),
        ("embedding", &[Dim::Named("B"), Dim::Fixed(192)]),
    ))
}

/// A 2-d convolution (3×3, padding 1, or the 1×1 shortcut, padding 0) with its batch norm
/// folded in; `stride` on the frequency axis.
fn conv_bn_2d(
    g: &mut Graph,
    w: &Weights,
    x: &str,
    conv: &str,
    bn: &str,
    stride: i64,
    padded: bool,
) -> Result<String, DiarizeError> {
    let (weight, bias) = w.conv_bn(conv, bn)?;
    let pad = i64::from(padded);
    let geometry = ConvGeometry {
        strides: Some(&[stride, 1]),
        pads: Some(&[pad, pad, pad, pad]),
        dilations: None,
    };
    Ok(g.conv(x, weight, Some(bias), geometry))
}

fn res_block(
    g: &mut Graph,
    w: &Weights,
    x: &str,
    p: &str,
    stride: i64,
) -> Result<String, DiarizeError> {
    let o = conv_bn_2d(
        g,
        w,
        x,
        &format!("{p}.conv1"),
        &format!("{p}.bn1"),
        stride,
        true,
    )?;
    let o = g.relu(&o);
    let o = conv_bn_2d(
        g,
        w,
        &o,
        &format!("{p}.conv2"),
        &format!("{p}.bn2"),
        1,
        true,
    )?;
    let shortcut = if w.has(&format!("{p}.shortcut.0.weight")) {
        let (c, b) = (format!("{p}.shortcut.0"), format!("{p}.shortcut.1"));
        conv_bn_2d(g, w, x, &c, &b, stride, false)?
    } else {
        x.to_string()
    };
    let sum = g.op("Add", &[&o, &shortcut], vec![]);
    Ok(g.relu(&sum))
}

fn batch_norm(g: &mut Graph, w: &Weights, x: &str, p: &str) -> Result<String, DiarizeError> {
    let mut inputs = vec![x.to_string()];
    for part in ["weight", "bias", "running_mean", "running_var"] {
        inputs.push(g.const_f32(w.get(&format!("{p}.{part}"))?));
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    Ok(g.op(
        "BatchNormalization",
        &inputs,
        vec![float("epsilon", BN_EPS)],
    ))
}

/// Values shared by every CAM layer's segment pooling: the number of frames `T` after the TDNN
/// (constant through the blocks), the padding up to whole 100-frame segments, and each segment's
/// frame count.
struct SegmentPooling {
    /// `T`, a scalar int64.
    frames: String,
    /// Pads of `Pad` for `(B, C, T)`: `T` padded at its end.
    pads: String,
    /// Frames per segment as float `(1, 1, segments, 1)` (the last may be shorter).
    counts: String,
    /// `T` as a 1-element vector (the end of the final `Slice`).
    frames_vec: String,
}

impl SegmentPooling {
    fn new(g: &mut Graph, x: &str) -> Self {
        let shape = g.op("Shape", &[x], vec![]);
        let two = g.scalar_i64(2);
        let frames = g.op("Gather", &[&shape, &two], vec![int("axis", 0)]);
        let (minus_one, seg) = (g.scalar_i64(SEGMENT - 1), g.scalar_i64(SEGMENT));
        let rounded = g.op("Add", &[&frames, &minus_one], vec![]);
        let segments = g.op("Div", &[&rounded, &seg], vec![]);
        let padded = g.op("Mul", &[&segments, &seg], vec![]);
        let pad_len = g.op("Sub", &[&padded, &frames], vec![]);
        let zeros = g.vec_i64(&[0, 0, 0, 0, 0]);
        let axis0 = g.vec_i64(&[0]);
        let pad_len = g.op("Unsqueeze", &[&pad_len, &axis0], vec![]);
        let pads = g.op("Concat", &[&zeros, &pad_len], vec![int("axis", 0)]);
        let (zero, one) = (g.scalar_i64(0), g.scalar_i64(1));
        let index = g.op("Range", &[&zero, &segments, &one], vec![]);
        let starts = g.op("Mul", &[&index, &seg], vec![]);
        let left = g.op("Sub", &[&frames, &starts], vec![]);
        let counts = g.op("Min", &[&left, &seg], vec![]);
        let counts = g.op(
            "Cast",
            &[&counts],
            vec![int("to", pb::tensor_proto::DataType::Float as i64)],
        );
        let shape = g.vec_i64(&[1, 1, -1, 1]);
        let counts = g.op("Reshape", &[&counts, &shape], vec![]);
        let frames_vec = g.op("Unsqueeze", &[&frames, &axis0], vec![]);
        SegmentPooling {
            frames,
            pads,
            counts,
            frames_vec,
        }
    }

    /// Each frame's segment mean of `h` `(B, C, T)`, spread back over the segment's frames.
    fn apply(&self, g: &mut Graph, h: &str) -> String {
        let padded = g.op("Pad", &[h, &self.pads], vec![]);
        let shape = g.vec_i64(&[0, 0, -1, SEGMENT]);
        let r = g.op("Reshape", &[&padded, &shape], vec![]);
        let axis3 = g.vec_i64(&[3]);
        let sum = g.op("ReduceSum", &[&r, &axis3], vec![int("keepdims", 1)]);
        let mean = g.op("Div", &[&sum, &self.counts], vec![]);
        let wide = g.vec_i64(&[1, 1, 1, SEGMENT]);
        let spread = g.op("Expand", &[&mean, &wide], vec![]);
        let flat = g.vec_i64(&[0, 0, -1]);
        let spread = g.op("Reshape", &[&spread, &flat], vec![]);
        let (start, axis2) = (g.vec_i64(&[0]), g.vec_i64(&[2]));
        g.op(
            "Slice",
            &[&spread, &start, &self.frames_vec, &axis2],
            vec![],
        )
    }
}

fn cam_layer(
    g: &mut Graph,
    w: &Weights,
    pooling: &SegmentPooling,
    x: &str,
    p: &str,
    dilation: i64,
) -> Result<String, DiarizeError> {
    let h = batch_norm(g, w, x, &format!("{p}.nonlinear1.batchnorm"))?;
    let h = g.relu(&h);
    let (lw, lb) = w.conv_bn(
        &format!("{p}.linear1"),
        &format!("{p}.nonlinear2.batchnorm"),
    )?;
    let h = g.conv(&h, lw, Some(lb), ConvGeometry::default());
    let h = g.relu(&h);
    let c = format!("{p}.cam_layer");
    let local = g.conv(
        &h,
        w.get(&format!("{c}.linear_local.weight"))?,
        None,
        ConvGeometry {
            strides: Some(&[1]),
            pads: Some(&[dilation, dilation]),
            dilations: Some(&[dilation]),
        },
    );
    let mean = g.op(
        "ReduceMean",
        &[&h],
        vec![ints("axes", &[2]), int("keepdims", 1)],
    );
    let segments = pooling.apply(g, &h);
    let context = g.op("Add", &[&mean, &segments], vec![]);
    let gate = g.conv(
        &context,
        w.get(&format!("{c}.linear1.weight"))?,
        Some(w.get(&format!("{c}.linear1.bias"))?),
        ConvGeometry::default(),
    );
    let gate = g.relu(&gate);
    let gate = g.conv(
        &gate,
        w.get(&format!("{c}.linear2.weight"))?,
        Some(w.get(&format!("{c}.linear2.bias"))?),
        ConvGeometry::default(),
    );
    let gate = g.op("Sigmoid", &[&gate], vec![]);
    Ok(g.op("Mul", &[&local, &gate], vec![]))
}

/// Mean and unbiased standard deviation over time, concatenated: `(B, C, T)` → `(B, 2C)`.
fn mean_and_std(g: &mut Graph, x: &str, frames: &str) -> String {
    let mean = g.op(
        "ReduceMean",
        &[x],
        vec![ints("axes", &[2]), int("keepdims", 1)],
    );
    let centred = g.op("Sub", &[x, &mean], vec![]);
    let squares = g.op("Mul", &[&centred, &centred], vec![]);
    let axis2 = g.vec_i64(&[2]);
    let sum = g.op("ReduceSum", &[&squares, &axis2], vec![int("keepdims", 0)]);
    // One frame has no spread; dividing by 1 instead of 0 gives 0, not NaN (as candle's path).
    let two = g.scalar_i64(2);
    let at_least_two = g.op("Max", &[frames, &two], vec![]);
    let one = g.scalar_i64(1);
    let denominator = g.op("Sub", &[&at_least_two, &one], vec![]);
    let denominator = g.op(
        "Cast",
        &[&denominator],
        vec![int("to", pb::tensor_proto::DataType::Float as i64)],
    );
    let var = g.op("Div", &[&sum, &denominator], vec![]);
    let std = g.op("Sqrt", &[&var], vec![]);
    let mean = g.op("Squeeze", &[&mean, &axis2], vec![]);
    g.op("Concat", &[&mean, &std], vec![int("axis", 1)])
}

/// The final linear layer with its (non-affine) batch norm folded in, writing `embedding`.
fn dense(g: &mut Graph, w: &Weights, stats: &str) -> Result<(), DiarizeError> {
    let mut weight = w.get("xvector.dense.linear.weight")?;
    let p = "xvector.dense.nonlinear.batchnorm";
    let mean = w.get(&format!("{p}.running_mean"))?.data;
    let var = w.get(&format!("{p}.running_var"))?.data;
    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + BN_EPS).sqrt()).collect();
    let per_row = weight.data.len() / inv_std.len().max(1);
    for (row, s) in weight.data.chunks_mut(per_row).zip(&inv_std) {
        row.iter_mut().for_each(|x| *x *= s);
    }
    weight.dims.truncate(2);
    let bias: Vec<f32> = mean.iter().zip(&inv_std).map(|(m, s)| -m * s).collect();
    let n = bias.len() as i64;
    let weight = g.const_f32(weight);
    let bias = g.const_f32(Array {
        data: bias,
        dims: vec![n],
    });
    g.op_into(
        "Gemm",
        &[stats, &weight, &bias],
        vec![int("transB", 1)],
        "embedding",
    );
    Ok(())
}

/// A float tensor's dimension: fixed or named (symbolic).
pub(super) enum Dim {
    Fixed(i64),
    Named(&'static str),
}

fn value_info(name: &str, dims: &[Dim]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::dimension::Value;
    let dim = dims
        .iter()
        .map(|d| pb::tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(n) => Value::DimValue(*n),
                Dim::Named(s) => Value::DimParam(s.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The serialised model of graph `g` (opset 17, IR 8) with one float input and one float output.
pub(super) fn model(
    g: Graph,
    name: &str,
    (input, input_dims): (&str, &[Dim]),
    (output, output_dims): (&str, &[Dim]),
) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "qualscribe".into(),
        graph: Some(pb::GraphProto {
            node: g.nodes,
            name: name.into(),
            initializer: g.initializers,
            input: vec![value_info(input, input_dims)],
            output: vec![value_info(output, output_dims)],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}
