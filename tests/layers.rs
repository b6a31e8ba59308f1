//! The house rule of ARCHITECTURE.md ("Layers"): every module imports only layers below its
//! own, the features never import each other, and no files import each other in a circle
//! beyond a pair of neighbours in one folder (a module file is its folder's face: its
//! children's imports of it are not a circle). Read from `src/` as text.
//!
//! Test-only files (`tests.rs`, `*_tests.rs`, `test_support.rs`) and inline
//! `#[cfg(test)] mod … { }` blocks are left out: a feature's tests may drive it through
//! `decide`, as the integration tests in `tests/` do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. A unit is a top-level module, or one feature under `features`.
const LAYERS: &[&[&str]] = &[
    &["clock", "sop", "catalog", "command"],
    &["incident"],
    &[
        "features::cadence",
        "features::checklist",
        "features::comms",
        "features::continuity",
        "features::drills",
        "features::tabletop",
        "features::paging",
    ],
    &["decide"],
    &["config", "documents"],
    &["chat", "cluster", "store"],
    &["export"],
    &["app", "doctor"],
    &["server"],
];

struct SourceFile {
    /// Path from the crate root, `["incident", "state"]`; `[]` is lib.rs.
    module: Vec<String>,
    path: PathBuf,
    /// Code with comments, strings and test blocks blanked, lines kept.
    code: String,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn is_test_only(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs" || name.ends_with("_tests.rs") || name == "test_support.rs"
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(src_dir()).expect("under src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Blank comments, string and char literals (keeping newlines), so that only code is read.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |c: u8| if c == b'\n' { b'\n' } else { b' ' };
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if b[i] == b'r' && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#")) {
            let mut j = i + 1;
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                out.extend(std::iter::repeat_n(b' ', j + 1 - i));
                i = j + 1;
                while i < b.len() && !b[i..].starts_with(&close) {
                    out.push(blank(b[i]));
                    i += 1;
                }
                out.extend(std::iter::repeat_n(b' ', close.len().min(b.len() - i)));
                i += close.len();
            } else {
                out.push(b[i]);
                i += 1;
            }
        } else if b[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    out.push(b' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if b[i] == b'\''
            && i + 2 < b.len()
            && (b[i + 2] == b'\'' || (b[i + 1] == b'\\' && b[i + 3..].contains(&b'\'')))
        {
            // A char literal ('a', '\n', '\''), not a lifetime.
            let end = if b[i + 1] == b'\\' {
                i + 3 + b[i + 3..].iter().position(|&c| c == b'\'').unwrap_or(0)
            } else {
                i + 2
            };
            out.extend(std::iter::repeat_n(b' ', end + 1 - i));
            i = end + 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out[..out.len().min(b.len())]).into_owned()
}

/// Blank every `#[cfg(test)]` item (a `mod … { }` or a `use`), keeping newlines.
fn without_test_blocks(code: &str) -> String {
    let mut out = code.to_string();
    let mut from = 0;
    while let Some(at) = out[from..].find("#[cfg(test)]").map(|p| p + from) {
        let rest = &out[at..];
        let end = match (rest.find('{'), rest.find(';')) {
            (Some(brace), semi) if semi.is_none_or(|s| brace < s) => {
                let mut depth = 0;
                let mut end = rest.len();
                for (k, c) in rest[brace..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = brace + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (_, Some(semi)) => semi + 1,
            _ => rest.len(),
        };
        let blanked: String = out[at..at + end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(at..at + end, &blanked);
        from = at + end;
    }
    out
}

fn read_sources() -> Vec<SourceFile> {
    let mut paths = Vec::new();
    collect(&src_dir(), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter(|p| !is_test_only(p) && p.file_name().is_some_and(|n| n != "main.rs"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            SourceFile {
                module: module_of(&path),
                code: without_test_blocks(&strip(&text)),
                path,
            }
        })
        .collect()
}

/// Expand `a::{b, c::{d}}` into whole paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or("").trim();
        return vec![path.to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::").trim();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand)
        .map(|p| match (prefix.is_empty(), p.as_str()) {
            (true, _) => p,
            (false, "self") => prefix.to_string(),
            (false, _) => format!("{prefix}::{p}"),
        })
        .collect()
}

/// Child modules a file declares (`mod x;`, `pub mod x;`).
fn children(code: &str) -> BTreeSet<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("pub(crate) ")
                .or(l.strip_prefix("pub "))
                .unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

/// Every path a file names, with its line: `use` trees, and `crate::`/`super::` paths inline.
fn paths_named(file: &SourceFile) -> Vec<(usize, Vec<String>)> {
    let own_children = children(&file.code);
    let is_mod_file = file
        .path
        .file_name()
        .is_some_and(|n| n == "mod.rs" || n == "lib.rs");
    let here: Vec<String> = file.module.clone();
    let absolute = |raw: &str| -> Option<Vec<String>> {
        let segs: Vec<String> = raw
            .split("::")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let first = segs.first()?.as_str();
        let mut base = match first {
            "crate" => Vec::new(),
            "super" | "self" => {
                // `super` of a mod.rs is its folder's parent module; of x.rs, x's parent.
                let mut base = here.clone();
                let mut rest = &segs[..];
                while let Some(s) = rest.first() {
                    match s.as_str() {
                        "super" => {
                            base.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    rest = &rest[1..];
                }
                let mut out = base;
                out.extend(rest.iter().cloned());
                return Some(out);
            }
            c if own_children.contains(c) => here.clone(),
            _ => return None,
        };
        let skip = usize::from(first == "crate");
        base.extend(segs.into_iter().skip(skip));
        Some(base)
    };
    let _ = is_mod_file;
    let mut found = Vec::new();
    let code = &file.code;
    // `use` statements, possibly over several lines.
    let mut from = 0;
    while let Some(at) = code[from..].find("use ").map(|p| p + from) {
        let before = code[..at].chars().last();
        from = at + 4;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(end) = code[at..].find(';').map(|e| e + at) else {
            break;
        };
        let line = code[..at].matches('\n').count() + 1;
        for path in expand(&code[at + 4..end]) {
            if let Some(abs) = absolute(&path) {
                found.push((line, abs));
            }
        }
        from = end;
    }
    // Inline paths.
    for (n, line) in code.lines().enumerate() {
        for start in ["crate::", "super::"] {
            let mut k = 0;
            while let Some(p) = line[k..].find(start).map(|p| p + k) {
                let before = line[..p].chars().last();
                k = p + start.len();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let path: String = line[p..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                // `a::{…}` is a use tree, read whole above.
                if path.ends_with("::") {
                    continue;
                }
                if let Some(abs) = absolute(&path) {
                    found.push((n + 1, abs));
                }
            }
        }
    }
    found
}

/// The file a path lands in: the longest prefix that is a module file.
fn file_of(path: &[String], files: &BTreeMap<Vec<String>, usize>) -> Option<usize> {
    (0..=path.len())
        .rev()
        .find_map(|k| files.get(&path[..k].to_vec()).copied())
}

/// The layer unit of a module: `features::x` for a feature, else its top-level name.
fn unit_of(module: &[String]) -> Option<String> {
    match module {
        [] => None,
        [f, x, ..] if f == "features" => Some(format!("features::{x}")),
        [top, ..] => Some(top.clone()),
    }
}

fn layer_of(unit: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&unit))
}

struct Graph {
    files: Vec<SourceFile>,
    edges: BTreeMap<usize, BTreeMap<usize, usize>>,
}

fn graph() -> Graph {
    let files = read_sources();
    let index: BTreeMap<Vec<String>, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.module.clone(), i))
        .collect();
    let mut edges: BTreeMap<usize, BTreeMap<usize, usize>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        for (line, path) in paths_named(f) {
            if let Some(j) = file_of(&path, &index).filter(|&j| j != i) {
                edges.entry(i).or_default().entry(j).or_insert(line);
            }
        }
    }
    Graph { files, edges }
}

fn rel(path: &Path) -> String {
    path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Imports that run up, or sideways between two units of one layer.
fn wrong_way(g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (&i, targets) in &g.edges {
        let from = &g.files[i];
        let Some(from_unit) = unit_of(&from.module) else {
            continue;
        };
        for (&j, &line) in targets {
            let to = &g.files[j];
            let Some(to_unit) = unit_of(&to.module) else {
                continue;
            };
            if from_unit == to_unit {
                continue;
            }
            let (a, b) = (layer_of(&from_unit), layer_of(&to_unit));
            let verdict = match (a, b) {
                (Some(a), Some(b)) if b < a => continue,
                (Some(a), Some(b)) if a == b => "a sibling in the same layer",
                (Some(_), Some(_)) => "a layer above it",
                _ => "a module no layer names (add it to LAYERS and ARCHITECTURE.md)",
            };
            out.push(format!(
                "{}:{line} ({from_unit}, layer {}) imports {} ({to_unit}, layer {}): {verdict}",
                rel(&from.path),
                a.map_or("?".into(), |a| (a + 1).to_string()),
                rel(&to.path),
                b.map_or("?".into(), |b| (b + 1).to_string()),
            ));
        }
    }
    out
}

/// A module file is the face of its folder: a child's imports of its parent module, and the
/// parent's re-exports of its children, are how Rust modules are built, not a circle.
fn face(g: &Graph, from: usize, to: usize) -> bool {
    let (a, b) = (&g.files[from].module, &g.files[to].module);
    let parent_of = |child: &Vec<String>, parent: &Vec<String>| {
        child.len() == parent.len() + 1 && child.starts_with(parent)
    };
    parent_of(a, b) || parent_of(b, a)
}

/// Strongly connected groups of files (Tarjan), each of more than one file.
fn circles(g: &Graph) -> Vec<Vec<usize>> {
    struct Walk<'a> {
        g: &'a Graph,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        found: Vec<Vec<usize>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            let targets: Vec<usize> = self
                .g
                .edges
                .get(&v)
                .map(|t| t.keys().copied().filter(|&w| !face(self.g, v, w)).collect())
                .unwrap_or_default();
            for w in targets {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    group.push(w);
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let n = g.files.len();
    let mut walk = Walk {
        g,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in 0..n {
        if walk.index[v].is_none() {
            walk.visit(v);
        }
    }
    walk.found
}

/// A pair in one folder (two neighbours, or a module and its child) may lean on each other.
fn allowed(g: &Graph, group: &[usize]) -> bool {
    // The folder a file's children live in: `x/` for `x.rs`, its own folder for `mod.rs`.
    let own = |i: usize| {
        let p = &g.files[i].path;
        if p.file_name().is_some_and(|n| n == "mod.rs") {
            p.parent().map(Path::to_path_buf)
        } else {
            Some(p.with_extension(""))
        }
    };
    let folder = |i: usize| g.files[i].path.parent().map(Path::to_path_buf);
    match group {
        [a, b] => folder(*a) == folder(*b) || own(*a) == folder(*b) || folder(*a) == own(*b),
        _ => false,
    }
}

/// One way round the circle, as file -> file (line) -> ….
fn describe(g: &Graph, group: &[usize]) -> String {
    let members: BTreeSet<usize> = group.iter().copied().collect();
    let start = group[0];
    // Breadth-first from start back to start, inside the group.
    let mut prev: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut back = None;
    while let Some(v) = queue.pop_front() {
        for (&w, &line) in g.edges.get(&v).into_iter().flatten() {
            if !members.contains(&w) || face(g, v, w) {
                continue;
            }
            if w == start {
                back = Some((v, line));
                break;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(w) {
                e.insert((v, line));
                queue.push_back(w);
            }
        }
        if back.is_some() {
            break;
        }
    }
    let Some((last, line)) = back else {
        return "(no path found)".into();
    };
    let mut hops = vec![(last, start, line)];
    let mut at = last;
    while at != start {
        let (p, l) = prev[&at];
        hops.push((p, at, l));
        at = p;
    }
    hops.reverse();
    let mut text = format!(
        "{} files: {}\n  ",
        group.len(),
        group
            .iter()
            .map(|&i| rel(&g.files[i].path))
            .collect::<Vec<_>>()
            .join(", ")
    );
    text.push_str(&rel(&g.files[start].path));
    for (from, to, line) in hops {
        text.push_str(&format!(
            " -> {} (line {line} of {})",
            rel(&g.files[to].path),
            rel(&g.files[from].path)
        ));
    }
    text
}

#[test]
fn every_import_runs_down_the_layers() {
    let g = graph();
    assert!(
        g.files.len() > 50,
        "src/ was read ({} files)",
        g.files.len()
    );
    let wrong = wrong_way(&g);
    assert!(
        wrong.is_empty(),
        "imports against the layers (ARCHITECTURE.md, \"Layers\"):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let g = graph();
    let bad: Vec<String> = circles(&g)
        .into_iter()
        .filter(|group| !allowed(&g, group))
        .map(|group| describe(&g, &group))
        .collect();
    assert!(
        bad.is_empty(),
        "files that import each other in a circle:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_reader_sees_imports_in_every_form() {
    // The check is only as good as its reader: each form below must be seen.
    let file = SourceFile {
        module: vec!["incident".into(), "state".into()],
        path: src_dir().join("incident/state.rs"),
        code: without_test_blocks(&strip(
            "use crate::chat;\nuse super::{event::X, post::{Post, PostKind}};\n\
             fn f() { crate::store::open(); let s = \"crate::app\"; }\n\
             // crate::server\n#[cfg(test)]\nmod tests { use crate::cluster; }\n",
        )),
    };
    let named: Vec<String> = paths_named(&file)
        .into_iter()
        .map(|(_, p)| p.join("::"))
        .collect();
    for expected in [
        "chat",
        "incident::event::X",
        "incident::post::Post",
        "store::open",
    ] {
        assert!(
            named.contains(&expected.to_string()),
            "{expected} in {named:?}"
        );
    }
    for unexpected in ["app", "server", "cluster"] {
        assert!(
            !named.iter().any(|p| p.starts_with(unexpected)),
            "{unexpected} is not an import: {named:?}"
        );
    }
}
