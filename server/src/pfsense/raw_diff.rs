//! The line diff of two `config.xml` texts, as hunks with three lines of context: the "raw XML"
//! view beside the diff in words. Callers mask secrets first ([`super::secrets::mask`]).

use std::time::Duration;

use similar::{ChangeTag, TextDiff};

/// How long a diff may search for the smallest edit before settling for a larger one (very
/// different 2 MB configurations stay quick).
const DEADLINE: Duration = Duration::from_secs(2);

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// The diff's lines, `(kind, text)`: '@' a hunk header, ' ' context, '-' removed, '+' added; at
/// most `limit` of them, and whether more were left out.
pub fn lines(before: &str, after: &str, limit: usize) -> (Vec<(char, String)>, bool) {
    let diff = TextDiff::configure()
        .timeout(DEADLINE)
        .diff_lines(before, after);
    let mut out = Vec::new();
    for group in diff.grouped_ops(CONTEXT) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let (old, new) = (first.old_range().start, first.new_range().start);
        let (old_end, new_end) = (last.old_range().end, last.new_range().end);
        out.push((
            '@',
            format!(
                "lines {}–{} before, {}–{} after",
                old + 1,
                old_end.max(old + 1),
                new + 1,
                new_end.max(new + 1)
            ),
        ));
        for op in &group {
            for change in diff.iter_changes(op) {
                if out.len() >= limit {
                    return (out, true);
                }
                let kind = match change.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                out.push((
                    kind,
                    change.value().trim_end_matches(['\n', '\r']).to_owned(),
                ));
            }
        }
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_reads_as_one_hunk_with_context() {
        let before = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let after = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let (lines, truncated) = lines(before, after, 100);
        assert!(!truncated);
        let kinds: String = lines.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, "@   -+   ");
        assert_eq!(lines[0].1, "lines 2–8 before, 2–8 after");
        assert_eq!(lines[4], ('-', "e".to_owned()));
        assert_eq!(lines[5], ('+', "E".to_owned()));
    }

    #[test]
    fn identical_texts_have_no_lines_and_long_diffs_are_cut() {
        assert_eq!(lines("x\n", "x\n", 10), (Vec::new(), false));
        let before: String = (0..100).map(|n| format!("{n}\n")).collect();
        let (lines, truncated) = lines(&before, "", 10);
        assert!(truncated);
        assert_eq!(lines.len(), 10);
    }
}
