//! A data file, read as JSONL and as Parquet by the row readers train, eval and curate use.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary folder");
    }
    DIR.with(|d| {
        for name in ["rows.jsonl", "rows.parquet", "rows.json"] {
            let p = d.path().join(name);
            if std::fs::write(&p, data).is_err() {
                return;
            }
            let mut n = 0usize;
            let _ = s1_studio::data::read::for_each_row(&p, |row| {
                if let Ok(r) = row {
                    use s1_studio::data::record::{detect, to_record};
                    if let (shape, Some(map)) = detect(&r.columns) {
                        let _ = to_record(r.columns, &map, shape, "fuzz");
                    }
                }
                n += 1;
                n < 10_000
            });
        }
    });
});
