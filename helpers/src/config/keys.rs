//! Key handling for configs: the tree of valid keys, "did you mean" suggestions, the
//! dotted key a parse error points at, flattening and diffing.
use super::RunConfig;
use crate::{Error, Result};

/// The tree of valid keys: the default config, serialised, plus the sweep and Slurm
/// sections (left out of a default config's text).
pub(crate) fn known_keys() -> toml::Value {
    let mut v = toml::Value::try_from(RunConfig::default()).expect("default config serialises");
    if let Some(t) = v.as_table_mut() {
        t.insert("grid".into(), toml::Value::Table(Default::default()));
        t.insert("ablations".into(), toml::Value::Table(Default::default()));
        t.insert(
            "slurm".into(),
            toml::Value::try_from(super::SlurmConfig::default()).expect("slurm section serialises"),
        );
    }
    v
}

/// Rejects keys the default config does not have, suggesting the nearest one.
/// The sweep sections hold dotted keys as their own keys; `crate::sweep` checks those.
pub(crate) fn check_known_keys(
    value: &toml::Value,
    known: &toml::Value,
    prefix: &str,
) -> Result<()> {
    let (Some(table), Some(known_table)) = (value.as_table(), known.as_table()) else {
        return Ok(());
    };
    for (key, v) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match known_table.get(key) {
            Some(_) if prefix.is_empty() && (key == "grid" || key == "ablations") => {}
            Some(k) => check_known_keys(v, k, &path)?,
            None => {
                return Err(Error::config(
                    path,
                    unknown_key_message(key, known_table, prefix),
                ))
            }
        }
    }
    Ok(())
}

/// "did you mean" when a known key is close to the typed one (at most 2 edits, or a
/// third of its length); otherwise the keys that are valid there, since a far-off guess
/// (`lerning_rate` → `batch_size`) misleads more than it helps.
fn unknown_key_message(
    key: &str,
    known: &toml::map::Map<String, toml::Value>,
    prefix: &str,
) -> String {
    let close = known
        .keys()
        .map(|k| (edit_distance(k, key), k))
        .min()
        .filter(|(d, _)| *d <= 2.max(key.chars().count() / 3));
    match close {
        Some((_, nearest)) if prefix.is_empty() => {
            format!("unknown key; did you mean `{nearest}`?")
        }
        Some((_, nearest)) => format!("unknown key; did you mean `{prefix}.{nearest}`?"),
        None => {
            let keys: Vec<&str> = known.keys().map(String::as_str).collect();
            let place = if prefix.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in [{prefix}]")
            };
            format!("unknown key; the keys {place} are: {}", keys.join(", "))
        }
    }
}

/// A TOML syntax error as [`Error::Syntax`] at the line and column of its span, the
/// file named `source_name` (the caller's path, or "TOML text").
pub(crate) fn syntax_error(text: &str, e: &toml::de::Error, source_name: &str) -> Error {
    let offset = e.span().map_or(0, |s| s.start.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Error::Syntax {
        source_name: source_name.to_string(),
        line,
        column,
        reason: e.message().trim().replace('\n', "; "),
    }
}

/// The dotted key a TOML deserialisation error points at (`train.optimizer`), found
/// from the error's byte span: the key on that line and the last `[section]` above it.
pub(super) fn error_key(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return "(file)".into();
    };
    let before = &text[..span.start.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim();
    let section = before[..line_start]
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .map(|s| s.trim().to_string());
    match section {
        Some(sec) if !key.starts_with('[') => format!("{sec}.{key}"),
        _ => key.to_string(),
    }
}

pub(crate) fn flatten(v: &toml::Value, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
    match v.as_table() {
        Some(t) => t.iter().for_each(|(k, v)| {
            flatten(
                v,
                &if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                },
                out,
            )
        }),
        None => out.push((prefix.to_string(), v.clone())),
    }
}

pub(crate) fn diff_values(a: &toml::Value, b: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    match (a.as_table(), b.as_table()) {
        (Some(ta), Some(tb)) => {
            let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match (ta.get(k), tb.get(k)) {
                    (Some(x), Some(y)) => diff_values(x, y, &path, out),
                    _ => out.push(path),
                }
            }
        }
        _ if a != b => out.push(format!("{prefix}: {a} → {b}")),
        _ => {}
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
