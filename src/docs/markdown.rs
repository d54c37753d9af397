//! Markdown to HTML for the docs pages (pulldown-cmark, CommonMark with tables). Raw HTML in
//! a source is shown as text, never passed through, so every page stays within the CSP (no
//! inline script or style) whatever its Markdown says.

use pulldown_cmark::{Event, Options, Parser, html};

/// `source` as HTML, its raw HTML escaped as text.
pub fn to_html(source: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(source, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_text() {
        let out =
            to_html("# Title\n\n<script>alert(1)</script>\n\nA <b onclick=\"x\">b</b> `<i>`\n");
        assert!(out.contains("<h1>Title</h1>"), "{out}");
        assert!(!out.contains("<script"), "{out}");
        assert!(
            out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{out}"
        );
        assert!(!out.contains("<b "), "{out}");
        assert!(out.contains("<code>&lt;i&gt;</code>"), "{out}");
    }

    #[test]
    fn tables_render() {
        let out = to_html("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(
            out.contains("<table>") && out.contains("<td>2</td>"),
            "{out}"
        );
    }
}
