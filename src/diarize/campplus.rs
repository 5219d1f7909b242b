//! The CAM++ speaker network (3D-Speaker's `CAMPPlus`, the `campplus_cn_en_common` weights that
//! `qualscribe models fetch --model speaker` installs), evaluation mode, with candle.
//!
//! ```text
//! fbank (B, T, 80), mean-normalised per window
//!  ─ FCM head: conv 3×3 + 2 residual stages (frequency stride 2) + conv ─▶ (B, 320, T)
//!  ─ TDNN (k 5, time stride 2)                                          ─▶ (B, 128, T/2)
//!  ─ 3 dense blocks of CAM layers (12, 24, 16 layers; growth 32; dilation 1, 2, 2),
//!    each followed by a transition halving the channels                ─▶ (B, 512, T/2)
//!  ─ mean + standard deviation over time, linear, batch norm           ─▶ (B, 192)
//! ```
//!
//! A port of the numpy reference `../shared/prototypes/speaker-campplus/campp_np.py`, checked
//! against it on a real window in tests/campplus.rs. Batch norms that follow a convolution are
//! folded into it at load time; the others are applied as a per-channel scale and shift.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Tensor};

use super::DiarizeError;

/// Embedding width.
pub const EMBEDDING_DIM: usize = 192;
/// Channels of the head's convolutions.
const HEAD_CHANNELS: usize = 32;
/// Frames per segment of the CAM layers' segment pooling.
const SEGMENT: usize = 100;
/// Batch norm epsilon (PyTorch's default).
const BN_EPS: f64 = 1e-5;
/// (layers, dilation) of the three dense blocks.
const BLOCKS: [(usize, usize); 3] = [(12, 1), (24, 2), (16, 2)];

/// A convolution (any rank), with its bias if any.
struct Conv {
    weight: Tensor,
    bias: Option<Tensor>,
}

/// An evaluation-mode batch norm as `x · scale + shift` per channel.
struct Affine {
    scale: Tensor,
    shift: Tensor,
}

/// One residual block of the head.
struct ResBlock {
    conv1: Conv,
    conv2: Conv,
    shortcut: Option<Conv>,
    /// Frequency stride of `conv1` and the shortcut (1 or 2).
    stride: usize,
}

/// One CAM layer of a dense block.
struct CamDenseLayer {
    bn1: Affine,
    /// 1×1 bottleneck with the second batch norm folded in.
    linear1: Conv,
    local: Conv,
    context1: Conv,
    context2: Conv,
    dilation: usize,
}

struct DenseBlock {
    layers: Vec<CamDenseLayer>,
    transit_bn: Affine,
    transit: Conv,
}

/// The loaded network (`Send + Sync`).
pub(crate) struct CamPlus {
    head_conv1: Conv,
    head_blocks: Vec<ResBlock>,
    head_conv2: Conv,
    tdnn: Conv,
    blocks: Vec<DenseBlock>,
    out_bn: Affine,
    /// `(2·512, 192)`, transposed for `stats · W`.
    dense_t: Tensor,
    dense_bn: Affine,
}

/// The tensors of the safetensors file, by name, with errors that name the file.
struct Weights<'a> {
    tensors: HashMap<String, Tensor>,
    path: &'a Path,
}

impl Weights<'_> {
    fn get(&self, name: &str) -> Result<Tensor, DiarizeError> {
        match self.tensors.get(name) {
            Some(t) if t.dtype() == DType::F32 => Ok(t.clone()),
            Some(_) => Err(invalid(self.path, name, "is not float32")),
            None => Err(invalid(self.path, name, "is missing")),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    fn affine(&self, prefix: &str, with_weights: bool) -> Result<Affine, DiarizeError> {
        let mean = self.get(&format!("{prefix}.running_mean"))?;
        let var = self.get(&format!("{prefix}.running_var"))?;
        let prepare = |source| self.unreadable(source);
        let inv_std = (var + BN_EPS)
            .and_then(|v| v.sqrt())
            .and_then(|v| v.recip())
            .map_err(prepare)?;
        let (scale, shift) = if with_weights {
            let gamma = self.get(&format!("{prefix}.weight"))?;
            let beta = self.get(&format!("{prefix}.bias"))?;
            let scale = (gamma * inv_std).map_err(prepare)?;
            let shift = (beta - (&mean * &scale).map_err(prepare)?).map_err(prepare)?;
            (scale, shift)
        } else {
            let shift = (mean * &inv_std).and_then(|m| m.neg()).map_err(prepare)?;
            (inv_std, shift)
        };
        Ok(Affine { scale, shift })
    }

    /// A bias-free convolution followed by a batch norm, folded into one convolution.
    fn conv_bn(&self, conv: &str, bn: &str) -> Result<Conv, DiarizeError> {
        let w = self.get(&format!("{conv}.weight"))?;
        let Affine { scale, shift } = self.affine(bn, true)?;
        let mut shape = vec![1usize; w.rank()];
        shape[0] = w.dim(0).map_err(|s| self.unreadable(s))?;
        let weight = scale
            .reshape(shape)
            .and_then(|s| w.broadcast_mul(&s))
            .map_err(|s| self.unreadable(s))?;
        Ok(Conv {
            weight,
            bias: Some(shift),
        })
    }

    fn conv(&self, name: &str, with_bias: bool) -> Result<Conv, DiarizeError> {
        Ok(Conv {
            weight: self.get(&format!("{name}.weight"))?,
            bias: if with_bias {
                Some(self.get(&format!("{name}.bias"))?)
            } else {
                None
            },
        })
    }

    fn expect_shape(&self, name: &str, shape: &[usize]) -> Result<(), DiarizeError> {
        if self.get(name)?.dims() == shape {
            Ok(())
        } else {
            Err(invalid(self.path, name, "has the wrong shape"))
        }
    }

    fn unreadable(&self, source: candle_core::Error) -> DiarizeError {
        DiarizeError::ModelUnreadable {
            path: self.path.to_path_buf(),
            source,
        }
    }
}

fn invalid(path: &Path, tensor: &str, problem: &'static str) -> DiarizeError {
    DiarizeError::ModelInvalid {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        problem,
    }
}

impl CamPlus {
    /// Builds the network from the installed safetensors' tensors.
    pub(crate) fn new(tensors: HashMap<String, Tensor>, path: &Path) -> Result<Self, DiarizeError> {
        let w = Weights { tensors, path };
        w.expect_shape("head.conv1.weight", &[HEAD_CHANNELS, 1, 3, 3])?;
        w.expect_shape("xvector.dense.linear.weight", &[EMBEDDING_DIM, 2 * 512, 1])?;
        let mut head_blocks = Vec::new();
        for (layer, stride) in [("layer1", 2), ("layer2", 2)] {
            for (i, stride) in [stride, 1].into_iter().enumerate() {
                let p = format!("head.{layer}.{i}");
                let shortcut = if w.has(&format!("{p}.shortcut.0.weight")) {
                    Some(w.conv_bn(&format!("{p}.shortcut.0"), &format!("{p}.shortcut.1"))?)
                } else {
                    None
                };
                head_blocks.push(ResBlock {
                    conv1: w.conv_bn(&format!("{p}.conv1"), &format!("{p}.bn1"))?,
                    conv2: w.conv_bn(&format!("{p}.conv2"), &format!("{p}.bn2"))?,
                    shortcut,
                    stride,
                });
            }
        }
        let mut blocks = Vec::new();
        for (b, (n_layers, dilation)) in BLOCKS.into_iter().enumerate() {
            let mut layers = Vec::with_capacity(n_layers);
            for l in 0..n_layers {
                let p = format!("xvector.block{}.tdnnd{}", b + 1, l + 1);
                layers.push(CamDenseLayer {
                    bn1: w.affine(&format!("{p}.nonlinear1.batchnorm"), true)?,
                    linear1: w.conv_bn(
                        &format!("{p}.linear1"),
                        &format!("{p}.nonlinear2.batchnorm"),
                    )?,
                    local: w.conv(&format!("{p}.cam_layer.linear_local"), false)?,
                    context1: w.conv(&format!("{p}.cam_layer.linear1"), true)?,
                    context2: w.conv(&format!("{p}.cam_layer.linear2"), true)?,
                    dilation,
                });
            }
            let t = format!("xvector.transit{}", b + 1);
            blocks.push(DenseBlock {
                layers,
                transit_bn: w.affine(&format!("{t}.nonlinear.batchnorm"), true)?,
                transit: w.conv(&format!("{t}.linear"), false)?,
            });
        }
        let dense_t = w
            .get("xvector.dense.linear.weight")?
            .squeeze(2)
            .and_then(|t| t.t())
            .and_then(|t| t.contiguous())
            .map_err(|s| w.unreadable(s))?;
        Ok(CamPlus {
            head_conv1: w.conv_bn("head.conv1", "head.bn1")?,
            head_blocks,
            head_conv2: w.conv_bn("head.conv2", "head.bn2")?,
            tdnn: w.conv_bn("xvector.tdnn.linear", "xvector.tdnn.nonlinear.batchnorm")?,
            blocks,
            out_bn: w.affine("xvector.out_nonlinear.batchnorm", true)?,
            dense_t,
            dense_bn: w.affine("xvector.dense.nonlinear.batchnorm", false)?,
        })
    }

    /// Embeddings (not normalised) of a batch of equally long fbank sequences, `(B, T, 80)`,
    /// each already mean-normalised over its frames. Returns `(B, 192)`.
    pub(crate) fn forward(&self, feats: &Tensor) -> candle_core::Result<Tensor> {
        let x = feats.transpose(1, 2)?.unsqueeze(1)?.contiguous()?; // (B, 1, 80, T)
        let x = conv3x3(&x, &self.head_conv1, 1)?.relu()?;
        let mut x = x;
        for block in &self.head_blocks {
            x = res_block(&x, block)?;
        }
        let x = conv3x3(&x, &self.head_conv2, 2)?.relu()?;
        let (b, c, f, t) = x.dims4()?;
        let x = x.reshape((b, c * f, t))?;
        let mut x = conv1d(&x, &self.tdnn, 2, 2, 1)?.relu()?;
        for block in &self.blocks {
            for layer in &block.layers {
                let y = cam_dense_layer(&x, layer)?;
                x = Tensor::cat(&[&x, &y], 1)?;
            }
            let h = apply(&x, &block.transit_bn)?.relu()?;
            x = conv1d(&h, &block.transit, 0, 1, 1)?;
        }
        let x = apply(&x, &self.out_bn)?.relu()?;
        let stats = mean_and_std(&x)?;
        let e = stats.matmul(&self.dense_t)?;
        apply(&e, &self.dense_bn)
    }
}

/// `x · scale + shift` with the per-channel vectors on dimension 1.
fn apply(x: &Tensor, a: &Affine) -> candle_core::Result<Tensor> {
    let mut shape = vec![1usize; x.rank()];
    shape[1] = a.scale.dim(0)?;
    x.broadcast_mul(&a.scale.reshape(shape.clone())?)?
        .broadcast_add(&a.shift.reshape(shape)?)
}

fn add_bias(y: Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match bias {
        None => Ok(y),
        Some(b) => {
            let mut shape = vec![1usize; y.rank()];
            shape[1] = b.dim(0)?;
            y.broadcast_add(&b.reshape(shape)?)
        }
    }
}

/// A 1×1 convolution of `(B, C, …)` (a plain convolution or its rank-2 form).
fn conv2d_1x1(x: &Tensor, conv: &Conv) -> candle_core::Result<Tensor> {
    add_bias(x.conv2d(&conv.weight, 0, 1, 1, 1)?, conv.bias.as_ref())
}

/// A 3×3 convolution (padding 1) of `(B, C, F, T)` with frequency stride `stride` and time
/// stride 1, as one matrix product per window over the window's unfolded input (im2col).
/// candle's `conv2d` has one stride for both axes, and its tiled unfolding gathers element by
/// element; here each unfolded row is a shifted copy of an input row, and a stride-2 layer
/// computes only the rows it keeps.
fn conv3x3(x: &Tensor, conv: &Conv, stride: usize) -> candle_core::Result<Tensor> {
    let (b, c, f, t) = x.dims4()?;
    let out_channels = conv.weight.dim(0)?;
    let f_out = f.saturating_sub(1) / stride + 1;
    let weight = conv.weight.reshape((out_channels, c * 9))?;
    let input = x.flatten_all()?.to_vec1::<f32>()?;
    let mut cols = vec![0f32; c * 9 * f_out * t];
    let mut outs = Vec::with_capacity(b);
    for image in input.chunks_exact(c * f * t) {
        unfold3x3(image, (c, f, t), stride, &mut cols);
        let cols = Tensor::from_slice(&cols, (c * 9, f_out * t), x.device())?;
        outs.push(weight.matmul(&cols)?);
    }
    let y = Tensor::stack(&outs, 0)?.reshape((b, out_channels, f_out, t))?;
    add_bias(y, conv.bias.as_ref())
}

/// The im2col matrix of one `(C, F, T)` image for a 3×3 kernel, padding 1, frequency stride
/// `stride`: row `(c·3 + i)·3 + j` holds, for each output position `(f, t)`, the input at
/// `(c, f·stride + i − 1, t + j − 1)`, zero outside the image.
fn unfold3x3(image: &[f32], (c, f, t): (usize, usize, usize), stride: usize, cols: &mut [f32]) {
    let f_out = f.saturating_sub(1) / stride + 1;
    let n = f_out * t;
    if t == 0 {
        return;
    }
    for (ch, plane) in image.chunks_exact(f * t).enumerate().take(c) {
        for i in 0..3 {
            for j in 0..3 {
                let row = &mut cols[((ch * 3 + i) * 3 + j) * n..][..n];
                for (fo, dst) in row.chunks_exact_mut(t).enumerate() {
                    let source_row = (fo * stride + i).checked_sub(1).filter(|&r| r < f);
                    let Some(r) = source_row else {
                        dst.fill(0.0);
                        continue;
                    };
                    let src = &plane[r * t..(r + 1) * t];
                    match j {
                        0 => {
                            dst[0] = 0.0;
                            dst[1..].copy_from_slice(&src[..t - 1]);
                        }
                        1 => dst.copy_from_slice(src),
                        _ => {
                            dst[..t - 1].copy_from_slice(&src[1..]);
                            dst[t - 1] = 0.0;
                        }
                    }
                }
            }
        }
    }
}

fn conv1d(
    x: &Tensor,
    conv: &Conv,
    padding: usize,
    stride: usize,
    dilation: usize,
) -> candle_core::Result<Tensor> {
    add_bias(
        x.conv1d(&conv.weight, padding, stride, dilation, 1)?,
        conv.bias.as_ref(),
    )
}

/// Every second row of the frequency axis (dimension 2) of `(B, C, F, T)`: the input rows a
/// 1×1 convolution with stride (2, 1) reads.
fn frequency_stride(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, f, t) = x.dims4()?;
    if f % 2 != 0 {
        candle_core::bail!("frequency axis of odd length {f}");
    }
    x.reshape((b, c, f / 2, 2, t))?
        .narrow(3, 0, 1)?
        .reshape((b, c, f / 2, t))
}

fn res_block(x: &Tensor, block: &ResBlock) -> candle_core::Result<Tensor> {
    let out = conv3x3(x, &block.conv1, block.stride)?;
    let out = conv3x3(&out.relu()?, &block.conv2, 1)?;
    let shortcut = match &block.shortcut {
        Some(conv) => {
            let input = if block.stride == 2 {
                frequency_stride(x)?
            } else {
                x.clone()
            };
            conv2d_1x1(&input, conv)?
        }
        None => x.clone(),
    };
    (out + shortcut)?.relu()
}

fn cam_dense_layer(x: &Tensor, layer: &CamDenseLayer) -> candle_core::Result<Tensor> {
    let h = apply(x, &layer.bn1)?.relu()?;
    let h = conv1d(&h, &layer.linear1, 0, 1, 1)?.relu()?;
    let local = conv1d(&h, &layer.local, layer.dilation, 1, layer.dilation)?;
    // The context is constant over each 100-frame segment, so the gate is computed once per
    // segment and then spread over the segment's frames.
    let (means, lengths) = segment_means(&h)?;
    let context = h.mean_keepdim(2)?.broadcast_add(&means)?;
    let gate = conv1d(&context, &layer.context1, 0, 1, 1)?.relu()?;
    let gate = candle_nn::ops::sigmoid(&conv1d(&gate, &layer.context2, 0, 1, 1)?)?;
    local * spread_segments(&gate, &lengths)?
}

/// The mean of each 100-frame segment of `(B, C, T)` (the last one may be shorter), as
/// `(B, C, segments)`, with the segments' lengths.
fn segment_means(h: &Tensor) -> candle_core::Result<(Tensor, Vec<usize>)> {
    let t = h.dim(2)?;
    let mut means = Vec::with_capacity(t.div_ceil(SEGMENT));
    let mut lengths = Vec::with_capacity(t.div_ceil(SEGMENT));
    let mut start = 0;
    while start < t {
        let len = SEGMENT.min(t - start);
        means.push(h.narrow(2, start, len)?.mean_keepdim(2)?);
        lengths.push(len);
        start += len;
    }
    Ok((Tensor::cat(&means, 2)?, lengths))
}

/// `(B, C, segments)` → `(B, C, T)`: each segment's value repeated over its frames.
fn spread_segments(values: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
    let (b, c, _) = values.dims3()?;
    let parts = lengths
        .iter()
        .enumerate()
        .map(|(i, &len)| values.narrow(2, i, 1)?.broadcast_as((b, c, len)))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Tensor::cat(&parts, 2)
}

/// Mean and (unbiased) standard deviation over time, concatenated: `(B, C, T)` → `(B, 2C)`.
fn mean_and_std(x: &Tensor) -> candle_core::Result<Tensor> {
    let t = x.dim(D::Minus1)?;
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    // One frame has no spread; dividing by 1 instead of 0 gives 0, not NaN.
    let var = (centred.sqr()?.sum(D::Minus1)? / (t.max(2) - 1) as f64)?;
    Tensor::cat(&[mean.squeeze(D::Minus1)?, var.sqrt()?], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The unfolded 3×3 convolution against candle's own `conv2d` (thinned to every second
    /// row for stride 2), on a random input with a bias.
    #[test]
    fn unfolded_conv_equals_candle_conv2d() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 7), &dev)?;
        let conv = Conv {
            weight: Tensor::randn(0f32, 1.0, (4, 3, 3, 3), &dev)?,
            bias: Some(Tensor::randn(0f32, 1.0, 4, &dev)?),
        };
        let reference = add_bias(x.conv2d(&conv.weight, 1, 1, 1, 1)?, conv.bias.as_ref())?;
        for (stride, expected) in [(1, reference.clone()), (2, frequency_stride(&reference)?)] {
            let ours = conv3x3(&x, &conv, stride)?;
            assert_eq!(ours.dims(), expected.dims());
            let worst = (ours - expected)?
                .abs()?
                .flatten_all()?
                .max(0)?
                .to_scalar::<f32>()?;
            assert!(worst < 1e-4, "stride {stride}: {worst}");
        }
        Ok(())
    }
}
