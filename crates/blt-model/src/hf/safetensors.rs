//! Reading tensors out of safetensors files one at a time.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON header mapping each
//! tensor name to its dtype, shape and byte range, and the raw little-endian data. Only the
//! header is read up front; each tensor is read from its byte range when asked for and
//! converted to f32 straight away, so a checkpoint never sits in memory twice (BLT-1B's hash
//! tables alone are 3 B parameters). Sharded checkpoints list their files in
//! `model.safetensors.index.json`.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::{
    error::{ModelError, Result},
    io::io_err,
};

/// Single-file checkpoint name.
pub const SINGLE_FILE: &str = "model.safetensors";
/// Index of a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Headers larger than this are refused as corrupt (real ones are a few hundred KB).
const MAX_HEADER: u64 = 100 << 20;

/// Element types we convert to f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F16,
    Bf16,
}

impl Dtype {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "F32" => Some(Self::F32),
            "F16" => Some(Self::F16),
            "BF16" => Some(Self::Bf16),
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::Bf16 => 2,
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// Where one tensor lives.
#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Absolute byte offset in the file.
    start: u64,
}

/// A host tensor: f32 values in row-major order and their shape.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// The values.
    pub values: Vec<f32>,
    /// The shape.
    pub shape: Vec<usize>,
}

/// The tensors of a checkpoint directory, read lazily.
#[derive(Debug)]
pub struct Checkpoint {
    files: Vec<PathBuf>,
    entries: BTreeMap<String, Entry>,
    taken: BTreeSet<String>,
}

fn weights_err(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Weights {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl Checkpoint {
    /// Opens `dir/model.safetensors`, or the shards that `dir/model.safetensors.index.json`
    /// lists.
    pub fn open(dir: &Path) -> Result<Self> {
        let index = dir.join(INDEX_FILE);
        let files = if index.exists() {
            #[derive(Deserialize)]
            struct Index {
                weight_map: BTreeMap<String, String>,
            }
            let text = std::fs::read_to_string(&index).map_err(io_err("reading", &index))?;
            let parsed: Index = serde_json::from_str(&text)
                .map_err(|e| weights_err(&index, format!("invalid index: {e}")))?;
            let names: BTreeSet<String> = parsed.weight_map.into_values().collect();
            names.into_iter().map(|n| dir.join(n)).collect()
        } else {
            vec![dir.join(SINGLE_FILE)]
        };
        let mut entries = BTreeMap::new();
        for (i, path) in files.iter().enumerate() {
            for (name, entry) in read_header(path, i)? {
                if entries.insert(name.clone(), entry).is_some() {
                    return Err(weights_err(path, format!("tensor {name} appears twice")));
                }
            }
        }
        Ok(Self {
            files,
            entries,
            taken: BTreeSet::new(),
        })
    }

    /// Every tensor name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether the checkpoint holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// Reads `name` as f32 and marks it used.
    pub fn take(&mut self, name: &str) -> Result<HostTensor> {
        let entry = self.entries.get(name).ok_or_else(|| {
            weights_err(
                &self.files[0],
                format!("the checkpoint has no tensor {name}"),
            )
        })?;
        let path = &self.files[entry.file];
        let count: usize = entry.shape.iter().product();
        let mut bytes = vec![0u8; count * entry.dtype.size()];
        let mut file = File::open(path).map_err(io_err("reading", path))?;
        file.seek(SeekFrom::Start(entry.start))
            .map_err(io_err("reading", path))?;
        file.read_exact(&mut bytes)
            .map_err(io_err("reading", path))?;
        let values: Vec<f32> = match entry.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::Bf16 => bytes
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
        };
        if let Some(bad) = values.iter().position(|v: &f32| !v.is_finite()) {
            return Err(weights_err(
                path,
                format!("tensor {name} holds a non-finite value at element {bad}"),
            ));
        }
        self.taken.insert(name.to_string());
        Ok(HostTensor {
            values,
            shape: entry.shape.clone(),
        })
    }

    /// Tensors present but never taken, in name order.
    pub fn unused(&self) -> Vec<&str> {
        self.entries
            .keys()
            .filter(|k| !self.taken.contains(*k))
            .map(String::as_str)
            .collect()
    }

    /// The first file (for error messages).
    pub fn path(&self) -> &Path {
        &self.files[0]
    }
}

/// Parses one file's header into entries with absolute offsets, checking that every byte range
/// lies in the file and matches its dtype and shape.
fn read_header(path: &Path, file_index: usize) -> Result<Vec<(String, Entry)>> {
    let mut file = File::open(path).map_err(io_err("reading", path))?;
    let file_len = file.metadata().map_err(io_err("reading", path))?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .map_err(|_| weights_err(path, "not a safetensors file (shorter than 8 bytes)"))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER || 8 + header_len > file_len {
        return Err(weights_err(
            path,
            format!(
                "not a safetensors file (header length {header_len} of a {file_len}-byte file)"
            ),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(io_err("reading", path))?;
    let raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| weights_err(path, format!("invalid safetensors header: {e}")))?;
    let data_start = 8 + header_len;
    let mut out = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        if name == "__metadata__" {
            continue;
        }
        let entry: RawEntry = serde_json::from_value(value)
            .map_err(|e| weights_err(path, format!("invalid entry for {name}: {e}")))?;
        let dtype = Dtype::parse(&entry.dtype).ok_or_else(|| {
            weights_err(
                path,
                format!(
                    "tensor {name} has dtype {}; only F32, F16 and BF16 are read",
                    entry.dtype
                ),
            )
        })?;
        let [begin, end] = entry.data_offsets;
        let count: u64 = entry.shape.iter().map(|&d| d as u64).product();
        if end < begin || end - begin != count * dtype.size() as u64 || data_start + end > file_len
        {
            return Err(weights_err(
                path,
                format!(
                    "tensor {name}: byte range {begin}..{end} does not fit its shape or the file"
                ),
            ));
        }
        out.push((
            name,
            Entry {
                file: file_index,
                dtype,
                shape: entry.shape,
                start: data_start + begin,
            },
        ));
    }
    Ok(out)
}

/// IEEE half to single precision, subnormals, infinities and NaN included.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = frac · 2⁻²⁴, exact in f32.
            let v = frac as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (frac << 13),
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// Writes `tensors` (name, values, shape) as one f32 safetensors file, through a temporary
/// file renamed into place, so a failed write leaves no partial file under `path`.
pub fn write_f32(path: &Path, tensors: &[(String, Vec<f32>, Vec<usize>)]) -> Result<()> {
    write_f32_with(path, tensors, &())
}

/// [`write_f32`] reporting the tensors written to `progress` (task `"tensors written"`). The
/// file is written a tensor at a time, never assembled in memory.
pub fn write_f32_with(
    path: &Path,
    tensors: &[(String, Vec<f32>, Vec<usize>)],
    progress: &dyn blt_core::Progress,
) -> Result<()> {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, values, shape) in tensors {
        let bytes = values.len() as u64 * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut text = serde_json::to_vec(&header).expect("a JSON map serialises");
    // The data section starts 8-byte aligned, as other writers do.
    while !(8 + text.len()).is_multiple_of(8) {
        text.push(b' ');
    }
    let tmp = blt_core::fs::temp_path(path);
    progress.start("tensors written", tensors.len());
    let written = (|| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        out.write_all(&(text.len() as u64).to_le_bytes())?;
        out.write_all(&text)?;
        for (i, (_, values, _)) in tensors.iter().enumerate() {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.write_all(&bytes)?;
            progress.update(i + 1);
        }
        out.into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        blt_core::fs::commit(&tmp, path)
    })();
    progress.finish();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io_err("writing", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_conversions_are_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000), -0.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        // bf16 is the top half of an f32.
        let v = 3.140625f32;
        assert_eq!(
            f32::from_bits(u32::from((v.to_bits() >> 16) as u16) << 16),
            v
        );
    }

    #[test]
    fn round_trips_and_reports_unused_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SINGLE_FILE);
        write_f32(
            &path,
            &[
                ("a".into(), vec![1.0, -2.5, 3.0, 4.0, 5.0, 6.0], vec![2, 3]),
                ("b".into(), vec![0.5], vec![1]),
            ],
        )
        .unwrap();
        let mut ckpt = Checkpoint::open(dir.path()).unwrap();
        assert_eq!(ckpt.shape("a"), Some(&[2, 3][..]));
        let a = ckpt.take("a").unwrap();
        assert_eq!(a.values, vec![1.0, -2.5, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(ckpt.unused(), vec!["b"]);
        assert!(
            ckpt.take("missing")
                .unwrap_err()
                .to_string()
                .contains("no tensor missing")
        );

        // A truncated file is refused at open, with the file named.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = Checkpoint::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
        std::fs::write(&path, b"abc").unwrap();
        let err = Checkpoint::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a safetensors file"), "{err}");
    }
}
