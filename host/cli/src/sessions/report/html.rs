//! `--html FILE`: the report as one self-contained page (the summary, the thresholds, why sessions failed, and
//! plots of the time series drawn by uPlot, inlined so the file reads offline).

use super::{MaxFailures, Report};

const TEMPLATE: &str = include_str!("../report.html");
const UPLOT_JS: &str = include_str!("../../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../../assets/uplot/uPlot.min.css");

/// The page of `report`, with its verdict under `max`.
pub fn page(report: &Report, max: MaxFailures) -> Result<String, String> {
    // The report goes in a <script> element: no `<` may close it early (text from peers and guests is in it).
    let data = report.to_json(max)?.replace('<', "\\u003c");
    let title = format!("wsrun: {} sessions of {} against {}", report.sessions, report.guest, report.url);
    let values = [
        ("TITLE", escape_html(&title)),
        ("SUMMARY", escape_html(&report.summary(max))),
        ("UPLOT_CSS", UPLOT_CSS.to_owned()),
        ("UPLOT_JS", UPLOT_JS.to_owned()),
        ("DATA", data),
    ];
    Ok(fill(TEMPLATE, &values))
}

/// Write the page, whole or not at all.
pub fn write(path: &std::path::Path, report: &Report, max: MaxFailures) -> Result<(), String> {
    let page = page(report, max)?;
    super::super::write_whole(path, page.as_bytes()).map_err(|e| format!("cannot write --html {}: {e}", path.display()))
}

/// The template with each `{{NAME}}` replaced in one pass over the template alone, so a value that happens to hold
/// `{{...}}` stays as it is.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut page = String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        page.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").and_then(|end| values.iter().find(|(name, _)| *name == &after[..end]).map(|v| (end, v)))
        {
            Some((end, (_, value))) => {
                page.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                page.push_str("{{");
                rest = after;
            }
        }
    }
    page.push_str(rest);
    page
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once_and_values_left_alone() {
        let page = fill("<t>{{A}}</t>{{B}}{{C}}", &[("A", "{{B}}<".to_owned()), ("B", "b".to_owned())]);
        assert_eq!(page, "<t>{{B}}<</t>b{{C}}");
        assert_eq!(escape_html("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }
}
