//! The backend's layers, checked: every `crate::` and `super::` path in `backend/src` (comments and
//! `#[cfg(test)]` modules aside) is an edge from the file that names it to the module file it names,
//! and each module file has a layer. An edge may point down or sideways, never up, and the edges may
//! not close a circle. `backend/README.md` says what each layer holds.
//!
//! To print the graph: `cargo test -p conference-backend --test layers -- --nocapture`
//! (`BACKEND_SRC=<dir>` reads another tree, e.g. an older checkout's `backend/src`).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Each module (by its path in the crate; a folder's modules inherit it) and its layer. A module
/// that is not listed fails the check: a new one has to be placed.
const LAYERS: &[(&str, u8, &str)] = &[
    ("domain", 0, "plain types and pure decisions"),
    ("error", 0, "the crate's error type"),
    ("config", 0, "the command line (clap)"),
    ("fault", 0, "crash points for the fault tests"),
    ("signal", 0, "how the process is asked to stop"),
    ("chain", 1, "adapter: the node and the contracts"),
    ("store", 1, "adapter: SQLite or PostgreSQL"),
    ("orchestrator", 1, "adapter: where conferences run"),
    ("http", 1, "adapter: the API and the web app"),
    ("tokens", 1, "adapter: join tokens"),
    ("metrics", 1, "adapter: Prometheus"),
    ("health", 1, "adapter: readiness checks"),
    ("wake", 1, "how the loops wake each other"),
    ("watcher", 2, "loop: chain events into the store"),
    ("reconciler", 2, "loop: the next step of each agreement"),
    ("settler", 2, "loop: operator transactions"),
    ("monitor", 2, "loop: availability probes"),
    ("lease", 2, "loop: one leader among replicas"),
    ("attestor", 2, "loop: the independent monitor's probes and signed reports"),
    ("service", 3, "wires the loops and the API"),
    ("monitor_process", 3, "wires the independent monitor's process"),
    ("dev", 3, "the local chain and database"),
];

/// A module path (`store::events`) from a file's path under `src` (`store/events.rs`).
fn module_of(file: &Path) -> String {
    let path = file.with_extension("");
    let mut parts: Vec<String> = path.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|last| last == "mod" || last == "lib") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments, string literals and `#[cfg(test)]` modules: what is left names the
/// paths the code uses.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    let (mut out, mut chars) = (String::new(), text.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

/// Every path the code names from `crate::`, `super::` or `self::`, or by a `use` of a child module
/// (`use child::X` in `a/mod.rs`), with `use` groups (`a::{b, c::{d}}`) expanded; `super` resolved
/// against `module`, whose child modules are `children`.
fn paths_named(code: &str, module: &str, children: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let own: Vec<String> = module.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let relative: Vec<String> = children.iter().map(|child| format!("use {child}::")).collect();
    for start in ["crate::", "super::", "self::"].into_iter().chain(relative.iter().map(String::as_str)) {
        let mut from = 0;
        while let Some(at) = code[from..].find(start).map(|i| i + from) {
            from = at + start.len();
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut base: Vec<String> = match start {
                "crate::" => Vec::new(),
                "super::" => own[..own.len().saturating_sub(1)].to_vec(),
                "self::" => own.clone(),
                child => own.iter().cloned().chain([child["use ".len()..child.len() - 2].to_owned()]).collect(),
            };
            let mut rest = &code[at + start.len()..];
            while let Some(tail) = rest.strip_prefix("super::") {
                base.pop();
                rest = tail;
            }
            let end =
                rest.len() - rest.trim_start_matches(|c: char| c.is_alphanumeric() || "_:{}, \n*".contains(c)).len();
            expand(&base, &rest[..end], &mut paths);
        }
    }
    paths
}

/// Adds each path of the use tree `tree` under `base`.
fn expand(base: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if tree.is_empty() {
        // After a group's trailing comma.
        return;
    }
    let Some(open) = tree.find('{') else {
        let path: Vec<String> = base
            .iter()
            .cloned()
            .chain(tree.split("::").map(str::trim).take_while(|s| !s.is_empty() && *s != "*").map(str::to_owned))
            .collect();
        out.push(path);
        return;
    };
    let mut prefix = base.to_vec();
    prefix.extend(tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
    let (mut depth, mut item_start, inner) = (0, 0, &tree[open + 1..]);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                expand(&prefix, &inner[item_start..i], out);
                return;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&prefix, &inner[item_start..i], out);
                item_start = i + 1;
            }
            _ => {}
        }
    }
}

/// The module file a path names: its longest prefix that is a module (`self` is the module itself).
fn target(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    let path: Vec<&str> = path.iter().map(String::as_str).filter(|s| *s != "self").collect();
    (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|m| modules.contains(m)).or_else(|| {
        // `crate::Error` and `crate::Result`: the crate root re-exports the error module's.
        matches!(path.first(), Some(&"Error" | &"Result")).then(|| "error".to_owned())
    })
}

fn layer(module: &str) -> Option<u8> {
    let top = module.split("::").next()?;
    LAYERS.iter().find(|(name, _, _)| *name == top).map(|(_, layer, _)| *layer)
}

/// The graph of `src`: each module file and the module files it names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(src).unwrap()))
        .filter(|m| !m.is_empty() && m != "main")
        .collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(file.strip_prefix(src).unwrap());
        if module.is_empty() || module == "main" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let children: Vec<String> = modules
            .iter()
            .filter_map(|m| {
                m.strip_prefix(&format!("{module}::")).filter(|rest| !rest.contains("::")).map(str::to_owned)
            })
            .collect();
        let edges: BTreeSet<String> = paths_named(&code, &module, &children)
            .iter()
            .filter_map(|path| target(path, &modules))
            .filter(|to| *to != module)
            .collect();
        graph.insert(module, edges);
    }
    graph
}

/// The circles of the graph: its strongly connected components of more than one module (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.found
}

#[test]
fn imports_point_down_the_layers_and_close_no_circle() {
    let src = std::env::var_os("BACKEND_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let graph = graph(&src);
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    println!("{} modules, {edges} imports:", graph.len());
    for (module, to) in &graph {
        let layer = layer(module).map_or("?".to_owned(), |l| l.to_string());
        println!("  [{layer}] {module} -> {}", to.iter().cloned().collect::<Vec<_>>().join(", "));
    }

    let mut problems = Vec::new();
    for module in graph.keys().filter(|m| layer(m).is_none()) {
        problems.push(format!("{module} has no layer: add it to LAYERS in backend/tests/layers.rs"));
    }
    for (module, to) in &graph {
        for dependency in to {
            if let (Some(from), Some(up)) = (layer(module), layer(dependency))
                && up > from
            {
                problems.push(format!("{module} (layer {from}) imports {dependency} (layer {up}): up the layers"));
            }
        }
    }
    for circle in circles(&graph) {
        problems.push(format!("a circle of imports: {}", circle.join(" ↔ ")));
    }
    assert!(problems.is_empty(), "the backend's layers are broken:\n  {}", problems.join("\n  "));
}

#[test]
fn the_check_sees_use_groups_super_and_circles() {
    let code = code_of(
        "use crate::{a::{b, c::D}, e};\n// crate::commented::out\nfn f() { super::g::h(); let s = \"crate::in_a_string\"; }\n\
         #[cfg(test)]\nmod tests { use crate::only_in_tests; }",
    );
    let named = paths_named(&code, "x::y", &[]);
    let named: Vec<String> = named.iter().map(|p| p.join("::")).collect();
    assert_eq!(named, ["a::b", "a::c::D", "e", "x::g::h"]);
    let named = paths_named("use child::{A, B};\nuse self::other::C;", "x", &["child".into()]);
    let named: Vec<String> = named.iter().map(|p| p.join("::")).collect();
    assert_eq!(named, ["x::other::C", "x::child::A", "x::child::B"]);

    let modules: BTreeSet<String> = ["a", "a::c", "x::g"].map(str::to_owned).into();
    assert_eq!(target(&["a".into(), "c".into(), "D".into()], &modules), Some("a::c".into()));
    assert_eq!(target(&["Error".into()], &modules), Some("error".into()));

    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec!["a"])]
            .into_iter()
            .map(|(m, to)| (m.to_owned(), to.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(circles(&graph), vec![vec!["a".to_owned(), "b".into(), "c".into()]]);
}
