//! Which CUDA FlashAttention kernels the training attention runs: v1 (kernels/flash_attn.cu, checked
//! against the CPU op on an H200) or v2 (kernels/flash_attn_v2.cu: ldmatrix, cp.async double
//! buffering, swizzled shared tiles; not yet run on a GPU, only in the CPU emulator of
//! tests/flash_emulated.rs). The default stays v1 until a GPU run has
//! checked v2. `S1_FLASH_KERNEL=v1|v2` picks one for the process; [`set`] overrides it (the
//! attention bench times both in one run). Compiled without the `cuda` feature too, so that the CLI
//! parses the choice the same way everywhere.

use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that picks the kernels.
pub const ENV: &str = "S1_FLASH_KERNEL";

/// One version of the CUDA attention kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashKernel {
    /// kernels/flash_attn.cu, the default.
    V1,
    /// kernels/flash_attn_v2.cu.
    V2,
}

impl FlashKernel {
    /// The name `S1_FLASH_KERNEL` and `--kernel` take.
    pub fn name(self) -> &'static str {
        match self {
            FlashKernel::V1 => "v1",
            FlashKernel::V2 => "v2",
        }
    }

    /// The kernel a name stands for, if any.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "v1" => Some(FlashKernel::V1),
            "v2" => Some(FlashKernel::V2),
            _ => None,
        }
    }
}

/// Block shapes of the v2 kernels at one head size, as `Cfg<D>` of kernels/flash_attn_v2.cu states
/// them (the launcher derives threads, grids and shared memory from these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Cfg {
    /// Forward: warps per block (16 query rows each) and keys per shared tile.
    pub fwd_warps: usize,
    pub fwd_bc: usize,
    /// dK/dV: warps per block (16 keys each) and query rows per shared tile.
    pub kv_warps: usize,
    pub kv_bt: usize,
    /// dQ: warps per block (16 query rows each) and keys per shared tile.
    pub dq_warps: usize,
    pub dq_bc: usize,
}

/// v2's block shapes at head size `d` (64; anything else gets 128's, the other compiled size).
pub fn v2_cfg(d: usize) -> V2Cfg {
    if d == 64 {
        V2Cfg {
            fwd_warps: 8,
            fwd_bc: 64,
            kv_warps: 4,
            kv_bt: 64,
            dq_warps: 4,
            dq_bc: 64,
        }
    } else {
        V2Cfg {
            fwd_warps: 8,
            fwd_bc: 32,
            kv_warps: 4,
            kv_bt: 16,
            dq_warps: 4,
            dq_bc: 32,
        }
    }
}

/// The fewest dK/dV blocks v2 aims for (about 4 per SM of a 132-SM H100/H200): below it, a kv
/// head's query heads are split over more blocks.
pub const MIN_DKDV_BLOCKS: usize = 512;

/// Into how many parts v2's dK/dV kernel splits the `rep` query heads of each kv head, given
/// `blocks` blocks without splitting: the smallest divisor of `rep` that reaches
/// [`MIN_DKDV_BLOCKS`], else `rep` (each split costs f32 partial sums of dk and dv and a reduction).
pub fn dkdv_splits(rep: usize, blocks: usize) -> usize {
    (1..=rep.max(1))
        .find(|s| rep.is_multiple_of(*s) && blocks * s >= MIN_DKDV_BLOCKS)
        .unwrap_or(rep.max(1))
}

/// What [`set`] chose: 0 nothing (the environment decides), else 1 + the kernel's index.
static CHOSEN: AtomicU8 = AtomicU8::new(0);

/// Picks the kernels for the whole process (`None`: back to `S1_FLASH_KERNEL` or the default).
pub fn set(kernel: Option<FlashKernel>) {
    let v = match kernel {
        None => 0,
        Some(FlashKernel::V1) => 1,
        Some(FlashKernel::V2) => 2,
    };
    CHOSEN.store(v, Ordering::Relaxed);
}

/// The kernels to run: [`set`]'s choice, else `S1_FLASH_KERNEL`'s, else v1; an unknown value of
/// the variable is an error naming it.
pub fn current() -> Result<FlashKernel, String> {
    match CHOSEN.load(Ordering::Relaxed) {
        1 => Ok(FlashKernel::V1),
        2 => Ok(FlashKernel::V2),
        _ => from_env_value(std::env::var_os(ENV).as_deref()),
    }
}

/// The kernels a value of `S1_FLASH_KERNEL` stands for (unset or empty: v1).
pub fn from_env_value(value: Option<&std::ffi::OsStr>) -> Result<FlashKernel, String> {
    let Some(value) = value else {
        return Ok(FlashKernel::V1);
    };
    let text = value.to_string_lossy();
    let text = text.trim();
    if text.is_empty() {
        return Ok(FlashKernel::V1);
    }
    FlashKernel::parse(&text.to_ascii_lowercase()).ok_or_else(|| {
        format!("{ENV}={text:?} names no attention kernel: use v1 (the default, kernels/flash_attn.cu) or v2 (kernels/flash_attn_v2.cu)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn env_values() {
        assert_eq!(from_env_value(None), Ok(FlashKernel::V1));
        assert_eq!(from_env_value(Some(OsStr::new(""))), Ok(FlashKernel::V1));
        assert_eq!(from_env_value(Some(OsStr::new("v1"))), Ok(FlashKernel::V1));
        assert_eq!(from_env_value(Some(OsStr::new(" V2 "))), Ok(FlashKernel::V2));
        let e = from_env_value(Some(OsStr::new("v3"))).unwrap_err();
        assert!(
            e.contains("S1_FLASH_KERNEL") && e.contains("\"v3\"") && e.contains("v2"),
            "{e}"
        );
    }

    /// The launcher's shapes must be the kernel's: parse `template <> struct Cfg<D> { .. }` from
    /// the .cu and compare every field.
    #[test]
    fn v2_cfg_matches_the_kernel_source() {
        let src = include_str!("../../../kernels/flash_attn_v2.cu");
        for d in [64usize, 128] {
            let head = format!("template <> struct Cfg<{d}> {{");
            let at = src
                .find(&head)
                .unwrap_or_else(|| panic!("no {head} in flash_attn_v2.cu"));
            let body = &src[at + head.len()..];
            let body = &body[..body.find("};").expect("end of Cfg")];
            let field = |name: &str| -> usize {
                let i = body
                    .find(&format!("{name} = "))
                    .unwrap_or_else(|| panic!("Cfg<{d}> has no {name}"));
                let rest = &body[i + name.len() + 3..];
                let end = rest.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(rest.len());
                rest[..end].parse().expect("a number")
            };
            let from_source = V2Cfg {
                fwd_warps: field("FWD_WARPS"),
                fwd_bc: field("FWD_BC"),
                kv_warps: field("KV_WARPS"),
                kv_bt: field("KV_BT"),
                dq_warps: field("DQ_WARPS"),
                dq_bc: field("DQ_BC"),
            };
            assert_eq!(v2_cfg(d), from_source, "d = {d}");
        }
    }

    #[test]
    fn dkdv_splits_reach_enough_blocks_with_a_divisor() {
        // 0.5B at 1 x 4,096: 64 key blocks x 2 kv heads, 7 query heads each.
        assert_eq!(dkdv_splits(7, 128), 7);
        // 1 x 16,384: 512 blocks already.
        assert_eq!(dkdv_splits(7, 512), 1);
        // 1.5B (12 / 2 heads) at 1 x 2,048: 64 blocks; no divisor of 6 reaches 512, so all 6.
        assert_eq!(dkdv_splits(6, 64), 6);
        assert_eq!(dkdv_splits(6, 200), 3);
        assert_eq!(dkdv_splits(1, 8), 1);
        for (rep, blocks) in [(4, 100), (6, 130), (7, 1), (2, 300)] {
            let s = dkdv_splits(rep, blocks);
            assert!(
                rep % s == 0 && (blocks * s >= MIN_DKDV_BLOCKS || s == rep),
                "{rep} {blocks}: {s}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for k in [FlashKernel::V1, FlashKernel::V2] {
            assert_eq!(FlashKernel::parse(k.name()), Some(k));
        }
    }
}
