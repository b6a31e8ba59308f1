//! The line diff `drbot commands check` shows when `commands/` drifts from the grammar.

use std::fmt::Write as _;

/// Lines of context around each change.
const CONTEXT: usize = 2;
/// Diff lines shown per file before the rest is summarised.
const MAX_DIFF_LINES: usize = 200;
/// Past this many cells the LCS table is not built; the first difference is shown instead.
const MAX_LCS_CELLS: usize = 4_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Del,
    Ins,
}

/// A unified-style diff of `expected` against `found`, with `@@ -line +line @@` headers.
pub(super) fn line_diff(expected: &str, found: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = found.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (mid_a, mid_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    if mid_a.is_empty() && mid_b.is_empty() {
        // Same lines; only the final newline differs.
        return "(the files differ only in their final newline)".to_string();
    }
    let mut ops: Vec<(Op, &str)> = a[..prefix].iter().map(|l| (Op::Same, *l)).collect();
    if (mid_a.len() + 1).saturating_mul(mid_b.len() + 1) > MAX_LCS_CELLS {
        ops.extend(mid_a.iter().map(|l| (Op::Del, *l)));
        ops.extend(mid_b.iter().map(|l| (Op::Ins, *l)));
    } else {
        ops.extend(lcs_ops(mid_a, mid_b));
    }
    ops.extend(a[a.len() - suffix..].iter().map(|l| (Op::Same, *l)));
    render_hunks(&ops)
}

fn lcs_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(Op, &'a str)> {
    let (n, m) = (a.len(), b.len());
    // table[i][j]: LCS length of a[i..] and b[j..].
    let width = m + 1;
    let mut table = vec![0u32; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i * width + j] = if a[i] == b[j] {
                table[(i + 1) * width + j + 1] + 1
            } else {
                table[(i + 1) * width + j].max(table[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n && j < m {
        if a[i] == b[j] {
            ops.push((Op::Same, a[i]));
            i += 1;
            j += 1;
        } else if table[(i + 1) * width + j] >= table[i * width + j + 1] {
            ops.push((Op::Del, a[i]));
            i += 1;
        } else {
            ops.push((Op::Ins, b[j]));
            j += 1;
        }
    }
    ops.extend(a[i..].iter().map(|l| (Op::Del, *l)));
    ops.extend(b[j..].iter().map(|l| (Op::Ins, *l)));
    ops
}

fn render_hunks(ops: &[(Op, &str)]) -> String {
    // Line numbers (1-based) in expected and found before each op.
    let mut numbers = Vec::with_capacity(ops.len());
    let (mut la, mut lb) = (1usize, 1usize);
    for (op, _) in ops {
        numbers.push((la, lb));
        match op {
            Op::Same => {
                la += 1;
                lb += 1;
            }
            Op::Del => la += 1,
            Op::Ins => lb += 1,
        }
    }
    // Ranges of ops to show: each change with CONTEXT lines around it, merged.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (k, (op, _)) in ops.iter().enumerate() {
        if *op == Op::Same {
            continue;
        }
        let start = k.saturating_sub(CONTEXT);
        let end = (k + CONTEXT + 1).min(ops.len());
        match ranges.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => ranges.push((start, end)),
        }
    }
    let mut out = String::new();
    let mut shown = 0usize;
    let total: usize = ranges.iter().map(|(s, e)| e - s).sum();
    for (start, end) in ranges {
        if shown >= MAX_DIFF_LINES {
            let _ = writeln!(out, "… ({} more diff lines)", total - shown);
            break;
        }
        let slice = &ops[start..end];
        let count_a = slice.iter().filter(|(op, _)| *op != Op::Ins).count();
        let count_b = slice.iter().filter(|(op, _)| *op != Op::Del).count();
        let (first_a, first_b) = numbers[start];
        let _ = writeln!(out, "@@ -{first_a},{count_a} +{first_b},{count_b} @@");
        for (op, line) in slice {
            let sign = match op {
                Op::Same => ' ',
                Op::Del => '-',
                Op::Ins => '+',
            };
            let _ = writeln!(out, "{sign}{line}");
            shown += 1;
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_changed_lines_with_context_and_line_numbers() {
        let expected = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let found = "a\nb\nc\nD\ne\nf\ng\nh\ni\nnew\n";
        assert_eq!(
            line_diff(expected, found),
            "@@ -2,5 +2,5 @@\n b\n c\n-d\n+D\n e\n f\n@@ -8,2 +8,3 @@\n h\n i\n+new"
        );
        // Changes closer than twice the context share a hunk.
        assert_eq!(
            line_diff("a\nb\nc\nd\ne\n", "a\nB\nc\nD\ne\n"),
            "@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n-d\n+D\n e"
        );
        assert_eq!(
            line_diff("a\n", "a"),
            "(the files differ only in their final newline)"
        );
        assert_eq!(line_diff("", "x\n"), "@@ -1,0 +1,1 @@\n+x");
    }
}
