//! The test-time-scaling plot as SVG: accuracy against mean thinking tokens, one point per
//! setting, joined in order of length, each labelled with its setting; above it Control (share
//! of settings in bounds, and of runs), Scaling with its unit, and Performance.

use std::fmt::Write;

use super::metrics::SweepMetrics;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// An SVG document of `m`'s settings, titled `title`.
pub fn scaling_svg(m: &SweepMetrics, title: &str) -> String {
    let (w, h, l, r, t, b) = (720.0, 456.0, 70.0, 30.0, 66.0, 60.0);
    let curves = super::metrics::curves(m);
    let pts: Vec<(f64, f64, &str)> = curves.iter().flat_map(|c| c.1.iter().copied()).collect();
    let xmax = pts.iter().map(|p| p.0).fold(1.0, f64::max) * 1.08;
    let x = |v: f64| l + (w - l - r) * v / xmax;
    let y = |v: f64| h - b - (h - t - b) * v / 100.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    for i in 0..=5 {
        let v = 20.0 * i as f64;
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{}" y1="{y0}" y2="{y0}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{v}</text>"##,
            w - r,
            l - 8.0,
            y(v) + 4.0,
            y0 = y(v)
        );
        let xv = xmax * i as f64 / 5.0;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{:.0}</text>"#,
            x(xv),
            h - b + 18.0,
            xv
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{l}" x2="{l}" y1="{t}" y2="{}" stroke="#333"/><line x1="{l}" x2="{}" y1="{}" y2="{}" stroke="#333"/>"##,
        h - b,
        w - r,
        h - b,
        h - b
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">mean thinking tokens</text><text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">accuracy (%)</text>"#,
        (l + w - r) / 2.0,
        h - 18.0,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0
    );
    const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    for (ci, (name, cpts)) in curves.iter().enumerate() {
        let color = COLORS[ci % COLORS.len()];
        let path: Vec<String> = cpts.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1))).collect();
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for p in cpts {
            // labels near the right edge extend to the left of their point
            let right = x(p.0) > w - r - 120.0;
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#555" text-anchor="{}">{}</text>"##,
                x(p.0),
                y(p.1),
                x(p.0) + if right { -6.0 } else { 6.0 },
                y(p.1) - 6.0,
                if right { "end" } else { "start" },
                esc(p.2)
            );
        }
        let ly = t + 16.0 + 16.0 * ci as f64;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="3" fill="{color}"/><text x="{}" y="{}" font-size="11">{}</text>"#,
            l + 12.0,
            ly - 4.0,
            l + 30.0,
            ly,
            esc(name)
        );
    }
    let lines = [
        format!(
            "Control {:.0}% of settings in bounds ({:.0}% of runs)   Performance {:.1}%",
            m.control, m.control_runs, m.performance
        ),
        format!(
            "Scaling {}",
            m.scaling_per_1k_tokens
                .map(|v| format!("{v:.2} {}", super::metrics::SCALING_PER_1K_UNIT))
                .unwrap_or_else(|| "- (one length)".into()),
        ),
    ];
    for (i, line) in lines.iter().enumerate() {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#333">{}</text>"##,
            w - r,
            t - 24.0 + 16.0 * i as f64,
            esc(line)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::sweep::Sample;

    /// The plot states Scaling's unit and both Control figures.
    #[test]
    fn plot_states_the_units() {
        let mk = |setting: &str, tokens: usize, correct: bool| Sample {
            setting: setting.into(),
            question_id: "q".into(),
            thinking_tokens: tokens,
            max_thinking: Some(100),
            verdict: if correct {
                crate::grade::Verdict::Correct
            } else {
                crate::grade::Verdict::Incorrect
            },
            ..Sample::default()
        };
        let m = crate::eval::metrics::compute(&[mk("max=50 waits=0", 40, false), mk("max=100 waits=0", 90, true)]);
        let svg = scaling_svg(&m, "t");
        assert!(
            svg.contains("Scaling 2000.00 accuracy points per 1k thinking tokens"),
            "{svg}"
        );
        assert!(
            svg.contains("Control 100% of settings in bounds (100% of runs)"),
            "{svg}"
        );
    }
}
