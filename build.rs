//! With the `cuda` feature, compiles kernels/*.cu to PTX (nvcc) for src/model/kernels/cuda_train_ops.rs.
//! The target is CUDA_COMPUTE_CAP (as candle's kernels use it; default 80, which runs on
//! Ampere and newer through the driver's JIT).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "80".into());
    let cap: String = cap.chars().filter(|c| c.is_ascii_digit()).collect();
    let nvcc = ["CUDA_ROOT", "CUDA_PATH", "CUDA_HOME"]
        .iter()
        .filter_map(std::env::var_os)
        .map(|root| PathBuf::from(root).join("bin/nvcc"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nvcc"));
    // One PTX module per kernels/*.cu file.
    let sources: Vec<PathBuf> = std::fs::read_dir("kernels")
        .expect("kernels/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .collect();
    for path in sources {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let src = path.display().to_string();
        let dst = out.join(format!("{name}.ptx"));
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3"])
            .arg(format!("-arch=compute_{cap}"))
            .arg(&src)
            .arg("-o")
            .arg(&dst)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "running {} for {src}: {e} (set CUDA_ROOT or put nvcc on PATH)",
                    nvcc.display()
                )
            });
        assert!(status.success(), "nvcc failed on {src}");
    }
}
