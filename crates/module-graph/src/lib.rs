//! For tests that hold a crate's modules to layers (the host's, the store's): each module of
//! a folder, the modules of that folder it names, and the cycles among them. A module is a
//! file of the folder or a folder in it (all its files); it names another by one of the
//! prefixes given (`crate::`, `crate::store::`, `super::`), alone or in a `{...}` group.

// Test support: a folder it cannot read is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each module of `dir` (but `skip`) and the modules of `dir` it names after one of
/// `prefixes`.
pub fn graph(dir: &Path, prefixes: &[&str], skip: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        if path.is_dir() {
            files.entry(name).or_default().extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.entry(name).or_default().push(path);
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(module, paths)| {
            let mut uses = BTreeSet::new();
            for path in paths {
                let text = std::fs::read_to_string(path).unwrap();
                for prefix in prefixes {
                    uses.extend(
                        named(&text, prefix)
                            .into_iter()
                            .filter(|n| modules.contains(n) && n != module),
                    );
                }
            }
            (module.clone(), uses)
        })
        .collect()
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found
}

/// The names that follow `prefix` in `text`: `prefix name`, or each of `prefix{a, b::c}`.
fn named(text: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (index, _) in text.match_indices(prefix) {
        let rest = &text[index + prefix.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() && rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
            names.extend(
                group
                    .split(',')
                    .map(|part| part.trim().split("::").next().unwrap().to_owned()),
            );
        } else {
            names.push(name);
        }
    }
    names
}

/// Every cycle of `graph`, one through each module on one: the modules in import order.
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    graph
        .keys()
        .filter_map(|module| cycle_from(graph, module))
        .map(|cycle| cycle.join(" -> "))
        .collect()
}

/// A cycle through `from`, if it is on one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if next == from {
                return Some([path.clone(), vec![next.clone()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_alone_and_in_groups() {
        assert_eq!(
            named("use crate::a::B; use crate::{b, c::d};", "crate::"),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn a_cycle_is_found_from_each_module_on_it() {
        let graph = BTreeMap::from([
            ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
            ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
            ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ]);
        assert_eq!(cycles(&graph), ["a -> b -> a", "b -> a -> b"]);
    }
}
