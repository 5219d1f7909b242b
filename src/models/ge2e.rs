//! The GE2E speaker encoder's weights (resemblyzer 0.1.4, Wan et al. 2018): which tensors the
//! model needs, with their shapes, and the conversion of resemblyzer's legacy torch checkpoint
//! into a safetensors file holding exactly those tensors as f32.
//!
//! Promises: the output is byte-identical for the same checkpoint (tensors sorted by name, no
//! metadata), and holds every tensor of [`GE2E_TENSORS`] with its listed shape — nothing else
//! (resemblyzer's training-only `similarity_weight`/`similarity_bias` are dropped).

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use super::error::ConvertError;
use super::torch_legacy::TorchTensor;

/// Width of the LSTM and of the embedding.
pub(crate) const HIDDEN: usize = 256;
/// Mel channels the encoder reads.
pub(crate) const N_MELS: usize = 40;
/// LSTM gates per unit (PyTorch order: input, forget, cell, output).
const GATES: usize = 4;

/// Every tensor the encoder needs, with its shape: a 3-layer LSTM (`40 → 256 → 256 → 256`)
/// and a `256 → 256` linear projection.
pub(crate) const GE2E_TENSORS: [(&str, &[usize]); 14] = [
    ("linear.bias", &[HIDDEN]),
    ("linear.weight", &[HIDDEN, HIDDEN]),
    ("lstm.bias_hh_l0", &[GATES * HIDDEN]),
    ("lstm.bias_hh_l1", &[GATES * HIDDEN]),
    ("lstm.bias_hh_l2", &[GATES * HIDDEN]),
    ("lstm.bias_ih_l0", &[GATES * HIDDEN]),
    ("lstm.bias_ih_l1", &[GATES * HIDDEN]),
    ("lstm.bias_ih_l2", &[GATES * HIDDEN]),
    ("lstm.weight_hh_l0", &[GATES * HIDDEN, HIDDEN]),
    ("lstm.weight_hh_l1", &[GATES * HIDDEN, HIDDEN]),
    ("lstm.weight_hh_l2", &[GATES * HIDDEN, HIDDEN]),
    ("lstm.weight_ih_l0", &[GATES * HIDDEN, N_MELS]),
    ("lstm.weight_ih_l1", &[GATES * HIDDEN, HIDDEN]),
    ("lstm.weight_ih_l2", &[GATES * HIDDEN, HIDDEN]),
];

/// The state dict inside resemblyzer's checkpoint.
pub(crate) const STATE_DICT_KEY: &str = "model_state";

/// The encoder's tensors from a state dict, checked against [`GE2E_TENSORS`], serialized as
/// safetensors.
pub(crate) fn to_safetensors(tensors: Vec<TorchTensor>) -> Result<Vec<u8>, ConvertError> {
    let mut by_name: BTreeMap<String, TorchTensor> =
        tensors.into_iter().map(|t| (t.name.clone(), t)).collect();
    let mut out = BTreeMap::new();
    for (name, shape) in GE2E_TENSORS {
        let t = by_name
            .remove(name)
            .ok_or_else(|| ConvertError::MissingVariable {
                variable: name.into(),
            })?;
        if t.shape != shape {
            return Err(ConvertError::BadShape {
                variable: name.into(),
                shape: t.shape,
                expected: "the GE2E layout (3-layer LSTM 40→256, linear 256→256)",
            });
        }
        // Wrapping f32 data in a CPU tensor cannot fail once the shape matches the length.
        let tensor =
            Tensor::from_vec(t.data, shape, &Device::Cpu).map_err(|_| ConvertError::BadShape {
                variable: name.into(),
                shape: shape.to_vec(),
                expected: "as many elements as its shape",
            })?;
        out.insert(name, tensor);
    }
    safetensors::serialize(out, None).map_err(|source| ConvertError::Safetensors {
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, shape: &[usize]) -> TorchTensor {
        let n = shape.iter().product();
        TorchTensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: (0..n).map(|i| i as f32).collect(),
        }
    }

    fn full_set() -> Vec<TorchTensor> {
        GE2E_TENSORS.iter().map(|(n, s)| tensor(n, s)).collect()
    }

    #[test]
    fn keeps_exactly_the_encoder_tensors_deterministically() {
        let mut with_extra = full_set();
        with_extra.push(tensor("similarity_weight", &[1]));
        let a = to_safetensors(with_extra).unwrap();
        let mut reversed = full_set();
        reversed.reverse();
        let b = to_safetensors(reversed).unwrap();
        assert_eq!(a, b, "order of the input must not matter");
        let loaded = candle_core::safetensors::load_buffer(&a, &Device::Cpu).unwrap();
        assert_eq!(loaded.len(), GE2E_TENSORS.len());
        assert_eq!(loaded["lstm.weight_ih_l0"].dims(), &[1024, 40]);
    }

    #[test]
    fn missing_or_misshapen_tensors_are_named() {
        let mut set = full_set();
        set.retain(|t| t.name != "linear.bias");
        let e = to_safetensors(set).unwrap_err().to_string();
        assert!(e.contains("linear.bias"), "{e}");

        let mut set = full_set();
        set[0] = tensor("linear.bias", &[128]);
        let e = to_safetensors(set).unwrap_err().to_string();
        assert!(e.contains("linear.bias") && e.contains("[128]"), "{e}");
    }
}
