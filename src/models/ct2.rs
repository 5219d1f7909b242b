//! Reader for CTranslate2 `model.bin` files (binary version 5 and later). Parsing is zero-copy:
//! every variable borrows its bytes from the buffer that holds the whole file, so a 150 MB model
//! is held in memory once.
//!
//! Layout (little-endian): u32 version, string spec, u32 revision, u32 n_vars, then per variable:
//! string name, u8 rank, u32 dims[rank], u8 dtype, u32 n_bytes, raw bytes; then u32 n_aliases of
//! (string alias, string target). A string is a u16 length (NUL included) then the bytes and a NUL.

use super::error::ConvertError;
use std::collections::HashMap;

/// Element type of a CT2 variable, in CTranslate2's `DataType` enum order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl DType {
    fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }

    /// The name users know from numpy/CTranslate2.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::F16 => "float16",
            DType::Bf16 => "bfloat16",
        }
    }
}

/// One named tensor of a CT2 model, borrowing its data.
#[derive(Debug, Clone)]
pub(crate) struct Variable<'a> {
    pub name: String,
    /// Outermost dimension first (row-major, like numpy).
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: &'a [u8],
}

impl Variable<'_> {
    /// Number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The value of a scalar (or first element) integer/bool flag, whatever its stored type.
    pub fn first_as_i64(&self) -> Option<i64> {
        let b = self.data;
        Some(match self.dtype {
            DType::I8 => i64::from(*b.first()? as i8),
            DType::I16 => i64::from(i16::from_le_bytes(b.get(..2)?.try_into().ok()?)),
            DType::I32 => i64::from(i32::from_le_bytes(b.get(..4)?.try_into().ok()?)),
            DType::F32 => f32::from_le_bytes(b.get(..4)?.try_into().ok()?) as i64,
            DType::F16 => half::f16::from_le_bytes(b.get(..2)?.try_into().ok()?).to_f32() as i64,
            DType::Bf16 => half::bf16::from_le_bytes(b.get(..2)?.try_into().ok()?).to_f32() as i64,
        })
    }
}

/// A parsed CT2 model.
#[derive(Debug)]
pub(crate) struct Ct2Model<'a> {
    #[allow(dead_code)] // kept for diagnostics and tests
    pub version: u32,
    pub spec: String,
    vars: Vec<Variable<'a>>,
    /// Variable and alias names → index into `vars`.
    index: HashMap<String, usize>,
}

impl<'a> Ct2Model<'a> {
    /// Parses a whole `model.bin` held in `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ConvertError> {
        let mut r = Cursor { bytes, pos: 0 };
        let version = r.u32()?;
        if version < 5 {
            return Err(ConvertError::UnsupportedVersion { version });
        }
        let spec = r.string()?;
        let _revision = r.u32()?;
        let n_vars = r.u32()? as usize;
        let mut vars = Vec::with_capacity(n_vars.min(1 << 16));
        for _ in 0..n_vars {
            vars.push(r.variable()?);
        }
        let mut index: HashMap<String, usize> = vars
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name.clone(), i))
            .collect();
        let n_aliases = r.u32()?;
        for _ in 0..n_aliases {
            let alias = r.string()?;
            let target = r.string()?;
            let &i = index
                .get(&target)
                .ok_or(ConvertError::MissingVariable { variable: target })?;
            index.insert(alias, i);
        }
        let extra = bytes.len() - r.pos;
        if extra != 0 {
            return Err(ConvertError::TrailingBytes { extra });
        }
        Ok(Ct2Model {
            version,
            spec,
            vars,
            index,
        })
    }

    /// The variable (or alias) with this name.
    pub fn get(&self, name: &str) -> Result<&Variable<'a>, ConvertError> {
        self.index
            .get(name)
            .map(|&i| &self.vars[i])
            .ok_or_else(|| ConvertError::MissingVariable {
                variable: name.to_string(),
            })
    }

    /// All variable names (not aliases), in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|v| v.name.as_str())
    }
}

/// A bounds-checked little-endian reader over the file bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConvertError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(ConvertError::Truncated {
            offset: self.pos,
            needed: n,
        })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ConvertError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ConvertError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ConvertError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, ConvertError> {
        let offset = self.pos;
        let len = usize::from(self.u16()?);
        let raw = self.take(len)?;
        match raw.split_last() {
            Some((0, text)) => std::str::from_utf8(text)
                .map(str::to_string)
                .map_err(|_| ConvertError::BadString { offset }),
            _ => Err(ConvertError::BadString { offset }),
        }
    }

    fn variable(&mut self) -> Result<Variable<'a>, ConvertError> {
        let name = self.string()?;
        let rank = self.u8()?;
        let shape = (0..rank)
            .map(|_| self.u32().map(|d| d as usize))
            .collect::<Result<Vec<_>, _>>()?;
        let code = self.u8()?;
        let dtype = DType::from_code(code).ok_or_else(|| ConvertError::UnknownDtype {
            variable: name.clone(),
            code,
        })?;
        let n_bytes = self.u32()? as usize;
        let expected = shape.iter().product::<usize>() * dtype.size();
        if n_bytes != expected {
            return Err(ConvertError::SizeMismatch {
                variable: name,
                expected,
                got: n_bytes,
            });
        }
        let data = self.take(n_bytes)?;
        Ok(Variable {
            name,
            shape,
            dtype,
            data,
        })
    }
}

/// Builds CT2 files for tests (the inverse of [`Ct2Model::parse`]).
#[cfg(test)]
pub(crate) mod testing {
    /// A variable to write: name, shape, dtype code, raw bytes.
    pub struct RawVar {
        pub name: String,
        pub shape: Vec<u32>,
        pub dtype: u8,
        pub data: Vec<u8>,
    }

    impl RawVar {
        pub fn f32(name: &str, shape: &[u32], values: &[f32]) -> RawVar {
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            RawVar {
                name: name.into(),
                shape: shape.to_vec(),
                dtype: 0,
                data,
            }
        }

        pub fn f16(name: &str, shape: &[u32], values: &[f32]) -> RawVar {
            let data = values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect();
            RawVar {
                name: name.into(),
                shape: shape.to_vec(),
                dtype: 4,
                data,
            }
        }

        pub fn i8(name: &str, shape: &[u32], values: &[i8]) -> RawVar {
            let data = values.iter().map(|v| *v as u8).collect();
            RawVar {
                name: name.into(),
                shape: shape.to_vec(),
                dtype: 1,
                data,
            }
        }
    }

    fn put_string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// Serialises a version-6 CT2 file.
    pub fn write_ct2(spec: &str, vars: &[RawVar], aliases: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        put_string(&mut out, spec);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
        for v in vars {
            put_string(&mut out, &v.name);
            out.push(v.shape.len() as u8);
            for d in &v.shape {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.push(v.dtype);
            out.extend_from_slice(&(v.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&v.data);
        }
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (alias, target) in aliases {
            put_string(&mut out, alias);
            put_string(&mut out, target);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn reads_variables_scalars_and_aliases() {
        let bytes = write_ct2(
            "WhisperSpec",
            &[
                RawVar::f16("a/weight", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                RawVar::i8("flag", &[], &[1]),
            ],
            &[("b/weight", "a/weight")],
        );
        let m = Ct2Model::parse(&bytes).unwrap();
        assert_eq!(m.version, 6);
        assert_eq!(m.spec, "WhisperSpec");
        let a = m.get("a/weight").unwrap();
        assert_eq!(
            (a.shape.as_slice(), a.dtype, a.len()),
            (&[2, 3][..], DType::F16, 6)
        );
        assert_eq!(m.get("b/weight").unwrap().data, a.data);
        assert_eq!(m.get("flag").unwrap().first_as_i64(), Some(1));
        assert_eq!(m.names().count(), 2);
        assert!(matches!(
            m.get("nope"),
            Err(ConvertError::MissingVariable { .. })
        ));
    }

    #[test]
    fn rejects_truncated_and_old_and_padded_files() {
        let bytes = write_ct2("WhisperSpec", &[RawVar::f32("x", &[4], &[0.0; 4])], &[]);
        let cut = &bytes[..bytes.len() - 7];
        assert!(matches!(
            Ct2Model::parse(cut),
            Err(ConvertError::Truncated { .. })
        ));

        let mut padded = bytes.clone();
        padded.push(0);
        assert!(matches!(
            Ct2Model::parse(&padded),
            Err(ConvertError::TrailingBytes { extra: 1 })
        ));

        let mut old = bytes;
        old[..4].copy_from_slice(&4u32.to_le_bytes());
        assert!(matches!(
            Ct2Model::parse(&old),
            Err(ConvertError::UnsupportedVersion { version: 4 })
        ));
    }
}
