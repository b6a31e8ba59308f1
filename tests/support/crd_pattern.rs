//! The small regular-expression engine behind the CRD `pattern` checks of `crd_schema.rs`:
//! groups, alternation, classes, `\d\w\s`, `* + ? {n,m}`, anchors; backtracking.

use std::collections::BTreeSet;
use std::sync::Mutex;

// ---- patterns ----------------------------------------------------------------------------

/// Whether `text` contains a match of `pattern`; `None` when the engine cannot parse it
/// (reported once).
pub fn pattern_matches(pattern: &str, text: &str) -> Option<bool> {
    static UNSUPPORTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let nodes = match Regex::parse(pattern) {
        Ok(nodes) => nodes,
        Err(why) => {
            let mut seen = UNSUPPORTED.lock().unwrap_or_else(|e| e.into_inner());
            if seen.insert(pattern.to_string()) {
                eprintln!("pattern {pattern:?} not checked: {why}");
            }
            return None;
        }
    };
    let chars: Vec<char> = text.chars().collect();
    Some((0..=chars.len()).any(|start| matches_at(&nodes, &chars, start, &|_| true)))
}

#[derive(Debug)]
enum Node {
    Char(char),
    Any,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Start,
    End,
    Group(Vec<Vec<Node>>),
    Repeat {
        node: Box<Node>,
        min: usize,
        max: Option<usize>,
    },
}

struct Regex {
    chars: Vec<char>,
    pos: usize,
}

const DIGIT: &[(char, char)] = &[('0', '9')];
const WORD: &[(char, char)] = &[('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
const SPACE: &[(char, char)] = &[(' ', ' '), ('\t', '\r')];

impl Regex {
    fn parse(pattern: &str) -> Result<Vec<Node>, String> {
        let mut r = Regex {
            chars: pattern.chars().collect(),
            pos: 0,
        };
        let alternatives = r.alternatives()?;
        if r.pos != r.chars.len() {
            return Err(format!("unexpected {:?} at {}", r.chars[r.pos], r.pos));
        }
        Ok(vec![Node::Group(alternatives)])
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<char, String> {
        let c = self.peek().ok_or("unexpected end")?;
        self.pos += 1;
        Ok(c)
    }

    fn alternatives(&mut self) -> Result<Vec<Vec<Node>>, String> {
        let mut alternatives = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alternatives.push(self.sequence()?);
        }
        Ok(alternatives)
    }

    fn sequence(&mut self) -> Result<Vec<Node>, String> {
        let mut nodes = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            nodes.push(self.quantified(atom)?);
        }
        Ok(nodes)
    }

    fn atom(&mut self) -> Result<Node, String> {
        Ok(match self.next()? {
            '(' => {
                if self.peek() == Some('?') {
                    self.pos += 1;
                    if self.next()? != ':' {
                        return Err("only (?: groups are supported".into());
                    }
                }
                let alternatives = self.alternatives()?;
                if self.next()? != ')' {
                    return Err("unclosed group".into());
                }
                Node::Group(alternatives)
            }
            '[' => self.class()?,
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '\\' => self.escape()?,
            c @ ('*' | '+' | '?' | '{') => return Err(format!("nothing to repeat before {c:?}")),
            c => Node::Char(c),
        })
    }

    fn escape(&mut self) -> Result<Node, String> {
        let class = |negated, ranges: &[(char, char)]| Node::Class {
            negated,
            ranges: ranges.to_vec(),
        };
        Ok(match self.next()? {
            'd' => class(false, DIGIT),
            'D' => class(true, DIGIT),
            'w' => class(false, WORD),
            'W' => class(true, WORD),
            's' => class(false, SPACE),
            'S' => class(true, SPACE),
            'n' => Node::Char('\n'),
            't' => Node::Char('\t'),
            c if c.is_ascii_punctuation() => Node::Char(c),
            c => return Err(format!("unsupported escape \\{c}")),
        })
    }

    fn class(&mut self) -> Result<Node, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self
                .next()
                .map_err(|_| "unclosed character class".to_string())?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                match self.next()? {
                    'd' => {
                        ranges.extend_from_slice(DIGIT);
                        continue;
                    }
                    'w' => {
                        ranges.extend_from_slice(WORD);
                        continue;
                    }
                    's' => {
                        ranges.extend_from_slice(SPACE);
                        continue;
                    }
                    'n' => '\n',
                    't' => '\t',
                    e if e.is_ascii_punctuation() => e,
                    e => return Err(format!("unsupported escape \\{e} in a class")),
                }
            } else {
                c
            };
            let is_range = self.peek() == Some('-') && self.chars.get(self.pos + 1) != Some(&']');
            if is_range {
                self.pos += 1;
                let mut hi = self.next()?;
                if hi == '\\' {
                    hi = self.next()?;
                }
                if hi < lo {
                    return Err(format!("bad range {lo}-{hi}"));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class { negated, ranges })
    }

    fn number(&mut self) -> Option<usize> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.chars[start..self.pos]
            .iter()
            .collect::<String>()
            .parse()
            .ok()
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                self.pos += 1;
                let min = self.number().ok_or("bad {n,m}")?;
                let max = if self.peek() == Some(',') {
                    self.pos += 1;
                    self.number()
                } else {
                    Some(min)
                };
                if self.peek() != Some('}') {
                    return Err("bad {n,m}".into());
                }
                (min, max)
            }
            _ => return Ok(atom),
        };
        self.pos += 1;
        if matches!(self.peek(), Some('?' | '+')) {
            return Err("lazy and possessive quantifiers are not supported".into());
        }
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
        })
    }
}

fn single(node: &Node, c: char) -> bool {
    match node {
        Node::Char(x) => *x == c,
        Node::Any => c != '\n',
        Node::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
        }
        _ => false,
    }
}

/// Backtracking: whether `nodes` match at `i` with the continuation `k` accepting the end.
fn matches_at(nodes: &[Node], s: &[char], i: usize, k: &dyn Fn(usize) -> bool) -> bool {
    let Some((first, rest)) = nodes.split_first() else {
        return k(i);
    };
    match first {
        Node::Start => i == 0 && matches_at(rest, s, i, k),
        Node::End => i == s.len() && matches_at(rest, s, i, k),
        Node::Group(alternatives) => alternatives
            .iter()
            .any(|alt| matches_at(alt, s, i, &|j| matches_at(rest, s, j, k))),
        Node::Repeat { node, min, max } => repeat(node, *min, *max, 0, rest, s, i, k),
        one => i < s.len() && single(one, s[i]) && matches_at(rest, s, i + 1, k),
    }
}

#[allow(clippy::too_many_arguments)]
fn repeat(
    node: &Node,
    min: usize,
    max: Option<usize>,
    count: usize,
    rest: &[Node],
    s: &[char],
    i: usize,
    k: &dyn Fn(usize) -> bool,
) -> bool {
    if max.is_none_or(|m| count < m) {
        let more = matches_at(std::slice::from_ref(node), s, i, &|j| {
            (j != i || count < min) && repeat(node, min, max, count + 1, rest, s, j, k)
        });
        if more {
            return true;
        }
    }
    count >= min && matches_at(rest, s, i, k)
}
