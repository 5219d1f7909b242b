//! The CAM++ network (and the segmentation network) run by onnxruntime (through `ort`, the
//! library loaded at run time from the file `qualscribe models fetch --model speaker` installs),
//! on the graphs of [`super::campplus_onnx`] and [`super::segment_onnx`]. Measured on one core,
//! one 1.6 s window: 19–22 ms against candle's 53–61 ms.
//!
//! Promises:
//! - One session per rayon worker, each with one intra-op thread (on 2 cores, two 1-thread
//!   sessions beat one 2-thread session: 16 ms wall but 31.7 CPU-ms per window); sessions are
//!   made on a worker's first use.
//! - CAM++ sequences go through one at a time (batch 1), so an embedding depends on nothing
//!   else that is embedded with it, and the output is deterministic. The segmentation network
//!   after its SincNet convolution takes 4 chunks per call (a matrix product per LSTM step
//!   instead of a vector product); each chunk has its own instance norms and LSTM state, so its
//!   output depends on nothing else in the call: measured bit-identical to batch 1 and to other
//!   batch company on 10 min of Spanish and AMI clips (`tests/segmentation.rs` allows float
//!   rounding, in case another CPU's kernels differ).
//! - A library that cannot be loaded, or a graph it rejects, is an error at load time (the
//!   caller falls back to candle), never a panic.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;

use super::DiarizeError;
use super::campplus::EMBEDDING_DIM;
use super::fbank::N_BINS;

/// A one-input, one-output graph in onnxruntime sessions (`Send + Sync`).
pub(crate) struct OrtNet {
    /// The serialised ONNX graph, kept to make further workers' sessions.
    model: Vec<u8>,
    /// One slot per rayon worker (index modulo the count for callers outside the pool).
    sessions: Vec<Mutex<Option<Session>>>,
    library: PathBuf,
    /// The graph's input and output names.
    input: &'static str,
    output: &'static str,
}

impl OrtNet {
    /// Loads the onnxruntime library at `library` (once per process) and makes the first
    /// session of the graph `model`, which reads `input` and writes `output`.
    pub(crate) fn new(
        library: &Path,
        model: Vec<u8>,
        (input, output): (&'static str, &'static str),
    ) -> Result<Self, DiarizeError> {
        load_library(library)?;
        let first = new_session(library, &model)?;
        // Slots are filled on first use, so spare ones cost nothing; enough of them that a
        // larger pool than the current one never shares a session between two workers.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = rayon::current_num_threads().max(cores);
        let mut sessions: Vec<Mutex<Option<Session>>> =
            (0..workers).map(|_| Mutex::new(None)).collect();
        sessions[0] = Mutex::new(Some(first));
        Ok(OrtNet {
            model,
            sessions,
            library: library.to_path_buf(),
            input,
            output,
        })
    }

    /// The CAM++ embeddings (not normalised) of `seqs`, each mean-normalised fbank `T × 80`.
    pub(crate) fn embeddings(&self, seqs: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>, DiarizeError> {
        seqs.into_iter()
            .map(|seq| {
                let frames = seq.len() / N_BINS;
                let e = self.run(seq, [1, frames, N_BINS])?;
                debug_assert_eq!(e.len(), EMBEDDING_DIM);
                Ok(e)
            })
            .collect()
    }

    /// The output of one input of shape `shape`, flat, on this worker's session.
    pub(crate) fn run(&self, data: Vec<f32>, shape: [usize; 3]) -> Result<Vec<f32>, DiarizeError> {
        let slot = rayon::current_thread_index().unwrap_or(0) % self.sessions.len();
        let mut guard = self.sessions[slot]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = match &mut *guard {
            Some(session) => session,
            empty => empty.insert(new_session(&self.library, &self.model)?),
        };
        run_one(session, data, shape, (self.input, self.output)).map_err(|source| {
            DiarizeError::Onnxruntime {
                what: format!("running the graph on `{}`", self.input),
                source,
            }
        })
    }
}

/// The network `build` makes in onnxruntime when a `library` is given; `None` without one, and
/// when it fails, which is said on stderr in one line: the caller's candle path (for `model`)
/// then runs.
pub(crate) fn ort_or_fallback<Net>(
    library: Option<&Path>,
    model: &str,
    build: impl FnOnce(&Path) -> Result<Net, DiarizeError>,
) -> Option<Net> {
    match build(library?) {
        Ok(net) => Some(net),
        Err(e) => {
            eprintln!("warning: {e}; the {model} runs in candle (slower)");
            None
        }
    }
}

fn run_one(
    session: &mut Session,
    data: Vec<f32>,
    shape: [usize; 3],
    (input, output): (&str, &str),
) -> ort::Result<Vec<f32>> {
    let tensor = Tensor::from_array((shape, data))?;
    let outputs = session.run(ort::inputs![input => tensor])?;
    let (_, values) = outputs[output].try_extract_tensor::<f32>()?;
    Ok(values.to_vec())
}

/// Loads the library once per process; a later call with another path reuses the first.
fn load_library(library: &Path) -> Result<(), DiarizeError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    let loaded = LOADED.get_or_init(|| match ort::init_from(library) {
        Ok(env) => {
            env.with_name("qualscribe").commit();
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    });
    loaded
        .clone()
        .map_err(|message| DiarizeError::OnnxruntimeLibrary {
            path: library.to_path_buf(),
            message,
        })
}

/// A one-thread session of `model`, fully optimised.
fn new_session(library: &Path, model: &[u8]) -> Result<Session, DiarizeError> {
    let failed = |message: String| DiarizeError::OnnxruntimeLibrary {
        path: library.to_path_buf(),
        message,
    };
    let builder = Session::builder().map_err(|e| failed(e.to_string()))?;
    let builder = builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| failed(e.to_string()))?;
    let builder = builder
        .with_intra_threads(1)
        .map_err(|e| failed(e.to_string()))?;
    let mut builder = builder
        .with_inter_threads(1)
        .map_err(|e| failed(e.to_string()))?;
    builder
        .commit_from_memory(model)
        .map_err(|e| failed(format!("the speaker graph was rejected: {e}")))
}
