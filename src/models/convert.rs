//! CTranslate2 Whisper → whisper.cpp ggml: maps CT2 variables to OpenAI/whisper.cpp tensor names,
//! splits fused attention projections, checks what whisper.cpp cannot represent, and assembles
//! the [`GgmlModel`] the writer streams out. All validation happens here, before a byte is
//! written, so writing can only fail on I/O.

use super::ct2::{Ct2Model, DType, Variable};
use super::error::ConvertError;
use super::ggml::{FloatData, GgmlModel, Hparams, Tensor};
use super::mel;
use super::vocab;

/// Builds the ggml model from a parsed CT2 model and its `vocabulary.txt`.
pub(crate) fn whisper_to_ggml<'a>(
    model: &Ct2Model<'a>,
    vocabulary: &str,
) -> Result<GgmlModel<'a>, ConvertError> {
    if model.spec != "WhisperSpec" {
        return Err(ConvertError::NotWhisper {
            spec: model.spec.clone(),
        });
    }
    // whisper.cpp implements pre-norm blocks with unscaled token embeddings only.
    require_flag(model, "decoder/pre_norm", 1)?;
    require_flag(model, "decoder/scale_embeddings", 0)?;

    let n_enc = count_layers(model, "encoder");
    let n_dec = count_layers(model, "decoder");
    let hparams = hparams(model, n_enc, n_dec)?;
    let tensors = TensorMap::new(model).build(n_enc, n_dec)?;
    let tokens = vocab::regular_tokens(vocabulary, hparams.n_vocab as usize)?;
    let mel_bins = mel::N_FFT / 2 + 1;
    let mel_filters = mel::mel_filters(mel::SAMPLE_RATE, mel::N_FFT, hparams.n_mels as usize);
    Ok(GgmlModel {
        hparams,
        mel_filters,
        mel_bins,
        tokens,
        tensors,
    })
}

fn require_flag(model: &Ct2Model<'_>, name: &str, expected: i64) -> Result<(), ConvertError> {
    let value = scalar(model, name)?;
    if value != expected {
        return Err(ConvertError::UnsupportedFlag {
            variable: name.into(),
            value,
            expected,
        });
    }
    Ok(())
}

fn scalar(model: &Ct2Model<'_>, name: &str) -> Result<i64, ConvertError> {
    let var = model.get(name)?;
    var.first_as_i64().ok_or_else(|| ConvertError::BadShape {
        variable: name.into(),
        shape: var.shape.clone(),
        expected: "a scalar",
    })
}

/// Number of `<stack>/layer_<n>/` blocks (`<stack>/layer_norm` is not a block).
fn count_layers(model: &Ct2Model<'_>, stack: &str) -> usize {
    let prefix = format!("{stack}/layer_");
    model
        .names()
        .filter_map(|n| {
            n.strip_prefix(&prefix)?
                .split('/')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}

/// The 2-D shape of a variable, or a clear error.
fn dims2(var: &Variable<'_>) -> Result<(usize, usize), ConvertError> {
    match var.shape[..] {
        [a, b] => Ok((a, b)),
        _ => Err(ConvertError::BadShape {
            variable: var.name.clone(),
            shape: var.shape.clone(),
            expected: "2 dimensions",
        }),
    }
}

fn to_i32(name: &str, v: usize) -> Result<i32, ConvertError> {
    i32::try_from(v).map_err(|_| ConvertError::BadShape {
        variable: name.into(),
        shape: vec![v],
        expected: "dimensions that fit an i32",
    })
}

fn hparams(model: &Ct2Model<'_>, n_enc: usize, n_dec: usize) -> Result<Hparams, ConvertError> {
    let (n_vocab, n_text_state) = dims2(model.get("decoder/embeddings/weight")?)?;
    let (n_audio_ctx, n_audio_state) = dims2(model.get("encoder/position_encodings/encodings")?)?;
    let (n_text_ctx, _) = dims2(model.get("decoder/position_encodings/encodings")?)?;
    let conv1 = model.get("encoder/conv1/weight")?;
    let n_mels = match conv1.shape[..] {
        [_, n_mels, _] => n_mels,
        _ => {
            return Err(ConvertError::BadShape {
                variable: conv1.name.clone(),
                shape: conv1.shape.clone(),
                expected: "[n_state, n_mels, kernel]",
            });
        }
    };
    let i = |name: &str, v: usize| to_i32(name, v);
    let head = |name: &str| scalar(model, name).and_then(|h| to_i32(name, h.max(0) as usize));
    Ok(Hparams {
        n_vocab: i("n_vocab", n_vocab)?,
        n_audio_ctx: i("n_audio_ctx", n_audio_ctx)?,
        n_audio_state: i("n_audio_state", n_audio_state)?,
        n_audio_head: head("encoder/num_heads")?,
        n_audio_layer: i("n_audio_layer", n_enc)?,
        n_text_ctx: i("n_text_ctx", n_text_ctx)?,
        n_text_state: i("n_text_state", n_text_state)?,
        n_text_head: head("decoder/num_heads")?,
        n_text_layer: i("n_text_layer", n_dec)?,
        n_mels: i("n_mels", n_mels)?,
    })
}

/// Collects output tensors in whisper.cpp's order while checking each source variable.
struct TensorMap<'m, 'a> {
    model: &'m Ct2Model<'a>,
    out: Vec<Tensor<'a>>,
}

impl<'m, 'a> TensorMap<'m, 'a> {
    fn new(model: &'m Ct2Model<'a>) -> Self {
        TensorMap {
            model,
            out: Vec::new(),
        }
    }

    fn build(mut self, n_enc: usize, n_dec: usize) -> Result<Vec<Tensor<'a>>, ConvertError> {
        self.copy(
            "encoder/position_encodings/encodings",
            "encoder.positional_embedding",
        )?;
        for conv in ["conv1", "conv2"] {
            // CT2 and torch share the [out, in, kernel] layout.
            self.copy(
                &format!("encoder/{conv}/weight"),
                &format!("encoder.{conv}.weight"),
            )?;
            self.column(
                &format!("encoder/{conv}/bias"),
                &format!("encoder.{conv}.bias"),
            )?;
        }
        for i in 0..n_enc {
            let (p, q) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
            self.self_attention(&p, &q)?;
            self.feed_forward(&p, &q)?;
        }
        self.layer_norm("encoder/layer_norm", "encoder.ln_post")?;

        self.copy(
            "decoder/position_encodings/encodings",
            "decoder.positional_embedding",
        )?;
        self.copy(
            "decoder/embeddings/weight",
            "decoder.token_embedding.weight",
        )?;
        for i in 0..n_dec {
            let (p, q) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
            self.self_attention(&p, &q)?;
            self.layer_norm(
                &format!("{p}/attention/layer_norm"),
                &format!("{q}.cross_attn_ln"),
            )?;
            self.linear(
                &format!("{p}/attention/linear_0"),
                &format!("{q}.cross_attn.query"),
            )?;
            self.fused_kv(
                &format!("{p}/attention/linear_1"),
                &format!("{q}.cross_attn"),
            )?;
            self.linear(
                &format!("{p}/attention/linear_2"),
                &format!("{q}.cross_attn.out"),
            )?;
            self.feed_forward(&p, &q)?;
        }
        self.layer_norm("decoder/layer_norm", "decoder.ln")?;
        Ok(self.out)
    }

    /// A float variable, or an error if it is missing or not float.
    fn float(&self, name: &str) -> Result<&'m Variable<'a>, ConvertError> {
        let var = self.model.get(name)?;
        match var.dtype {
            DType::F32 | DType::F16 | DType::Bf16 => Ok(var),
            other => Err(ConvertError::NonFloatWeights {
                variable: name.into(),
                dtype: other.name(),
            }),
        }
    }

    fn push(&mut self, name: &str, shape: Vec<usize>, var: &Variable<'a>, rows: RowRange) {
        let row_len: usize = var.shape.iter().skip(1).product();
        let data = FloatData {
            dtype: var.dtype,
            bytes: var.data,
        }
        .slice(rows.start * row_len, rows.count * row_len);
        self.out.push(Tensor {
            name: name.into(),
            shape,
            data,
        });
    }

    fn copy(&mut self, ct2: &str, name: &str) -> Result<(), ConvertError> {
        let var = self.float(ct2)?;
        let rows = var.shape.first().copied().unwrap_or(1);
        self.push(
            name,
            var.shape.clone(),
            var,
            RowRange {
                start: 0,
                count: rows,
            },
        );
        Ok(())
    }

    /// A 1-D bias stored as an `[n, 1]` column, the shape whisper.cpp's conv code expects.
    fn column(&mut self, ct2: &str, name: &str) -> Result<(), ConvertError> {
        let var = self.float(ct2)?;
        let n = var.len();
        self.push(name, vec![n, 1], var, RowRange { start: 0, count: n });
        Ok(())
    }

    fn layer_norm(&mut self, ct2: &str, name: &str) -> Result<(), ConvertError> {
        self.copy(&format!("{ct2}/gamma"), &format!("{name}.weight"))?;
        self.copy(&format!("{ct2}/beta"), &format!("{name}.bias"))
    }

    fn linear(&mut self, ct2: &str, name: &str) -> Result<(), ConvertError> {
        self.copy(&format!("{ct2}/weight"), &format!("{name}.weight"))?;
        self.copy(&format!("{ct2}/bias"), &format!("{name}.bias"))
    }

    /// A block's self-attention: its layer norm, the fused q/k/v split in three, the output.
    /// Encoder and decoder blocks share the layout.
    fn self_attention(&mut self, p: &str, q: &str) -> Result<(), ConvertError> {
        self.layer_norm(
            &format!("{p}/self_attention/layer_norm"),
            &format!("{q}.attn_ln"),
        )?;
        self.fused_qkv(
            &format!("{p}/self_attention/linear_0"),
            &format!("{q}.attn"),
        )?;
        self.linear(
            &format!("{p}/self_attention/linear_1"),
            &format!("{q}.attn.out"),
        )
    }

    fn feed_forward(&mut self, p: &str, q: &str) -> Result<(), ConvertError> {
        self.layer_norm(&format!("{p}/ffn/layer_norm"), &format!("{q}.mlp_ln"))?;
        self.linear(&format!("{p}/ffn/linear_0"), &format!("{q}.mlp.0"))?;
        self.linear(&format!("{p}/ffn/linear_1"), &format!("{q}.mlp.2"))
    }

    /// Splits a fused projection's weight and bias into `parts` equal row blocks and checks that
    /// the key block (index 1 for `[q;k;v]`, 0 for `[k;v]`) has a zero bias.
    fn split(
        &self,
        ct2: &str,
        parts: usize,
        key_part: usize,
    ) -> Result<(&'m Variable<'a>, &'m Variable<'a>, usize), ConvertError> {
        let weight = self.float(&format!("{ct2}/weight"))?;
        let bias = self.float(&format!("{ct2}/bias"))?;
        let (rows, _) = dims2(weight)?;
        if rows % parts != 0 || bias.len() != rows {
            return Err(ConvertError::BadShape {
                variable: weight.name.clone(),
                shape: weight.shape.clone(),
                expected: "rows divisible into equal fused blocks, with a bias per row",
            });
        }
        let block = rows / parts;
        let key_bias = FloatData {
            dtype: bias.dtype,
            bytes: bias.data,
        }
        .slice(key_part * block, block);
        if !key_bias.all_zero() {
            return Err(ConvertError::NonZeroKeyBias {
                variable: bias.name.clone(),
            });
        }
        Ok((weight, bias, block))
    }

    /// Self-attention: `[q; k; v]` → query (+bias), key (no bias), value (+bias).
    fn fused_qkv(&mut self, ct2: &str, name: &str) -> Result<(), ConvertError> {
        let (w, b, n) = self.split(ct2, 3, 1)?;
        let cols = w.shape[1];
        self.push(
            &format!("{name}.query.weight"),
            vec![n, cols],
            w,
            RowRange { start: 0, count: n },
        );
        self.push(
            &format!("{name}.query.bias"),
            vec![n],
            b,
            RowRange { start: 0, count: n },
        );
        self.push(
            &format!("{name}.key.weight"),
            vec![n, cols],
            w,
            RowRange { start: n, count: n },
        );
        self.push(
            &format!("{name}.value.weight"),
            vec![n, cols],
            w,
            RowRange {
                start: 2 * n,
                count: n,
            },
        );
        self.push(
            &format!("{name}.value.bias"),
            vec![n],
            b,
            RowRange {
                start: 2 * n,
                count: n,
            },
        );
        Ok(())
    }

    /// Cross-attention: `[k; v]` → key (no bias), value (+bias).
    fn fused_kv(&mut self, ct2: &str, name: &str) -> Result<(), ConvertError> {
        let (w, b, n) = self.split(ct2, 2, 0)?;
        let cols = w.shape[1];
        self.push(
            &format!("{name}.key.weight"),
            vec![n, cols],
            w,
            RowRange { start: 0, count: n },
        );
        self.push(
            &format!("{name}.value.weight"),
            vec![n, cols],
            w,
            RowRange { start: n, count: n },
        );
        self.push(
            &format!("{name}.value.bias"),
            vec![n],
            b,
            RowRange { start: n, count: n },
        );
        Ok(())
    }
}

/// Rows `start..start+count` of a variable's outermost dimension.
#[derive(Debug, Clone, Copy)]
struct RowRange {
    start: usize,
    count: usize,
}

#[cfg(test)]
mod tests {
    use super::super::ct2::testing::{RawVar, write_ct2};
    use super::super::ggml::{self, TensorType, WeightFormat};
    use super::*;

    /// A Whisper-shaped CT2 model: state 32, 1 encoder and 1 decoder layer, 2 heads, 4 mels,
    /// vocabulary of `n_vocab`, all weights f16 except a few f32 ones to exercise both paths.
    struct Tiny {
        state: u32,
        n_vocab: u32,
        key_bias: f32,
        ffn_dtype_int8: bool,
    }

    impl Default for Tiny {
        fn default() -> Self {
            Tiny {
                state: 32,
                n_vocab: 51864,
                key_bias: 0.0,
                ffn_dtype_int8: false,
            }
        }
    }

    fn ramp(n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|i| ((i % 17) as f32 - 8.0) * scale).collect()
    }

    fn linear(v: &mut Vec<RawVar>, name: &str, rows: u32, cols: u32) {
        let n = (rows * cols) as usize;
        v.push(RawVar::f16(
            &format!("{name}/weight"),
            &[rows, cols],
            &ramp(n, 0.01),
        ));
        v.push(RawVar::f32(
            &format!("{name}/bias"),
            &[rows],
            &ramp(rows as usize, 0.1),
        ));
    }

    fn layer_norm(v: &mut Vec<RawVar>, name: &str, n: u32) {
        v.push(RawVar::f32(
            &format!("{name}/gamma"),
            &[n],
            &vec![1.0; n as usize],
        ));
        v.push(RawVar::f32(
            &format!("{name}/beta"),
            &[n],
            &vec![0.0; n as usize],
        ));
    }

    /// A fused projection whose rows are filled with their block index, so splits are visible.
    fn fused(v: &mut Vec<RawVar>, name: &str, blocks: u32, s: u32, key_block: u32, key_bias: f32) {
        let w: Vec<f32> = (0..blocks * s * s)
            .map(|i| (i / (s * s)) as f32 + 1.0)
            .collect();
        v.push(RawVar::f16(&format!("{name}/weight"), &[blocks * s, s], &w));
        let b: Vec<f32> = (0..blocks * s)
            .map(|i| {
                if i / s == key_block {
                    key_bias
                } else {
                    (i / s) as f32 + 1.0
                }
            })
            .collect();
        v.push(RawVar::f32(&format!("{name}/bias"), &[blocks * s], &b));
    }

    impl Tiny {
        fn build(&self) -> Vec<u8> {
            let s = self.state;
            let mut v = vec![
                RawVar::i8("decoder/pre_norm", &[], &[1]),
                RawVar::i8("decoder/scale_embeddings", &[], &[0]),
                RawVar::i8("encoder/num_heads", &[], &[2]),
                RawVar::i8("decoder/num_heads", &[], &[2]),
                RawVar::f32(
                    "encoder/position_encodings/encodings",
                    &[6, s],
                    &ramp(6 * s as usize, 0.5),
                ),
                RawVar::f32(
                    "decoder/position_encodings/encodings",
                    &[5, s],
                    &ramp(5 * s as usize, 0.5),
                ),
                RawVar::f16(
                    "decoder/embeddings/weight",
                    &[self.n_vocab, s],
                    &ramp((self.n_vocab * s) as usize, 0.01),
                ),
            ];
            for (conv, inputs) in [("conv1", 4), ("conv2", s)] {
                let n = (s * inputs * 3) as usize;
                v.push(RawVar::f16(
                    &format!("encoder/{conv}/weight"),
                    &[s, inputs, 3],
                    &ramp(n, 0.02),
                ));
                v.push(RawVar::f32(
                    &format!("encoder/{conv}/bias"),
                    &[s],
                    &ramp(s as usize, 0.1),
                ));
            }
            for stack in ["encoder", "decoder"] {
                let p = format!("{stack}/layer_0");
                layer_norm(&mut v, &format!("{p}/self_attention/layer_norm"), s);
                fused(
                    &mut v,
                    &format!("{p}/self_attention/linear_0"),
                    3,
                    s,
                    1,
                    self.key_bias,
                );
                linear(&mut v, &format!("{p}/self_attention/linear_1"), s, s);
                layer_norm(&mut v, &format!("{p}/ffn/layer_norm"), s);
                if self.ffn_dtype_int8 {
                    v.push(RawVar::i8(
                        &format!("{p}/ffn/linear_0/weight"),
                        &[4 * s, s],
                        &vec![1; (4 * s * s) as usize],
                    ));
                    v.push(RawVar::f32(
                        &format!("{p}/ffn/linear_0/bias"),
                        &[4 * s],
                        &ramp(4 * s as usize, 0.1),
                    ));
                } else {
                    linear(&mut v, &format!("{p}/ffn/linear_0"), 4 * s, s);
                }
                linear(&mut v, &format!("{p}/ffn/linear_1"), s, 4 * s);
                layer_norm(&mut v, &format!("{stack}/layer_norm"), s);
            }
            let p = "decoder/layer_0";
            layer_norm(&mut v, &format!("{p}/attention/layer_norm"), s);
            linear(&mut v, &format!("{p}/attention/linear_0"), s, s);
            fused(&mut v, &format!("{p}/attention/linear_1"), 2, s, 0, 0.0);
            linear(&mut v, &format!("{p}/attention/linear_2"), s, s);
            write_ct2(
                "WhisperSpec",
                &v,
                &[("decoder/projection/weight", "decoder/embeddings/weight")],
            )
        }

        fn vocabulary(&self) -> String {
            let eot = if self.n_vocab >= 51865 { 50257 } else { 50256 };
            let mut text: String = (0..self.n_vocab)
                .map(|i| {
                    if i == eot {
                        "<|endoftext|>\n".to_string()
                    } else {
                        format!("Ġt{i}\n")
                    }
                })
                .collect();
            text.pop();
            text
        }
    }

    fn tensor<'t, 'a>(m: &'t GgmlModel<'a>, name: &str) -> &'t Tensor<'a> {
        m.tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    }

    fn values(t: &Tensor<'_>) -> Vec<f32> {
        let mut out = Vec::new();
        t.data.decode_into(&mut out);
        out
    }

    #[test]
    fn maps_every_tensor_with_whisper_cpp_names_and_shapes() {
        let spec = Tiny::default();
        let bytes = spec.build();
        let ct2 = Ct2Model::parse(&bytes).unwrap();
        let m = whisper_to_ggml(&ct2, &spec.vocabulary()).unwrap();
        // encoder: pos + 2 convs×2 + 1 layer×15 + ln_post×2; decoder: pos + tok + 1 layer×24 + ln×2
        assert_eq!(m.tensors.len(), 1 + 4 + 15 + 2 + 2 + 24 + 2);
        assert_eq!(
            m.hparams,
            Hparams {
                n_vocab: 51864,
                n_audio_ctx: 6,
                n_audio_state: 32,
                n_audio_head: 2,
                n_audio_layer: 1,
                n_text_ctx: 5,
                n_text_state: 32,
                n_text_head: 2,
                n_text_layer: 1,
                n_mels: 4,
            }
        );
        assert_eq!(m.tokens.len(), 50256);
        assert_eq!(m.tokens[3], b" t3");
        assert_eq!(m.mel_filters.len(), 4 * 201);
        assert_eq!(tensor(&m, "encoder.conv1.weight").shape, [32, 4, 3]);
        assert_eq!(tensor(&m, "encoder.conv1.bias").shape, [32, 1]);
        assert_eq!(tensor(&m, "encoder.blocks.0.mlp.0.weight").shape, [128, 32]);
        assert_eq!(
            tensor(&m, "decoder.blocks.0.cross_attn.key.weight").shape,
            [32, 32]
        );
        assert!(
            m.tensors.iter().all(|t| !t.name.ends_with("key.bias")),
            "whisper.cpp has no key bias"
        );
        for t in &m.tensors {
            assert_eq!(
                t.data.len(),
                t.shape.iter().product::<usize>(),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn splits_fused_attention_by_rows() {
        let spec = Tiny::default();
        let bytes = spec.build();
        let ct2 = Ct2Model::parse(&bytes).unwrap();
        let m = whisper_to_ggml(&ct2, &spec.vocabulary()).unwrap();
        let all = |name: &str, v: f32| values(tensor(&m, name)).iter().all(|&x| x == v);
        assert!(all("encoder.blocks.0.attn.query.weight", 1.0));
        assert!(all("encoder.blocks.0.attn.key.weight", 2.0));
        assert!(all("encoder.blocks.0.attn.value.weight", 3.0));
        assert!(all("encoder.blocks.0.attn.value.bias", 3.0));
        assert!(all("decoder.blocks.0.cross_attn.key.weight", 1.0));
        assert!(all("decoder.blocks.0.cross_attn.value.weight", 2.0));
        assert!(all("decoder.blocks.0.cross_attn.value.bias", 2.0));
    }

    #[test]
    fn non_zero_key_bias_is_an_error() {
        let spec = Tiny {
            key_bias: 0.25,
            ..Tiny::default()
        };
        let bytes = spec.build();
        let ct2 = Ct2Model::parse(&bytes).unwrap();
        let e = whisper_to_ggml(&ct2, &spec.vocabulary()).unwrap_err();
        assert!(
            matches!(&e, ConvertError::NonZeroKeyBias { variable } if variable == "encoder/layer_0/self_attention/linear_0/bias"),
            "{e}"
        );
    }

    #[test]
    fn integer_weights_are_rejected_by_name() {
        let spec = Tiny {
            ffn_dtype_int8: true,
            ..Tiny::default()
        };
        let bytes = spec.build();
        let ct2 = Ct2Model::parse(&bytes).unwrap();
        let e = whisper_to_ggml(&ct2, &spec.vocabulary()).unwrap_err();
        assert!(
            e.to_string()
                .contains("encoder/layer_0/ffn/linear_0/weight` is int8"),
            "{e}"
        );
    }

    /// A little-endian reader over a written file, for checking it.
    struct Reader<'f> {
        file: &'f [u8],
        pos: usize,
    }

    impl<'f> Reader<'f> {
        fn i32(&mut self) -> i32 {
            let v = i32::from_le_bytes(self.file[self.pos..self.pos + 4].try_into().unwrap());
            self.pos += 4;
            v
        }

        fn bytes(&mut self, n: usize) -> &'f [u8] {
            self.pos += n;
            &self.file[self.pos - n..self.pos]
        }
    }

    /// Parses a written ggml file back: (name, dims innermost first, ttype, data bytes).
    fn read_tensors(
        file: &[u8],
        n_tokens_expected: usize,
    ) -> Vec<(String, Vec<usize>, i32, Vec<u8>)> {
        let mut r = Reader { file, pos: 0 };
        assert_eq!(r.i32() as u32, ggml::MAGIC);
        for _ in 0..11 {
            r.i32();
        }
        let (n_mel, n_fft) = (r.i32() as usize, r.i32() as usize);
        r.bytes(n_mel * n_fft * 4);
        let n_tokens = r.i32() as usize;
        assert_eq!(n_tokens, n_tokens_expected);
        for _ in 0..n_tokens {
            let len = r.i32() as usize;
            r.bytes(len);
        }
        let mut out = Vec::new();
        while r.pos < file.len() {
            let (n_dims, name_len, ttype) = (r.i32(), r.i32() as usize, r.i32());
            let dims: Vec<usize> = (0..n_dims).map(|_| r.i32() as usize).collect();
            let name = String::from_utf8(r.bytes(name_len).to_vec()).unwrap();
            let tt = match ttype {
                0 => TensorType::F32,
                1 => TensorType::F16,
                8 => TensorType::Q8_0,
                t => panic!("ttype {t}"),
            };
            let n = ggml::stored_bytes(dims.iter().product(), tt);
            out.push((name, dims, ttype, r.bytes(n).to_vec()));
        }
        out
    }

    #[test]
    fn writes_f16_and_f32_as_whisper_cpp_expects() {
        let spec = Tiny::default();
        let bytes = spec.build();
        let ct2 = Ct2Model::parse(&bytes).unwrap();
        let m = whisper_to_ggml(&ct2, &spec.vocabulary()).unwrap();
        let mut file = Vec::new();
        ggml::write_model(&mut file, &m, WeightFormat::F16).unwrap();
        let tensors = read_tensors(&file, 50256);
        assert_eq!(tensors.len(), m.tensors.len());
        let find = |n: &str| tensors.iter().find(|t| t.0 == n).unwrap();
        assert_eq!(
            find("encoder.conv1.weight").1,
            [3, 4, 32],
            "dims innermost first"
        );
        assert_eq!(find("encoder.conv1.weight").2, 1, "conv kernels f16");
        assert_eq!(find("encoder.conv1.bias").1, [1, 32]);
        assert_eq!(find("encoder.conv1.bias").2, 0, "conv bias f32");
        assert_eq!(
            find("encoder.positional_embedding").2,
            0,
            "positional embedding f32"
        );
        assert_eq!(find("encoder.blocks.0.attn_ln.weight").2, 0, "1-D f32");
        assert_eq!(find("encoder.blocks.0.attn.query.bias").2, 0);
        let key = find("encoder.blocks.0.attn.key.weight");
        assert_eq!((key.2, key.1.as_slice()), (1, &[32, 32][..]));
        let first = half::f16::from_le_bytes([key.3[0], key.3[1]]).to_f32();
        assert_eq!(first, 2.0);
        // f32 source stored as f32 is byte-identical
        let pos = find("decoder.positional_embedding");
        assert_eq!(
            pos.3,
            ct2.get("decoder/position_encodings/encodings")
                .unwrap()
                .data
        );
    }

    #[test]
    fn q8_0_quantises_only_eligible_2d_tensors() {
        let spec = Tiny {
            n_vocab: 51865,
            ..Tiny::default()
        };
        let bytes = spec.build();
        let ct2 = Ct2Model::parse(&bytes).unwrap();
        let m = whisper_to_ggml(&ct2, &spec.vocabulary()).unwrap();
        let mut file = Vec::new();
        ggml::write_model(&mut file, &m, WeightFormat::Q8_0).unwrap();
        let header = ggml::read_header(&mut file.as_slice()).unwrap();
        assert_eq!(header.ftype, 2007);
        let tensors = read_tensors(&file, 50257);
        let ttype = |n: &str| tensors.iter().find(|t| t.0 == n).unwrap().2;
        assert_eq!(ttype("decoder.token_embedding.weight"), 8);
        assert_eq!(ttype("encoder.blocks.0.mlp.2.weight"), 8);
        assert_eq!(ttype("encoder.conv2.weight"), 1, "3-D stays f16");
        assert_eq!(ttype("encoder.conv2.bias"), 0);
        assert_eq!(ttype("decoder.positional_embedding"), 0);
        assert_eq!(ttype("decoder.blocks.0.mlp.0.bias"), 0);
        let value = tensors
            .iter()
            .find(|t| t.0 == "encoder.blocks.0.attn.value.weight")
            .unwrap();
        assert!(
            ggml::dequantize_q8_0(&value.3)
                .iter()
                .all(|&x| (x - 3.0).abs() < 0.01)
        );
    }
}
