//! The pool map's colourings: each row's colour and the legend for a [`ColourBy`], computed
//! from a snapshot once per change (on the map's own thread for a large pool, see
//! pool_map_state.rs). Pure functions, no drawing.

use std::collections::HashMap;

use eframe::egui::Color32;

use crate::curate::steps::snapshot::{PoolRow, PoolSnapshot};

/// What the points' colours say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColourBy {
    #[default]
    Stage,
    Source,
    Domain,
    Selected,
    TraceLength,
}

impl ColourBy {
    pub const ALL: [ColourBy; 5] = [
        ColourBy::Stage,
        ColourBy::Source,
        ColourBy::Domain,
        ColourBy::Selected,
        ColourBy::TraceLength,
    ];
    pub fn label(self) -> &'static str {
        match self {
            ColourBy::Stage => "funnel stage",
            ColourBy::Source => "source",
            ColourBy::Domain => "domain",
            ColourBy::Selected => "selected or not",
            ColourBy::TraceLength => "trace length",
        }
    }
}

/// Twelve colours told apart on a dark background (Tableau-like), then grey for the rest.
const PALETTE: [Color32; 12] = [
    Color32::from_rgb(78, 161, 235),
    Color32::from_rgb(242, 142, 43),
    Color32::from_rgb(89, 200, 120),
    Color32::from_rgb(225, 87, 89),
    Color32::from_rgb(176, 122, 225),
    Color32::from_rgb(237, 201, 72),
    Color32::from_rgb(118, 215, 215),
    Color32::from_rgb(255, 157, 180),
    Color32::from_rgb(156, 117, 95),
    Color32::from_rgb(186, 220, 88),
    Color32::from_rgb(130, 140, 250),
    Color32::from_rgb(250, 190, 130),
];
const OTHER: Color32 = Color32::from_rgb(110, 110, 118);
const PASSED: Color32 = Color32::from_rgb(78, 161, 235);
const SELECTED_GOLD: Color32 = Color32::from_rgb(255, 196, 40);
const DIM: Color32 = Color32::from_rgb(72, 82, 100);

/// The colour at 75% brightness, opaque.
fn darker(c: Color32) -> Color32 {
    let f = |x: u8| (x as f32 * 0.75) as u8;
    Color32::from_rgb(f(c.r()), f(c.g()), f(c.b()))
}

/// Blue to yellow through green (viridis-like), t in 0..=1.
fn ramp(t: f32) -> Color32 {
    let t = t.clamp(0.0, 1.0);
    let stops = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = t * (stops.len() - 1) as f32;
    let i = (x as usize).min(stops.len() - 2);
    let f = x - i as f32;
    let (a, b) = (stops[i], stops[i + 1]);
    let m = |p: f32, q: f32| (p + (q - p) * f) as u8;
    Color32::from_rgb(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// A row's label as the table names it, borrowed (no String per row: a million of them were
/// most of a colouring's time).
fn label_of<'a>(r: &'a PoolRow, by: ColourBy, stage_names: &'a [String]) -> &'a str {
    match by {
        ColourBy::Source => r.source.as_str(),
        ColourBy::Domain => r.domain.as_deref().unwrap_or("no domain"),
        _ => match r.dropped_at {
            None if r.selected => "selected",
            None => "passed",
            Some(i) => stage_names.get(i as usize).map_or("out: ", String::as_str),
        },
    }
}

/// Each row's category (an index into the returned names) and each category's count: one hash
/// lookup per row (foldhash: the rows' labels are short strings).
fn categorise<'a>(rows: &'a [PoolRow], label: impl Fn(&'a PoolRow) -> &'a str) -> (Vec<u32>, Vec<&'a str>, Vec<usize>) {
    let mut ids: HashMap<&str, u32, foldhash::fast::FixedState> = HashMap::default();
    let (mut names, mut counts) = (Vec::new(), Vec::new());
    let mut of_row = Vec::with_capacity(rows.len());
    for r in rows {
        let l = label(r);
        let id = *ids.entry(l).or_insert_with(|| {
            names.push(l);
            counts.push(0usize);
            (names.len() - 1) as u32
        });
        counts[id as usize] += 1;
        of_row.push(id);
    }
    (of_row, names, counts)
}

/// Each row's colour and the legend for `by`.
pub fn colours(s: &PoolSnapshot, by: ColourBy) -> (Vec<Color32>, Vec<(String, Color32)>) {
    match by {
        ColourBy::Source | ColourBy::Domain | ColourBy::Stage => categorical(s, by),
        ColourBy::Selected => {
            let cols = s
                .rows
                .iter()
                .map(|r| if r.selected { SELECTED_GOLD } else { DIM })
                .collect();
            (
                cols,
                vec![("selected".into(), SELECTED_GOLD), ("not selected".into(), DIM)],
            )
        }
        ColourBy::TraceLength => {
            let max = s.rows.iter().filter_map(|r| r.tokens).max().unwrap_or(0).max(2) as f32;
            let cols = s
                .rows
                .iter()
                .map(|r| match r.tokens {
                    Some(t) => ramp((1.0 + t as f32).ln() / (1.0 + max).ln()),
                    None => OTHER,
                })
                .collect();
            let legend = vec![
                ("short".into(), ramp(0.2)),
                (format!("{} tokens", max as usize), ramp(1.0)),
                ("not measured".into(), OTHER),
            ];
            (cols, legend)
        }
    }
}

/// Source, domain or funnel stage: categories ordered by size (largest first, then by name),
/// each of the first twelve given a palette colour, the rest grey. By stage, the two that
/// matter most keep their colours whatever the counts (passed in blue, selected in gold, drawn
/// over the pool), and the stages that dropped questions take the palette's muted rest (not
/// blue, red (the contamination ring) or gold).
fn categorical(s: &PoolSnapshot, by: ColourBy) -> (Vec<Color32>, Vec<(String, Color32)>) {
    let stage_names: Vec<String> = s.stages.iter().map(|st| format!("out: {}", st.name)).collect();
    let (of_row, names, counts) = categorise(&s.rows, |r| label_of(r, by, &stage_names));
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(names[a].cmp(names[b])));
    let mut drops = PALETTE
        .iter()
        .enumerate()
        .filter(|(i, _)| ![0, 3, 5].contains(i))
        .map(|(_, c)| *c)
        .cycle();
    let mut colour_of = vec![OTHER; names.len()];
    let mut legend = Vec::new();
    for (rank, &cat) in order.iter().take(PALETTE.len()).enumerate() {
        let name = names[cat];
        let c = match (by, name) {
            (ColourBy::Stage, "passed") => PASSED,
            (ColourBy::Stage, "selected") => SELECTED_GOLD,
            (ColourBy::Stage, _) => darker(drops.next().unwrap_or(OTHER)),
            _ => PALETTE[rank],
        };
        colour_of[cat] = c;
        legend.push((name.to_string(), c));
    }
    if names.len() > PALETTE.len() {
        legend.push((format!("{} more", names.len() - PALETTE.len()), OTHER));
    }
    let cols = of_row.iter().map(|&c| colour_of[c as usize]).collect();
    (cols, legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: &str, dropped_at: Option<u8>, selected: bool) -> PoolRow {
        PoolRow {
            source: source.into(),
            dropped_at,
            selected,
            ..Default::default()
        }
    }

    #[test]
    fn categories_are_ordered_by_size_and_the_thirteenth_is_grey() {
        let mut rows = Vec::new();
        for i in 0..14 {
            for _ in 0..(20 - i) {
                rows.push(row(&format!("s{i:02}"), None, false));
            }
        }
        let s = PoolSnapshot {
            rows,
            ..Default::default()
        };
        let (cols, legend) = colours(&s, ColourBy::Source);
        assert_eq!(legend.len(), 13, "twelve named, then \"2 more\"");
        assert_eq!(legend[0], ("s00".to_string(), PALETTE[0]));
        assert_eq!(legend[11], ("s11".to_string(), PALETTE[11]));
        assert_eq!(legend[12].0, "2 more");
        assert_eq!(cols[0], PALETTE[0]);
        assert_eq!(*cols.last().expect("rows"), OTHER, "s13 is past the palette");
    }

    #[test]
    fn by_stage_passed_is_blue_and_selected_gold_whatever_the_counts() {
        let mut rows = vec![row("a", None, true)];
        rows.extend((0..5).map(|_| row("a", Some(0), false)));
        rows.extend((0..3).map(|_| row("a", None, false)));
        let s = PoolSnapshot {
            rows,
            stages: vec![crate::curate::funnel::Stage {
                name: "length".into(),
                kept: 4,
                dropped: 5,
                note: String::new(),
            }],
            ..Default::default()
        };
        let (cols, legend) = colours(&s, ColourBy::Stage);
        assert_eq!(cols[0], SELECTED_GOLD);
        assert_eq!(cols[8], PASSED);
        let names: Vec<&str> = legend.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["out: length", "passed", "selected"]);
        assert_ne!(cols[1], PASSED);
        assert_ne!(cols[1], SELECTED_GOLD);
        assert_eq!(cols[1], legend[0].1);
    }
}
