//! Reads a state dict out of a *legacy* torch checkpoint (the pre-1.6, non-zip format written by
//! `torch.save(..., _use_new_zipfile_serialization=False)`), such as resemblyzer's
//! `pretrained.pt`. candle's `read_pth_tensor_info` only opens the zip format, so the container is
//! walked here with candle's pickle interpreter.
//!
//! The legacy layout is five pickles in a row — magic number, protocol version, system info, the
//! checkpoint object, the list of storage keys — followed by each storage in that key order as a
//! little-endian `u64` element count and the raw little-endian elements.
//!
//! Promises: only `FloatStorage` tensors of the requested state dict are returned, contiguous,
//! sorted by name; any other layout is a [`ConvertError`] naming the file and what was wrong.
//! Nothing is executed: the pickle is interpreted, never run.

use std::collections::HashMap;
use std::io::BufRead;

use candle_core::pickle::{Object, Stack};

use super::error::ConvertError;

/// One float tensor of a state dict.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TorchTensor {
    /// Parameter name, e.g. `lstm.weight_ih_l0`.
    pub name: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major elements.
    pub data: Vec<f32>,
}

/// Where a tensor's elements live: a storage key and an element offset into it.
#[derive(Debug)]
struct TensorRef {
    name: String,
    storage_key: String,
    offset: usize,
    shape: Vec<usize>,
}

/// The float tensors of the dict stored under `state_key` (e.g. `model_state`) in the legacy
/// checkpoint `bytes`. `file` names the checkpoint in errors.
pub(crate) fn read_state_dict(
    bytes: &[u8],
    state_key: &str,
    file: &str,
) -> Result<Vec<TorchTensor>, ConvertError> {
    let mut reader = bytes;
    let pickle_err = |what: &'static str| {
        let file = file.to_string();
        move |source| ConvertError::TorchPickle {
            file,
            what,
            source: Box::new(source),
        }
    };
    read_pickle(&mut reader).map_err(pickle_err("magic number"))?;
    read_pickle(&mut reader).map_err(pickle_err("protocol version"))?;
    read_pickle(&mut reader).map_err(pickle_err("system info"))?;
    let checkpoint = read_pickle(&mut reader).map_err(pickle_err("checkpoint"))?;
    let keys = read_pickle(&mut reader).map_err(pickle_err("storage key list"))?;
    let keys = storage_keys(keys, file)?;

    // Element sizes come from the storage classes of every tensor in the checkpoint (optimizer
    // state included), since every storage must be stepped over to reach the next one.
    let mut element_sizes = HashMap::new();
    collect_storage_classes(&checkpoint, &mut element_sizes);
    let wanted = state_dict_tensors(checkpoint, state_key, file)?;
    let storages = read_storages(reader, &keys, &element_sizes, &wanted, file)?;

    let mut out = wanted
        .into_iter()
        .map(|t| slice_tensor(t, &storages, file))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn read_pickle<R: BufRead>(reader: &mut R) -> Result<Object, candle_core::Error> {
    let mut stack = Stack::empty();
    stack.read_loop(reader)?;
    stack.finalize()
}

fn layout_err(file: &str, location: impl Into<String>, expected: &'static str) -> ConvertError {
    ConvertError::TorchLayout {
        file: file.into(),
        location: location.into(),
        expected,
    }
}

fn storage_keys(keys: Object, file: &str) -> Result<Vec<String>, ConvertError> {
    let Object::List(keys) = keys else {
        return Err(layout_err(file, "storage key list", "a list of strings"));
    };
    keys.into_iter()
        .map(|k| String::try_from(k).map_err(|_| layout_err(file, "storage key list", "strings")))
        .collect()
}

/// The bytes per element of a torch storage class, for the classes a float model can hold.
fn element_size(class_name: &str) -> Option<usize> {
    Some(match class_name {
        "FloatStorage" | "IntStorage" => 4,
        "DoubleStorage" | "LongStorage" => 8,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "ByteStorage" | "CharStorage" | "BoolStorage" => 1,
        _ => return None,
    })
}

/// A persistent id `('storage', <class>, key, location, numel[, view])` as (key, class name).
fn storage_id(pid: &Object) -> Option<(&str, &str)> {
    let Object::Tuple(parts) = pid else {
        return None;
    };
    match (parts.get(1), parts.get(2)) {
        (Some(Object::Class { class_name, .. }), Some(Object::Unicode(key))) => {
            Some((key.as_str(), class_name.as_str()))
        }
        _ => None,
    }
}

/// Records the storage class of every storage referenced anywhere under `obj`.
fn collect_storage_classes(obj: &Object, out: &mut HashMap<String, String>) {
    match obj {
        Object::PersistentLoad(pid) => {
            if let Some((key, class)) = storage_id(pid) {
                out.insert(key.to_string(), class.to_string());
            }
        }
        Object::Tuple(items) | Object::List(items) => {
            items.iter().for_each(|o| collect_storage_classes(o, out));
        }
        Object::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
            collect_storage_classes(k, out);
            collect_storage_classes(v, out);
        }),
        Object::Reduce { callable, args } | Object::Build { callable, args } => {
            collect_storage_classes(callable, out);
            collect_storage_classes(args, out);
        }
        _ => {}
    }
}

/// The tensors of the dict under `state_key`, as references into storages.
fn state_dict_tensors(
    checkpoint: Object,
    state_key: &str,
    file: &str,
) -> Result<Vec<TensorRef>, ConvertError> {
    let Object::Dict(top) = checkpoint else {
        return Err(layout_err(file, "checkpoint", "a dict"));
    };
    let state = top
        .into_iter()
        .find(|(k, _)| matches!(k, Object::Unicode(s) if s == state_key))
        .map(|(_, v)| v)
        .ok_or_else(|| ConvertError::MissingVariable {
            variable: state_key.into(),
        })?;
    let Object::Dict(entries) = state else {
        return Err(layout_err(file, state_key, "a dict of tensors"));
    };
    let mut out = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        // An OrderedDict's attributes (`_metadata`) arrive as entries too; they are not tensors.
        if !is_tensor(&value) {
            continue;
        }
        let name = String::try_from(name)
            .map_err(|_| layout_err(file, state_key, "string parameter names"))?;
        out.push(tensor_ref(name, value, file)?);
    }
    Ok(out)
}

/// Whether `value` is a `torch._utils._rebuild_tensor_v2(...)` call.
fn is_tensor(value: &Object) -> bool {
    matches!(value, Object::Reduce { callable, .. } if matches!(callable.as_ref(),
        Object::Class { module_name, class_name }
            if module_name == "torch._utils" && class_name == "_rebuild_tensor_v2"))
}

/// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` → a [`TensorRef`].
fn tensor_ref(name: String, value: Object, file: &str) -> Result<TensorRef, ConvertError> {
    let bad = |expected| layout_err(file, name.clone(), expected);
    let Object::Reduce { callable, args } = value else {
        return Err(bad("a tensor"));
    };
    match *callable {
        Object::Class {
            ref module_name,
            ref class_name,
        } if module_name == "torch._utils" && class_name == "_rebuild_tensor_v2" => {}
        _ => return Err(bad("torch._utils._rebuild_tensor_v2")),
    }
    let Object::Tuple(args) = *args else {
        return Err(bad("rebuild arguments"));
    };
    let [storage, offset, size, stride, ..] = args.as_slice() else {
        return Err(bad("storage, offset, size and stride"));
    };
    let (key, class) = match storage {
        Object::PersistentLoad(pid) => storage_id(pid).ok_or_else(|| bad("a storage id"))?,
        _ => return Err(bad("a persistent storage")),
    };
    if class != "FloatStorage" {
        return Err(ConvertError::UnsupportedStorage {
            file: file.into(),
            tensor: name,
            storage: class.into(),
        });
    }
    let offset = as_usize(offset).ok_or_else(|| bad("an integer offset"))?;
    let shape = usize_tuple(size).ok_or_else(|| bad("an integer shape"))?;
    let stride = usize_tuple(stride).ok_or_else(|| bad("an integer stride"))?;
    if !is_contiguous(&shape, &stride) {
        return Err(ConvertError::NonContiguous {
            file: file.into(),
            tensor: name,
        });
    }
    Ok(TensorRef {
        name,
        storage_key: key.to_string(),
        offset,
        shape,
    })
}

fn as_usize(o: &Object) -> Option<usize> {
    match o {
        Object::Int(i) => usize::try_from(*i).ok(),
        Object::Long(i) => usize::try_from(*i).ok(),
        _ => None,
    }
}

fn usize_tuple(o: &Object) -> Option<Vec<usize>> {
    match o {
        Object::Tuple(items) => items.iter().map(as_usize).collect(),
        _ => None,
    }
}

/// Row-major with no gaps (size-1 dimensions may have any stride).
fn is_contiguous(shape: &[usize], stride: &[usize]) -> bool {
    if shape.len() != stride.len() {
        return false;
    }
    let mut expected = 1;
    for (&size, &step) in shape.iter().zip(stride).rev() {
        if size > 1 && step != expected {
            return false;
        }
        expected *= size;
    }
    true
}

/// Steps through every storage in key order, keeping the float ones that `wanted` uses.
fn read_storages(
    mut rest: &[u8],
    keys: &[String],
    element_sizes: &HashMap<String, String>,
    wanted: &[TensorRef],
    file: &str,
) -> Result<HashMap<String, Vec<f32>>, ConvertError> {
    let mut out = HashMap::new();
    for key in keys {
        let truncated = || ConvertError::StorageTruncated {
            file: file.into(),
            key: key.clone(),
        };
        let class = element_sizes.get(key).map(String::as_str).unwrap_or("");
        let size = element_size(class).ok_or_else(|| ConvertError::UnsupportedStorage {
            file: file.into(),
            tensor: format!("storage {key}"),
            storage: if class.is_empty() {
                "an unknown class"
            } else {
                class
            }
            .into(),
        })?;
        let (count, after) = rest.split_first_chunk::<8>().ok_or_else(truncated)?;
        let count = usize::try_from(u64::from_le_bytes(*count)).map_err(|_| truncated())?;
        let len = count.checked_mul(size).ok_or_else(truncated)?;
        if after.len() < len {
            return Err(truncated());
        }
        let (data, after) = after.split_at(len);
        if wanted.iter().any(|t| &t.storage_key == key) {
            let floats = data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            out.insert(key.clone(), floats);
        }
        rest = after;
    }
    Ok(out)
}

fn slice_tensor(
    t: TensorRef,
    storages: &HashMap<String, Vec<f32>>,
    file: &str,
) -> Result<TorchTensor, ConvertError> {
    let numel: usize = t.shape.iter().product();
    let data = storages
        .get(&t.storage_key)
        .and_then(|s| s.get(t.offset..t.offset.checked_add(numel)?))
        .ok_or_else(|| ConvertError::StorageTruncated {
            file: file.into(),
            key: t.storage_key.clone(),
        })?;
    Ok(TorchTensor {
        name: t.name,
        shape: t.shape,
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity_ignores_unit_dimensions() {
        assert!(is_contiguous(&[1024, 40], &[40, 1]));
        assert!(is_contiguous(&[1], &[1]));
        assert!(is_contiguous(&[3, 1, 4], &[4, 99, 1]));
        assert!(!is_contiguous(&[40, 1024], &[1, 40]));
        assert!(!is_contiguous(&[2, 2], &[2]));
    }

    #[test]
    fn storage_classes_have_their_element_sizes() {
        assert_eq!(element_size("FloatStorage"), Some(4));
        assert_eq!(element_size("LongStorage"), Some(8));
        assert_eq!(element_size("QInt8Storage"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let e = read_state_dict(b"not a pickle at all", "model_state", "x.pt").unwrap_err();
        assert!(e.to_string().contains("x.pt"), "{e}");
        let e = read_state_dict(&[], "model_state", "x.pt").unwrap_err();
        assert!(e.to_string().contains("x.pt"), "{e}");
    }
}
