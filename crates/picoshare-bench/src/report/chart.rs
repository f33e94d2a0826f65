//! What the bench's SVG charts ([`super::svg`], [`super::forest`]) are
//! drawn with: the palette, XML escaping, round axes, text laid out from an
//! estimate of its width (wrapped where it is too long), a chart's frame,
//! title and y axis. Why the charts are hand-written is in
//! [`super::svg`]'s header.

use std::fmt::Write as _;

use crate::report::Summaries;

/// Colour-blind-safe palette (Okabe & Ito, without the hard-to-see yellow).
const COLOURS: [&str; 7] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
];

/// Escapes text for XML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A round axis maximum at or above `x` and its tick step (1, 2, 2.5 or 5 × 10^k, about 5 ticks).
pub(super) fn nice_axis(x: f64) -> (f64, f64) {
    if !(x.is_finite() && x > 0.0) {
        return (1.0, 0.2);
    }
    let raw = x / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((x / step).ceil() * step, step)
}

/// Variant names in the order they first appear (the run's order).
pub(super) fn variants(summaries: &Summaries) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for g in &summaries.groups {
        if !names.contains(&g.key.variant.as_str()) {
            names.push(&g.key.variant);
        }
    }
    names
}

pub(super) fn colour(summaries: &Summaries, variant: &str) -> &'static str {
    let i = variants(summaries)
        .iter()
        .position(|v| *v == variant)
        .unwrap_or(0);
    COLOURS[i % COLOURS.len()]
}

/// Width of `text` in pixels at `font_px`, estimated generously (0.62 em a
/// character: as wide as a sans-serif's digits and most of its letters).
pub(super) fn text_width(text: &str, font_px: f64) -> f64 {
    text.chars().count() as f64 * 0.62 * font_px
}

/// `text` in lines at most `max_px` wide at `font_px`: broken at spaces and
/// after hyphens, and a piece longer than a line broken where it must.
pub(super) fn wrap(text: &str, max_px: f64, font_px: f64) -> Vec<String> {
    let per_line = ((max_px / (0.62 * font_px)).floor() as usize).max(1);
    // Pieces with what joins them to the one before: a space, or nothing
    // after a hyphen.
    let mut pieces: Vec<(&str, String)> = Vec::new();
    for (w, word) in text.split(' ').enumerate() {
        let mut join = if w == 0 { "" } else { " " };
        for part in word.split_inclusive('-') {
            let chars: Vec<char> = part.chars().collect();
            for chunk in chars.chunks(per_line) {
                pieces.push((join, chunk.iter().collect()));
                join = "";
            }
        }
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for (join, piece) in pieces {
        let len = line.chars().count() + join.len() + piece.chars().count();
        if line.is_empty() {
            line = piece;
        } else if len <= per_line {
            line.push_str(join);
            line.push_str(&piece);
        } else {
            lines.push(std::mem::replace(&mut line, piece));
        }
    }
    lines.push(line);
    lines
}

/// Opens an SVG document; `data` is extra attributes for the root element.
/// The title is wrapped to the width, a second line 18 px below the first
/// (the charts leave room for two).
pub(super) fn open(out: &mut String, width: f64, height: f64, title: &str, data: &str) {
    let _ = writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\"{data}>\n\
         <rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"white\"/>"
    );
    for (i, line) in wrap(title, width - 20.0, 15.0).iter().enumerate() {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>",
            width / 2.0,
            24.0 + 18.0 * i as f64,
            escape(line)
        );
    }
}

/// The plotting area of a chart, in pixels, and the value at its top.
pub(super) struct Frame {
    pub(super) left: f64,
    pub(super) top: f64,
    pub(super) width: f64,
    pub(super) height: f64,
    pub(super) y_max: f64,
}

impl Frame {
    /// Vertical pixel of value `v` (0 at the bottom edge).
    pub(super) fn y(&self, v: f64) -> f64 {
        self.top + self.height * (1.0 - v / self.y_max)
    }

    /// Horizontal grid lines every `step` with value labels, the axes, and the y-axis title.
    pub(super) fn y_axis(&self, out: &mut String, step: f64, label: &str) {
        let Frame {
            left,
            top,
            width,
            height,
            y_max,
        } = *self;
        for i in 0..=(y_max / step).round() as usize {
            let v = step * i as f64;
            let y = self.y(v);
            let _ = writeln!(
                out,
                "<line x1=\"{left}\" y1=\"{y:.2}\" x2=\"{:.2}\" y2=\"{y:.2}\" stroke=\"#ddd\"/>\n\
                 <text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"end\">{}</text>",
                left + width,
                left - 6.0,
                y + 4.0,
                trim_number(v)
            );
        }
        let bottom = top + height;
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"black\"/>\n\
             <line x1=\"{left}\" y1=\"{bottom}\" x2=\"{:.2}\" y2=\"{bottom}\" stroke=\"black\"/>\n\
             <text transform=\"translate({:.2} {:.2}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            left + width,
            left - 52.0,
            top + height / 2.0,
            escape(label)
        );
    }
}

/// A tick value without useless decimals.
fn trim_number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The note in the middle of a chart that has nothing to show.
pub(super) fn empty_note(out: &mut String, x: f64, y: f64, text: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{x:.2}\" y=\"{y:.2}\" text-anchor=\"middle\">{text}</text>"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_wrap_at_spaces_and_hyphens() {
        // 0.62 em at 10 px: 10 characters in 62 px.
        assert_eq!(
            wrap("base (8 clients)", 62.0, 10.0),
            ["base (8", "clients)"]
        );
        assert_eq!(
            wrap("tus-in-16-mib-patches", 62.0, 10.0),
            ["tus-in-16-", "mib-", "patches"]
        );
        assert_eq!(
            wrap("0123456789abcdef", 62.0, 10.0),
            ["0123456789", "abcdef"]
        );
        assert_eq!(wrap("short", 62.0, 10.0), ["short"]);
        assert_eq!(wrap("", 62.0, 10.0), [""]);
    }
}
