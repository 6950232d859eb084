//! The grader over a model's output (before the first NUL) and a reference (after it): every
//! extraction and kind, and the equivalence rules, on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s1_studio::grade::{equiv, grade_with, Extraction, Kind};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (response, reference) = text.split_once('\0').unwrap_or((&text, "42"));
    for kind in [Kind::Math, Kind::Aime, Kind::Gsm8k, Kind::Mc] {
        for ex in [Extraction::S1, Extraction::Lenient] {
            let _ = grade_with(response, reference, kind, ex);
        }
    }
    let _ = equiv::math_equivalent(response, reference);
});
