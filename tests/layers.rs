//! Imports only go down (DESIGN.md's layers): every `crate::…`, `super::…` (resolved to its
//! module) and, in src/main.rs, `s1_studio::…` path in src/**/*.rs outside comments and string
//! literals is checked against the rules below, and each breach is named with its file:line.
//!
//! To add a rule, write a `fn(&Ref) -> Option<String>` (the breach, said plainly) and list it in
//! [`RULES`], with a case in `the_checker_sees_what_it_should`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top first: a module may import the modules of any layer below its own, and of its
/// own layer only as [`PEERS`] lists. `main` is the binary (src/main.rs).
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["cli", "ui"],
    &["serve"],
    &["jobs"],
    &["curate"],
    &["eval"],
    &["train", "generate", "hub"],
    &["model", "grade", "data", "workspace"],
    &["cancel", "pytext"],
];

/// Imports between modules of one layer, all others of a layer being forbidden: (from, to, why).
const PEERS: &[(&str, &str, &str)] = &[("cli", "ui", "`s1-studio ui` opens the desktop app")];

/// The rules every reference must keep.
const RULES: &[fn(&Ref) -> Option<String>] = &[imports_go_down, views_never_import_the_shell];

/// A path one module names: `from` is the referring module (the file's, plus any inline `mod`),
/// `to` the absolute path it names (without `crate`), e.g. `["jobs", "CancelToken"]`.
#[derive(Debug, Clone, PartialEq)]
struct Ref {
    file: PathBuf,
    line: usize,
    from: Vec<String>,
    to: Vec<String>,
}

fn layer(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

/// DESIGN.md's layers: down, never up, and sideways only as [`PEERS`] allows.
fn imports_go_down(r: &Ref) -> Option<String> {
    let (from, to) = (r.from.first()?.as_str(), r.to.first()?.as_str());
    if from == to {
        return None;
    }
    let (lf, lt) = (layer(from)?, layer(to)?);
    let peer = lf == lt && PEERS.iter().any(|(a, b, _)| (*a, *b) == (from, to));
    (lt <= lf && !peer).then(|| {
        let how = if lt < lf {
            "a layer above it"
        } else {
            "a module beside it"
        };
        format!(
            "{from} imports {} ({how}; DESIGN.md: imports only go down)",
            r.to.join("::")
        )
    })
}

/// Inside src/ui only the shell (ui::app, and ui/mod.rs's re-export) names the app: a view gets
/// its own state and a command sender (STYLE.md 13), which keeps the views out of an import loop.
fn views_never_import_the_shell(r: &Ref) -> Option<String> {
    let in_view = r.from.first().is_some_and(|m| m == "ui") && r.from.get(1).is_some_and(|m| m != "app");
    let names_app = r.to.starts_with(&["ui".to_string(), "app".to_string()]) || r.to == ["ui", "StudioApp"];
    (in_view && names_app).then(|| format!("ui::{} imports the app shell ({})", r.from[1], r.to.join("::")))
}

// ---------------------------------------------------------------------------------------------
// Reading the sources.

/// The module path of a file under src/: src/a/b.rs and src/a/b/mod.rs are `a::b`, src/main.rs
/// is `main` (the binary), src/lib.rs the root.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .components()
        .skip(1)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if !matches!(stem, "mod" | "lib") {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The source with comments, string, byte-string and char literals blanked (lines kept).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        if peek(&c, i) == '/' && peek(&c, i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
                out.push(' ');
            }
        } else if peek(&c, i) == '/' && peek(&c, i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && peek(&c, i + 1) == '*' {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && peek(&c, i + 1) == '/' {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if !prev_ident && (peek(&c, i) == 'r' || (peek(&c, i) == 'b' && peek(&c, i + 1) == 'r')) && {
            let k = if peek(&c, i) == 'b' { 1 } else { 0 };
            let mut h = 1;
            while peek(&c, i + k + h) == '#' {
                h += 1;
            }
            peek(&c, i + k + h) == '"'
        } {
            // A raw string: r"…", r#"…"#, br"…".
            let k = if peek(&c, i) == 'b' { 1 } else { 0 };
            let mut hashes = 0;
            while peek(&c, i + k + 1 + hashes) == '#' {
                hashes += 1;
            }
            let open = k + 2 + hashes;
            for _ in 0..open {
                out.push(' ');
            }
            i += open;
            while i < c.len() {
                if c[i] == '"' && (0..hashes).all(|h| c.get(i + 1 + h) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if peek(&c, i) == '"' || (peek(&c, i) == 'b' && peek(&c, i + 1) == '"' && !prev_ident) {
            if peek(&c, i) == 'b' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
            while i < c.len() {
                match c[i] {
                    '\\' => {
                        out.push(' ');
                        if let Some(&n) = c.get(i + 1) {
                            blank(&mut out, n);
                        }
                        i += 2;
                    }
                    '"' => {
                        out.push(' ');
                        i += 1;
                        break;
                    }
                    ch => {
                        blank(&mut out, ch);
                        i += 1;
                    }
                }
            }
        } else if peek(&c, i) == '\'' && !prev_ident {
            // A char literal ('x', '\n', '\u{7b}'), or a lifetime ('a): left as it is.
            let end = if peek(&c, i + 1) == '\\' {
                (2..12).find(|&k| peek(&c, i + k) == '\'')
            } else if peek(&c, i + 2) == '\'' {
                Some(2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    for _ in 0..=e {
                        out.push(' ');
                    }
                    i += e + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The char at `i`, or NUL past the end.
fn peek(c: &[char], i: usize) -> char {
    c.get(i).copied().unwrap_or('\0')
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path, // ::
    Open,
    Close,
    Comma,
    Star,
    Other(char),
}

fn tokens(stripped: &str) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    for (n, line) in stripped.lines().enumerate() {
        let c: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < c.len() {
            let ch = c[i];
            if ch.is_alphabetic() || ch == '_' {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                let mut word: String = c[start..i].iter().collect();
                // A raw identifier r#name reads as name.
                if word == "r" && c.get(i) == Some(&'#') {
                    let s = i + 1;
                    i = s;
                    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                        i += 1;
                    }
                    word = c[s..i].iter().collect();
                }
                out.push((Tok::Ident(word), n + 1));
                continue;
            }
            let tok = match ch {
                ':' if c.get(i + 1) == Some(&':') => {
                    i += 1;
                    Tok::Path
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                '*' => Tok::Star,
                c if c.is_whitespace() => {
                    i += 1;
                    continue;
                }
                c => Tok::Other(c),
            };
            out.push((tok, n + 1));
            i += 1;
        }
    }
    out
}

/// Reads a path (or a `use` tree) from `toks[i]` on, after `prefix`; pushes each full path with
/// the line of its last segment. Returns the index after it.
fn path_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    prefix: Vec<String>,
    line: usize,
    out: &mut Vec<(Vec<String>, usize)>,
) -> usize {
    match toks.get(i) {
        Some((Tok::Open, _)) => {
            i += 1;
            while let Some((t, _)) = toks.get(i) {
                match t {
                    Tok::Close => return i + 1,
                    Tok::Comma => i += 1,
                    _ => {
                        let next = path_tree(toks, i, prefix.clone(), line, out);
                        i = if next == i { i + 1 } else { next };
                    }
                }
            }
            i
        }
        Some((Tok::Star, l)) => {
            out.push((prefix, *l));
            i + 1
        }
        Some((Tok::Ident(name), l)) => {
            let mut path = prefix;
            if name != "self" {
                path.push(name.clone());
            }
            i += 1;
            let more = matches!(toks.get(i), Some((Tok::Path, _)))
                && matches!(toks.get(i + 1), Some((Tok::Ident(_) | Tok::Open | Tok::Star, _)));
            if more {
                path_tree(toks, i + 1, path, *l, out)
            } else {
                out.push((path, *l));
                i
            }
        }
        _ => {
            out.push((prefix, line));
            i
        }
    }
}

/// Every module path `file` (at `rel`, e.g. src/train/step.rs) names.
fn refs(rel: &Path, text: &str) -> Vec<Ref> {
    let toks = tokens(&strip(text));
    let file_module = module_of(rel);
    let is_main = rel == Path::new("src/main.rs");
    let mut out = Vec::new();
    // Inline modules (`mod tests { … }`): their name and the brace depth inside them.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = (&toks[i].0, toks[i].1);
        let at_path_start = i == 0 || !matches!(toks[i - 1].0, Tok::Path | Tok::Other('$'));
        match tok {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                while inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Open, _))) = (toks.get(i + 1), toks.get(i + 2)) {
                    inline.push((name.clone(), depth + 1));
                }
            }
            Tok::Ident(w)
                if at_path_start
                    && matches!(toks.get(i + 1), Some((Tok::Path, _)))
                    && (w == "crate" || w == "super" || (is_main && w == "s1_studio")) =>
            {
                let mut module = file_module.clone();
                module.extend(inline.iter().map(|(n, _)| n.clone()));
                let from = if is_main {
                    vec!["main".to_string()]
                } else {
                    module.clone()
                };
                let mut base = Vec::new();
                let mut j = i;
                if w == "super" {
                    base = module;
                    while matches!(&toks.get(j), Some((Tok::Ident(s), _)) if s == "super")
                        && matches!(toks.get(j + 1), Some((Tok::Path, _)))
                    {
                        if base.pop().is_none() {
                            break;
                        }
                        j += 2;
                    }
                } else {
                    j += 2;
                }
                let mut paths = Vec::new();
                let next = path_tree(&toks, j, base, line, &mut paths);
                for (to, line) in paths {
                    out.push(Ref {
                        file: rel.to_path_buf(),
                        line,
                        from: from.clone(),
                        to,
                    });
                }
                i = next.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(root).unwrap().to_path_buf(), text)
        })
        .collect()
}

/// The breaches of [`RULES`] in these files, as `file:line: what`.
fn breaches(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in files {
        for r in refs(rel, text) {
            for rule in RULES {
                if let Some(why) = rule(&r) {
                    out.push(format!("{}:{}: {why}", r.file.display(), r.line));
                }
            }
        }
    }
    out
}

#[test]
fn no_module_imports_one_above_it() {
    let found = breaches(&sources());
    assert!(
        found.is_empty(),
        "imports that break tests/layers.rs's rules:\n{}",
        found.join("\n")
    );
}

/// Every top module is placed in a layer, and every peer import listed is one the code makes
/// (so the table stays exact).
#[test]
fn the_table_is_exact() {
    let files = sources();
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|(rel, _)| module_of(rel).into_iter().next())
        .chain(std::iter::once("main".to_string()))
        .collect();
    for t in &tops {
        assert!(
            layer(t).is_some(),
            "src/{t}: place it in a layer of tests/layers.rs's LAYERS"
        );
    }
    let mut edges: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (rel, text) in &files {
        for r in refs(rel, text) {
            if let (Some(a), Some(b)) = (r.from.first(), r.to.first()) {
                if a != b && tops.contains(b) {
                    *edges.entry((a.clone(), b.clone())).or_default() += 1;
                }
            }
        }
    }
    for (a, b, _) in PEERS {
        assert!(
            edges.contains_key(&(a.to_string(), b.to_string())),
            "PEERS allows {a} -> {b}, which nothing imports any more: remove it"
        );
    }
    // The graph, for `cargo test --test layers -- --nocapture`.
    for ((a, b), n) in &edges {
        eprintln!("{a} -> {b}: {n} paths");
    }
}

/// The checker itself: an upward import is named with its line; comments, strings and chars do
/// not count; `super::` resolves through inline modules; `use` groups are read item by item.
#[test]
fn the_checker_sees_what_it_should() {
    let src = r#"//! use crate::jobs::X in a comment
use crate::model::DeviceChoice;
/* use crate::ui::App; */
const S: &str = "crate::jobs::CancelToken";
const C: char = '{';
fn f<'a>(x: &'a str) -> &'a str { x }
use crate::{
    data::Record,
    jobs::{job::Job, CancelToken},
};
mod tests {
    use super::super::step;
    fn g() { let _ = super::super::super::cli::run; }
}
"#;
    let file = PathBuf::from("src/train/probe.rs");
    let found = breaches(&[(file.clone(), src.to_string())]);
    assert_eq!(
        found,
        [
            "src/train/probe.rs:9: train imports jobs::job::Job (a layer above it; DESIGN.md: imports only go down)",
            "src/train/probe.rs:9: train imports jobs::CancelToken (a layer above it; DESIGN.md: imports only go down)",
            "src/train/probe.rs:13: train imports cli::run (a layer above it; DESIGN.md: imports only go down)",
        ]
    );
    let r = refs(&file, src);
    assert!(r
        .iter()
        .any(|r| r.to == ["train", "step"] && r.from == ["train", "probe", "tests"]));
    assert!(r.iter().any(|r| r.to == ["data", "Record"] && r.line == 8));
    // Down is fine, beside is not: grade may read pytext (below it), not model (beside it).
    let found = breaches(&[(
        PathBuf::from("src/grade/x.rs"),
        "use crate::model::X;\nuse crate::pytext::Y;\n".into(),
    )]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("src/grade/x.rs:1: grade imports model::X (a module beside it"));
    // A view never names the shell; the shell and ui/mod.rs may.
    let view = "use super::app::StudioApp;\nuse super::settings::Settings;\n";
    let found = breaches(&[
        (PathBuf::from("src/ui/chat_ui.rs"), view.into()),
        (
            PathBuf::from("src/ui/mod.rs"),
            "pub use app::StudioApp;\nuse self::app::X;\n".into(),
        ),
        (PathBuf::from("src/ui/app.rs"), "use super::app::Y;\n".into()),
    ]);
    assert_eq!(
        found,
        ["src/ui/chat_ui.rs:1: ui::chat_ui imports the app shell (ui::app::StudioApp)"]
    );
}
