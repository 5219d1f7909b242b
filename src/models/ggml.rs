//! whisper.cpp's legacy ggml model format: the writer (f16/f32 tensors, optionally q8_0), the
//! q8_0 block quantiser, and a header reader for checking user-supplied files.
//!
//! Layout (little-endian i32 unless noted): magic `0x67676d6c`, 10 hparams, ftype, mel filters
//! (n_mel, n_fft, f32 data), n_tokens then (len, bytes) per token, then per tensor: n_dims,
//! name_len, ttype, dims innermost first, name bytes, data. The writer streams tensor data in
//! small chunks, so it never holds a second copy of the model.

use super::ct2::DType;
use std::io::{self, Read, Write};

/// "ggml" read as a little-endian u32.
pub(crate) const MAGIC: u32 = 0x6767_6d6c;
/// ggml's quantisation format version, folded into the header's ftype as `version * 1000`.
const GGML_QNT_VERSION: i32 = 2;
const GGML_QNT_VERSION_FACTOR: i32 = 1000;
/// `GGML_FTYPE_MOSTLY_F16` / `GGML_FTYPE_MOSTLY_Q8_0`.
const FTYPE_MOSTLY_F16: i32 = 1;
const FTYPE_MOSTLY_Q8_0: i32 = 7;
/// Values per q8_0 block.
pub(crate) const Q8_0_BLOCK: usize = 32;
/// Bytes per q8_0 block: an f16 scale then 32 signed bytes.
const Q8_0_BLOCK_BYTES: usize = 2 + Q8_0_BLOCK;
/// Elements converted per write; a multiple of the q8_0 block so blocks never straddle chunks.
const CHUNK: usize = 64 * Q8_0_BLOCK * 32;

/// Tensors whisper.cpp always keeps in f32 (and its quantiser never touches), besides 1-D ones.
const ALWAYS_F32: [&str; 4] = [
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
];

/// How the big weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightFormat {
    F16,
    Q8_0,
}

/// ggml tensor element types used here (values are ggml's `ggml_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TensorType {
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,
}

/// whisper.cpp's hyper-parameters, in header order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
}

impl Hparams {
    fn to_array(self) -> [i32; 10] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
        ]
    }

    fn from_array(a: [i32; 10]) -> Hparams {
        let [
            n_vocab,
            n_audio_ctx,
            n_audio_state,
            n_audio_head,
            n_audio_layer,
            n_text_ctx,
            n_text_state,
            n_text_head,
            n_text_layer,
            n_mels,
        ] = a;
        Hparams {
            n_vocab,
            n_audio_ctx,
            n_audio_state,
            n_audio_head,
            n_audio_layer,
            n_text_ctx,
            n_text_state,
            n_text_head,
            n_text_layer,
            n_mels,
        }
    }
}

/// Float data borrowed from the source model: raw little-endian bytes of one float dtype.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FloatData<'a> {
    pub dtype: DType,
    pub bytes: &'a [u8],
}

impl<'a> FloatData<'a> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.dtype.size()
    }

    /// Elements `start..start+count` (no copy).
    pub fn slice(&self, start: usize, count: usize) -> FloatData<'a> {
        let size = self.dtype.size();
        FloatData {
            dtype: self.dtype,
            bytes: &self.bytes[start * size..(start + count) * size],
        }
    }

    /// Appends the elements as f32 to `out`. The caller guarantees a float dtype.
    pub(crate) fn decode_into(&self, out: &mut Vec<f32>) {
        match self.dtype {
            DType::F32 => out.extend(
                self.bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            DType::F16 => out.extend(
                self.bytes
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            DType::Bf16 => out.extend(
                self.bytes
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            DType::I8 | DType::I16 | DType::I32 => {
                unreachable!("the converter rejects integer tensors before writing")
            }
        }
    }

    /// True if every element is +0 or -0.
    pub fn all_zero(&self) -> bool {
        let mut values = Vec::with_capacity(self.len());
        self.decode_into(&mut values);
        values.iter().all(|&v| v == 0.0)
    }
}

/// One tensor to write.
#[derive(Debug, Clone)]
pub(crate) struct Tensor<'a> {
    /// whisper.cpp (OpenAI) tensor name.
    pub name: String,
    /// Outermost dimension first (numpy order); written reversed.
    pub shape: Vec<usize>,
    pub data: FloatData<'a>,
}

/// Everything a ggml Whisper file holds.
#[derive(Debug)]
pub(crate) struct GgmlModel<'a> {
    pub hparams: Hparams,
    /// `n_mels × n_bins`, row-major.
    pub mel_filters: Vec<f32>,
    pub mel_bins: usize,
    /// Regular tokens as raw bytes.
    pub tokens: Vec<Vec<u8>>,
    pub tensors: Vec<Tensor<'a>>,
}

/// The element type a tensor is stored as: whisper.cpp's converter rule (1-D and the
/// [`ALWAYS_F32`] tensors in f32, everything else f16) plus its quantiser's rule (q8_0 for 2-D
/// tensors with whole blocks per row, except [`ALWAYS_F32`]).
pub(crate) fn storage_type(name: &str, shape: &[usize], format: WeightFormat) -> TensorType {
    if shape.len() < 2 || ALWAYS_F32.contains(&name) {
        return TensorType::F32;
    }
    let whole_blocks = shape.last().is_some_and(|row| row % Q8_0_BLOCK == 0);
    if format == WeightFormat::Q8_0 && shape.len() == 2 && whole_blocks {
        TensorType::Q8_0
    } else {
        TensorType::F16
    }
}

/// The header's ftype for a weight format.
fn header_ftype(format: WeightFormat) -> i32 {
    match format {
        WeightFormat::F16 => FTYPE_MOSTLY_F16,
        WeightFormat::Q8_0 => GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + FTYPE_MOSTLY_Q8_0,
    }
}

fn put_i32(w: &mut impl Write, v: i32) -> io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn put_len(w: &mut impl Write, n: usize) -> io::Result<()> {
    let v = i32::try_from(n).map_err(|_| io::Error::other(format!("{n} does not fit an i32")))?;
    put_i32(w, v)
}

/// Writes the whole model. Only I/O can fail: the model was validated when it was built.
pub(crate) fn write_model(
    w: &mut impl Write,
    model: &GgmlModel<'_>,
    format: WeightFormat,
) -> io::Result<()> {
    put_i32(w, MAGIC as i32)?;
    for v in model.hparams.to_array() {
        put_i32(w, v)?;
    }
    put_i32(w, header_ftype(format))?;

    put_len(w, model.hparams.n_mels as usize)?;
    put_len(w, model.mel_bins)?;
    for v in &model.mel_filters {
        w.write_all(&v.to_le_bytes())?;
    }

    put_len(w, model.tokens.len())?;
    for token in &model.tokens {
        put_len(w, token.len())?;
        w.write_all(token)?;
    }

    let mut scratch = Scratch::default();
    for tensor in &model.tensors {
        write_tensor(
            w,
            tensor,
            storage_type(&tensor.name, &tensor.shape, format),
            &mut scratch,
        )?;
    }
    Ok(())
}

/// Reusable buffers for tensor conversion.
#[derive(Default)]
struct Scratch {
    values: Vec<f32>,
    bytes: Vec<u8>,
}

fn write_tensor(
    w: &mut impl Write,
    tensor: &Tensor<'_>,
    ttype: TensorType,
    scratch: &mut Scratch,
) -> io::Result<()> {
    put_len(w, tensor.shape.len())?;
    put_len(w, tensor.name.len())?;
    put_i32(w, ttype as i32)?;
    for &d in tensor.shape.iter().rev() {
        put_len(w, d)?;
    }
    w.write_all(tensor.name.as_bytes())?;

    let same_layout = matches!(
        (tensor.data.dtype, ttype),
        (DType::F32, TensorType::F32) | (DType::F16, TensorType::F16)
    );
    if same_layout {
        return w.write_all(tensor.data.bytes);
    }
    let n = tensor.data.len();
    let mut start = 0;
    while start < n {
        let count = CHUNK.min(n - start);
        scratch.values.clear();
        tensor
            .data
            .slice(start, count)
            .decode_into(&mut scratch.values);
        scratch.bytes.clear();
        encode(&scratch.values, ttype, &mut scratch.bytes);
        w.write_all(&scratch.bytes)?;
        start += count;
    }
    Ok(())
}

fn encode(values: &[f32], ttype: TensorType, out: &mut Vec<u8>) {
    match ttype {
        TensorType::F32 => out.extend(values.iter().flat_map(|v| v.to_le_bytes())),
        TensorType::F16 => out.extend(
            values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes()),
        ),
        TensorType::Q8_0 => quantize_q8_0(values, out),
    }
}

/// ggml's reference q8_0 quantiser: per block of 32, scale `d = max|x| / 127` (stored as f16) and
/// `round(x / d)` as i8. `values.len()` must be a multiple of 32.
pub(crate) fn quantize_q8_0(values: &[f32], out: &mut Vec<u8>) {
    debug_assert_eq!(values.len() % Q8_0_BLOCK, 0);
    out.reserve(values.len() / Q8_0_BLOCK * Q8_0_BLOCK_BYTES);
    for block in values.chunks_exact(Q8_0_BLOCK) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        // Same as ggml: multiply by the f32 inverse of the unrounded scale.
        let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|v| (v * inv).round() as i8 as u8));
    }
}

/// Inverse of [`quantize_q8_0`].
#[cfg(test)]
pub(crate) fn dequantize_q8_0(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(Q8_0_BLOCK_BYTES)
        .flat_map(|b| {
            let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            b[2..].iter().map(move |&q| f32::from(q as i8) * d)
        })
        .collect()
}

/// Size in bytes of a tensor's data once stored as `ttype`.
#[cfg(test)]
pub(crate) fn stored_bytes(n_elements: usize, ttype: TensorType) -> usize {
    match ttype {
        TensorType::F32 => n_elements * 4,
        TensorType::F16 => n_elements * 2,
        TensorType::Q8_0 => n_elements / Q8_0_BLOCK * Q8_0_BLOCK_BYTES,
    }
}

/// What the start of a ggml file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub hparams: Hparams,
    pub ftype: i32,
}

/// Why a file's header could not be read.
#[derive(Debug)]
pub(crate) enum HeaderError {
    /// The magic is not "ggml" (shorter files read as magic 0).
    BadMagic(u32),
    Io(io::Error),
}

/// Reads magic, hparams and ftype.
pub(crate) fn read_header(r: &mut impl Read) -> Result<Header, HeaderError> {
    let mut buf = [0u8; 4 * 12];
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HeaderError::Io(e)),
        }
    }
    let word =
        |i: usize| i32::from_le_bytes([buf[4 * i], buf[4 * i + 1], buf[4 * i + 2], buf[4 * i + 3]]);
    let magic = word(0) as u32;
    if filled < buf.len() || magic != MAGIC {
        return Err(HeaderError::BadMagic(if filled >= 4 { magic } else { 0 }));
    }
    let hparams = Hparams::from_array(std::array::from_fn(|i| word(i + 1)));
    Ok(Header {
        hparams,
        ftype: word(11),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_round_trip_error_is_within_half_a_step() {
        let values: Vec<f32> = (0..32 * 50)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        let mut bytes = Vec::new();
        quantize_q8_0(&values, &mut bytes);
        assert_eq!(bytes.len(), 50 * Q8_0_BLOCK_BYTES);
        let back = dequantize_q8_0(&bytes);
        for (block, restored) in values.chunks(32).zip(back.chunks(32)) {
            let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            // half a quantisation step, plus the f16 rounding of the scale
            let bound = amax / 127.0 * 0.5 + amax * 1e-3;
            for (x, y) in block.iter().zip(restored) {
                assert!((x - y).abs() <= bound, "{x} vs {y} (bound {bound})");
            }
        }
    }

    #[test]
    fn q8_0_matches_ggml_reference_on_a_block() {
        let mut block = [0.0f32; 32];
        block[0] = 1.27;
        block[1] = -0.5;
        block[2] = 0.026;
        let mut bytes = Vec::new();
        quantize_q8_0(&block, &mut bytes);
        assert_eq!(
            half::f16::from_le_bytes([bytes[0], bytes[1]]),
            half::f16::from_f32(0.01)
        );
        assert_eq!(bytes[2] as i8, 127);
        assert_eq!(bytes[3] as i8, -50);
        assert_eq!(bytes[4] as i8, 3);
        let mut zeros = Vec::new();
        quantize_q8_0(&[0.0; 32], &mut zeros);
        assert!(zeros.iter().all(|&b| b == 0));
    }

    #[test]
    fn storage_type_follows_whisper_cpp_rules() {
        use TensorType::*;
        let f16 = WeightFormat::F16;
        let q8 = WeightFormat::Q8_0;
        assert_eq!(
            storage_type("encoder.blocks.0.mlp.0.bias", &[2048], q8),
            F32
        );
        assert_eq!(storage_type("encoder.conv1.bias", &[512, 1], q8), F32);
        assert_eq!(
            storage_type("encoder.positional_embedding", &[1500, 512], q8),
            F32
        );
        assert_eq!(
            storage_type("decoder.positional_embedding", &[448, 512], f16),
            F32
        );
        assert_eq!(storage_type("encoder.conv1.weight", &[512, 80, 3], q8), F16);
        assert_eq!(
            storage_type("decoder.token_embedding.weight", &[51865, 512], f16),
            F16
        );
        assert_eq!(
            storage_type("decoder.token_embedding.weight", &[51865, 512], q8),
            Q8_0
        );
        assert_eq!(
            storage_type("x.weight", &[64, 48], q8),
            F16,
            "row not a multiple of 32"
        );
    }

    #[test]
    fn header_round_trips_and_bad_magic_is_reported() {
        let model = GgmlModel {
            hparams: Hparams {
                n_vocab: 51865,
                n_mels: 80,
                ..Hparams::default()
            },
            mel_filters: vec![0.5; 2],
            mel_bins: 1,
            tokens: vec![b"a".to_vec()],
            tensors: vec![],
        };
        let mut out = Vec::new();
        write_model(&mut out, &model, WeightFormat::Q8_0).unwrap();
        let header = read_header(&mut out.as_slice()).unwrap();
        assert_eq!(header.hparams, model.hparams);
        assert_eq!(header.ftype, 2007);
        assert!(matches!(
            read_header(&mut &b"GGUF\0\0"[..]),
            Err(HeaderError::BadMagic(_))
        ));
        assert!(matches!(
            read_header(&mut &b""[..]),
            Err(HeaderError::BadMagic(0))
        ));
    }
}
