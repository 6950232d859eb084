//! The quality rules on the shared pool files flag exactly the rows Python's `re` and substring
//! tests flag (tests/fixtures/quality_rules.json, from scripts/make_quality_fixture.py): 700 + 377
//! `[asy]` questions in MATH, none kept for AIME, one bold-number question in each MATH file.

mod common;

use s1_studio::curate::quality::{asy, bold_number, enumeration, image};

#[test]
fn rules_flag_the_same_rows_as_the_reference() {
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("quality_rules.json")).unwrap()).unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    for (name, expect) in fixture.as_object().unwrap() {
        let text = std::fs::read_to_string(data.join(name)).unwrap_or_else(|e| panic!("this test needs {name}: {e}"));
        let field = expect["field"].as_str().unwrap();
        let aime = name.contains("aime");
        let mut got: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
        for (i, line) in text.lines().enumerate() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let q = row[field].as_str().unwrap();
            // The reference applies [asy] to every file; the AIME exception is checked below.
            for (rule, hit) in [
                ("asy", asy(q, false)),
                ("image", image(q)),
                ("enumeration", enumeration(q)),
                ("bold_number", bold_number(q)),
            ] {
                let v = got.entry(rule).or_default();
                if hit {
                    v.push(i as u64);
                }
            }
            if aime {
                assert!(!asy(q, true), "{name}:{}: AIME keeps its figures", i + 1);
            }
        }
        for (rule, rows) in &got {
            let want: Vec<u64> = expect["flagged"][rule]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(rows, &want, "{name}: rule {rule}");
        }
        eprintln!(
            "{name}: {}",
            got.iter()
                .map(|(r, v)| format!("{r} {}", v.len()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
