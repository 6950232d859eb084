//! Our own walk over a GGUF header before candle parses it: every count, length, dimension,
//! alignment and offset read from the file is checked against the file's size with checked
//! arithmetic, so a hostile file fails here with its name and the field at fault instead of
//! panicking (division by zero, index out of bounds) or allocating without bound further on.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::error::{ModelError, Result};

/// GGML's limit on tensor dimensions.
const MAX_DIMS: u32 = 4;
/// Array nesting in metadata values deeper than this is refused (GGUF writers nest at most 1).
const MAX_VALUE_DEPTH: usize = 4;
/// The alignment GGUF uses when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;
/// Alignments past this are not plausible for any writer.
const MAX_ALIGNMENT: u64 = 1 << 20;

/// What the walk found: one entry per tensor, for the data-range checks.
#[derive(Debug)]
struct TensorEntry {
    name: String,
    dims: Vec<u64>,
    ty: u32,
    offset: u64,
}

/// Reader that knows how many bytes the file has left, so no length from the file is trusted.
struct Walk<R> {
    r: R,
    pos: u64,
    len: u64,
}

/// A failure of the walk: a message about a field (the caller adds the file).
type Step<T> = std::result::Result<T, String>;

impl<R: Read + Seek> Walk<R> {
    fn bytes<const N: usize>(&mut self, what: &str) -> Step<[u8; N]> {
        let mut b = [0u8; N];
        self.r
            .read_exact(&mut b)
            .map_err(|_| format!("truncated header: the file ends inside {what} at byte {}", self.pos))?;
        self.pos += N as u64;
        Ok(b)
    }
    fn u32(&mut self, what: &str) -> Step<u32> {
        self.bytes::<4>(what).map(u32::from_le_bytes)
    }
    fn u64(&mut self, what: &str) -> Step<u64> {
        self.bytes::<8>(what).map(u64::from_le_bytes)
    }
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }
    fn skip(&mut self, n: u64, what: &str) -> Step<()> {
        if n > self.remaining() {
            return Err(format!(
                "{what} needs {n} bytes at byte {} but only {} remain",
                self.pos,
                self.remaining()
            ));
        }
        let n_i = i64::try_from(n).map_err(|_| format!("{what}: length {n} is too large"))?;
        self.r.seek_relative(n_i).map_err(|e| format!("{what}: {e}"))?;
        self.pos += n;
        Ok(())
    }
    fn string(&mut self, what: &str) -> Step<String> {
        let n = self.u64(what)?;
        if n > self.remaining() || n > 1 << 26 {
            return Err(format!(
                "{what}: a string of {n} bytes at byte {} (only {} remain)",
                self.pos,
                self.remaining()
            ));
        }
        let mut b = vec![0u8; n as usize];
        self.r
            .read_exact(&mut b)
            .map_err(|_| format!("truncated header inside {what}"))?;
        self.pos += n;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// Skips one metadata value of type `ty`; returns it as an integer when it is one.
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Step<Option<i128>> {
        let what = || format!("metadata `{key}`");
        let fixed: Option<u64> = match ty {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        if let Some(n) = fixed {
            let int = match ty {
                0 => Some(i128::from(self.bytes::<1>(&what())?[0])),
                1 => Some(i128::from(self.bytes::<1>(&what())?[0] as i8)),
                2 => Some(i128::from(u16::from_le_bytes(self.bytes::<2>(&what())?))),
                3 => Some(i128::from(i16::from_le_bytes(self.bytes::<2>(&what())?))),
                4 => Some(i128::from(self.u32(&what())?)),
                5 => Some(i128::from(i32::from_le_bytes(self.bytes::<4>(&what())?))),
                10 => Some(i128::from(self.u64(&what())?)),
                11 => Some(i128::from(i64::from_le_bytes(self.bytes::<8>(&what())?))),
                _ => {
                    self.skip(n, &what())?;
                    None
                }
            };
            return Ok(int);
        }
        match ty {
            8 => self.string(&what()).map(|_| None),
            9 => {
                if depth >= MAX_VALUE_DEPTH {
                    return Err(format!("{}: arrays nested deeper than {MAX_VALUE_DEPTH}", what()));
                }
                let inner = self.u32(&what())?;
                let n = self.u64(&what())?;
                // Every element takes at least one byte: a count past the bytes left is a lie.
                if n > self.remaining() {
                    return Err(format!(
                        "{}: an array of {n} elements but only {} bytes remain",
                        what(),
                        self.remaining()
                    ));
                }
                for _ in 0..n {
                    self.value(inner, key, depth + 1)?;
                }
                Ok(None)
            }
            other => Err(format!("{}: unknown value type {other}", what())),
        }
    }
}

/// Bytes per block and elements per block of a GGML type candle reads; `None` otherwise.
fn block_layout(ty: u32) -> Option<(u64, u64)> {
    use candle_core::quantized::GgmlDType as G;
    let d = match ty {
        0 => G::F32,
        1 => G::F16,
        2 => G::Q4_0,
        3 => G::Q4_1,
        6 => G::Q5_0,
        7 => G::Q5_1,
        8 => G::Q8_0,
        9 => G::Q8_1,
        10 => G::Q2K,
        11 => G::Q3K,
        12 => G::Q4K,
        13 => G::Q5K,
        14 => G::Q6K,
        15 => G::Q8K,
        30 => G::BF16,
        _ => return None,
    };
    Some((d.type_size() as u64, d.block_size() as u64))
}

/// llama.cpp's name of a GGML type id (those candle does not read, for error messages).
fn ggml_type_name(ty: u32) -> &'static str {
    match ty {
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => "unknown",
    }
}

/// Walks the whole header of the GGUF at `path` and checks it; the file is left at its start.
pub fn check_gguf(path: &Path, file: &mut std::fs::File) -> Result<()> {
    let len = file.metadata().map_err(|e| ModelError::bad(path, e))?.len();
    file.seek(SeekFrom::Start(0)).map_err(|e| ModelError::bad(path, e))?;
    let r = check_reader(BufReader::new(&mut *file), len).map_err(|m| match m {
        Refusal::Bad(m) => ModelError::bad(path, m),
        Refusal::Unsupported(m) => ModelError::unsupported(path, m),
    });
    file.seek(SeekFrom::Start(0)).map_err(|e| ModelError::bad(path, e))?;
    r
}

/// Why a header is refused: a broken file, or a valid one this engine cannot read.
#[derive(Debug)]
pub enum Refusal {
    Bad(String),
    Unsupported(String),
}

impl From<String> for Refusal {
    fn from(s: String) -> Self {
        Self::Bad(s)
    }
}

/// The checks of [`check_gguf`] on any reader of `len` bytes (the fuzz target's entry).
pub fn check_reader(r: impl Read + Seek, len: u64) -> std::result::Result<(), Refusal> {
    let mut w = Walk { r, pos: 0, len };
    let head: [u8; 4] = w
        .bytes::<4>("the magic")
        .map_err(|_| format!("not a GGUF file: only {len} bytes"))?;
    if &head != b"GGUF" {
        return Err(Refusal::Bad(
            "not a GGUF file: it does not start with the magic `GGUF`".into(),
        ));
    }
    let version = w.u32("the version")?;
    if !(2..=3).contains(&version) {
        return Err(Refusal::Unsupported(format!(
            "GGUF version {version} (supported: 2, 3)"
        )));
    }
    let tensors = w.u64("the tensor count")?;
    let kvs = w.u64("the metadata count")?;
    if tensors > len / 8 || kvs > len / 8 {
        return Err(Refusal::Bad(format!(
            "corrupt GGUF header: {tensors} tensors and {kvs} metadata entries in a {len}-byte file"
        )));
    }
    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..kvs {
        let key = w.string("a metadata key")?;
        let ty = w.u32(&format!("the type of metadata `{key}`"))?;
        let int = w.value(ty, &key, 0)?;
        if key == "general.alignment" {
            let a = int.ok_or_else(|| format!("metadata `general.alignment` has type {ty}, not an integer"))?;
            if a <= 0 || a > i128::from(MAX_ALIGNMENT) || (a as u64).count_ones() != 1 {
                return Err(Refusal::Bad(format!(
                    "metadata `general.alignment` is {a}; it must be a power of two up to {MAX_ALIGNMENT}"
                )));
            }
            alignment = a as u64;
        }
    }
    let mut entries = Vec::new();
    for _ in 0..tensors {
        let name = w.string("a tensor name")?;
        let n_dims = w.u32(&format!("tensor `{name}`"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(Refusal::Bad(format!(
                "tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(w.u64(&format!("tensor `{name}`"))?);
        }
        let ty = w.u32(&format!("tensor `{name}`"))?;
        let offset = w.u64(&format!("tensor `{name}`"))?;
        entries.push(TensorEntry { name, dims, ty, offset });
    }
    let data_start = w
        .pos
        .div_ceil(alignment)
        .checked_mul(alignment)
        .ok_or_else(|| "data offset overflows".to_string())?;
    for t in &entries {
        let name = &t.name;
        let Some((type_size, block)) = block_layout(t.ty) else {
            return Err(Refusal::Unsupported(format!(
                "tensor `{name}` has GGML type {} ({}), which this engine cannot read \
                 (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q6_K; \
                 a Q4_K_M or Q8_0 file of the model loads)",
                ggml_type_name(t.ty),
                t.ty
            )));
        };
        let mut count: u64 = 1;
        for &d in &t.dims {
            if d == 0 {
                return Err(Refusal::Bad(format!(
                    "tensor `{name}` has a zero dimension {:?}",
                    t.dims
                )));
            }
            count = count
                .checked_mul(d)
                .filter(|c| *c <= len.saturating_mul(8))
                .ok_or_else(|| {
                    format!(
                        "tensor `{name}`: dimensions {:?} are larger than the file can hold",
                        t.dims
                    )
                })?;
        }
        if t.dims[0] % block != 0 {
            return Err(Refusal::Bad(format!(
                "tensor `{name}`: its rows of {} elements are not whole blocks of {block}",
                t.dims[0]
            )));
        }
        let bytes = (count / block)
            .checked_mul(type_size)
            .ok_or_else(|| format!("tensor `{name}`: size overflows"))?;
        if t.offset % alignment != 0 {
            return Err(Refusal::Bad(format!(
                "tensor `{name}`: offset {} is not a multiple of the alignment {alignment}",
                t.offset
            )));
        }
        let end = data_start
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(bytes))
            .ok_or_else(|| format!("tensor `{name}`: offset {} overflows", t.offset))?;
        if end > len {
            return Err(Refusal::Bad(format!(
                "truncated: tensor `{name}` ends at byte {end} but the file has {len} bytes"
            )));
        }
    }
    Ok(())
}
