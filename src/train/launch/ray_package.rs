//! A run folder as a Ray working-directory package, for a cluster that does not see this
//! machine's files: zipped here (what the job needs: scripts, data, a model copy; not the
//! checkpoints, logs or job records a run leaves behind), uploaded through the dashboard's
//! package endpoint (`PUT /api/packages/gcs/_ray_pkg_<hash>.zip`, as `ray job submit
//! --working-dir` does), and named in the job's `runtime_env.working_dir`. Ray unpacks it on every
//! node that runs a part of the job, as that part's working directory.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Ray's limit on a working-directory package.
pub const MAX_BYTES: u64 = 500 * 1024 * 1024;

/// A zipped run folder and its content-addressed name.
pub struct Package {
    /// `_ray_pkg_<hash>.zip`
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Package {
    /// `gcs://_ray_pkg_<hash>.zip`, as `runtime_env.working_dir` names it.
    pub fn uri(&self) -> String {
        format!("gcs://{}", self.name)
    }
}

/// Whether `rel` (a path inside the run folder) is something a run leaves behind rather than
/// something the job needs.
fn left_behind(rel: &Path) -> bool {
    let Some(first) = rel.components().next().and_then(|c| c.as_os_str().to_str()) else {
        return false;
    };
    first.starts_with("checkpoint-")
        || first.starts_with("slurm-")
        || [
            "trainer_log.jsonl",
            "ray_trainer_log.jsonl",
            "launch.log",
            "launch.json",
            super::ray::RAY_FILE,
            super::slurm::SLURM_FILE,
            super::sky::SKY_FILE,
            super::sky::JOB_LOG,
        ]
        .contains(&first)
}

fn files(dir: &Path, root: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let rel = p.strip_prefix(root).unwrap_or(&p);
        if left_behind(rel) {
            continue;
        }
        if p.is_dir() {
            files(&p, root, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// Zips the run folder `out` (files at the package's top, as Ray unpacks a `gcs://` package).
/// Refuses a folder past Ray's limit, saying what makes it large.
pub fn package(out: &Path) -> Result<Package, String> {
    let mut list = Vec::new();
    files(out, out, &mut list)?;
    let total: u64 = list.iter().filter_map(|p| p.metadata().ok()).map(|m| m.len()).sum();
    if total > MAX_BYTES {
        return Err(format!(
            "{} holds {:.0} MiB for the job (Ray takes a working directory of at most {} MiB): export with \
             --remote-model naming the model on the cluster (a Hugging Face id or a path there) instead of \
             copying it into the folder",
            out.display(),
            total as f64 / 1048576.0,
            MAX_BYTES / 1048576
        ));
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut hash = Sha256::new();
    for p in &list {
        let rel = p.strip_prefix(out).unwrap_or(p);
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        hash.update(name.as_bytes());
        hash.update((data.len() as u64).to_le_bytes());
        hash.update(&data);
        // Scripts keep their mode (launch.sh runs through bash either way).
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o644);
        zip.start_file(name.as_str(), opts)
            .and_then(|_| zip.write_all(&data).map_err(zip::result::ZipError::from))
            .map_err(|e| format!("zipping {}: {e}", p.display()))?;
    }
    let bytes = zip
        .finish()
        .map_err(|e| format!("zipping {}: {e}", out.display()))?
        .into_inner();
    let digest = hash.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Ok(Package {
        name: format!("_ray_pkg_{hex}.zip"),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_holds_what_the_job_needs_and_its_name_follows_the_content() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path();
        std::fs::create_dir_all(out.join("data")).unwrap();
        std::fs::create_dir_all(out.join("checkpoint-3")).unwrap();
        std::fs::write(out.join("train.py"), "print(1)").unwrap();
        std::fs::write(out.join("data/train.parquet"), b"PAR1").unwrap();
        std::fs::write(out.join("checkpoint-3/model.safetensors"), b"x").unwrap();
        std::fs::write(out.join("trainer_log.jsonl"), "{}").unwrap();
        std::fs::write(out.join("ray_job.json"), "{}").unwrap();
        std::fs::write(out.join("sky_job.json"), "{}").unwrap();
        std::fs::write(out.join("sky_job.log"), "launched").unwrap();
        let p = package(out).unwrap();
        assert!(
            p.name.starts_with("_ray_pkg_") && p.name.ends_with(".zip"),
            "{}",
            p.name
        );
        assert_eq!(p.uri(), format!("gcs://{}", p.name));
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(p.bytes.clone())).unwrap();
        let mut names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["data/train.parquet", "train.py"]);
        // Outputs do not change the name; the job's files do.
        std::fs::write(out.join("launch.log"), "more").unwrap();
        assert_eq!(package(out).unwrap().name, p.name);
        std::fs::write(out.join("train.py"), "print(2)").unwrap();
        assert_ne!(package(out).unwrap().name, p.name);
        assert!(package(&out.join("missing")).err().unwrap().contains("missing"));
    }
}
