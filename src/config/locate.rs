//! Finding where in the file an error is: the YAML parser's own location when it has one,
//! else a small indentation scanner that walks `key:` lines along the dotted key path.

use std::path::Path;

use super::{ConfigError, SYNTAX_KEY, TOP_LEVEL_KEY};

/// Quotes user text for a message, cut short so junk input cannot flood the error.
pub(super) fn show(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}...", &text[..end]),
        None => format!("{text:?}"),
    }
}

/// The text being parsed and its file name, for building errors.
pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
}

impl Ctx<'_> {
    /// An error found after deserializing, at the key `key` (its line is looked up).
    pub(super) fn invalid(&self, key: &[&str], message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: key_line(self.text, key),
            key: key.join("."),
            message: message.into(),
        }
    }

    /// An error from the YAML parser or serde. `yaml_serde` starts a message with the dotted
    /// path of the value at fault (omitted at top level); that path becomes the key. With
    /// `typed` (the second pass) an error without a path is about the whole document;
    /// without, it is a syntax error.
    pub(super) fn yaml_error(&self, err: &serde_yaml::Error, typed: bool) -> ConfigError {
        let mut text = err.to_string();
        let mut line = err.location().map_or(1, |l| l.line().max(1));
        if let Some(loc) = err.location() {
            let at = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(pos) = text.find(&at) {
                text.replace_range(pos..pos + at.len(), "");
            }
        }
        let (path, mut message) = match text.split_once(": ") {
            Some((head, rest)) if is_path(head) && (typed || duplicate(rest).is_some()) => {
                (Some(head.to_owned()), rest.to_owned())
            }
            _ => (None, text),
        };
        let join = |field: &str| {
            path.as_ref()
                .map_or(field.to_owned(), |p| format!("{p}.{field}"))
        };
        let key = if let Some(field) = duplicate(&message) {
            // The parser points at the mapping; the second occurrence is more useful.
            let key = join(field);
            line = key_line(self.text, &key.split('.').collect::<Vec<_>>());
            "given more than once".clone_into(&mut message);
            key
        } else if let Some(field) = unknown_field(&message) {
            join(field)
        } else if let Some(path) = path {
            path
        } else {
            (if typed { TOP_LEVEL_KEY } else { SYNTAX_KEY }).to_owned()
        };
        // A key with no name (`?` alone, or `"": x`) is named by where it is.
        let key = if key.is_empty() || key.ends_with('.') {
            format!("{key}(a key with no name)")
        } else {
            key
        };
        for internal in [
            "struct RawConfig",
            "struct RawProvider",
            "struct RawStatusline",
            "struct RawAlerts",
        ] {
            message = message.replace(internal, "a mapping of keys");
        }
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            key,
            message,
        }
    }
}

/// True when `head` looks like a `yaml_serde` value path (`providers.acme.scopes[0]`) rather
/// than the start of a message (`invalid type`).
pub(super) fn is_path(head: &str) -> bool {
    !head.is_empty() && !head.contains(char::is_whitespace) && !head.contains('`')
}

/// The key named by `yaml_serde`'s `duplicate entry with key "x"` message.
pub(super) fn duplicate(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("duplicate entry with key \"")?;
    rest.strip_suffix('"')
}

/// The key named by serde's "unknown field `x`, expected ..." message.
pub(super) fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(field, _)| field)
}

/// The 1-based line of the key at `key` (one segment per nesting level) in block-style
/// YAML. Walks the nested `key:` lines by indentation; when a segment cannot be found (flow
/// style, quoting it does not understand) it returns the deepest ancestor's line, or 1.
/// Of two siblings with the same key it takes the last (the duplicate, for that error).
pub(super) fn key_line(text: &str, key: &[&str]) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let (mut found_line, mut start, mut parent_indent) = (1, 0, None);
    for segment in key {
        let mut child_indent = None;
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let content = line.trim_start_matches(' ');
            if content.trim().is_empty() || content.starts_with('#') || content.starts_with("---") {
                continue;
            }
            let indent = line.len() - content.len();
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            if indent == *child_indent.get_or_insert(indent) && line_key(content) == Some(segment) {
                hit = Some((i, indent));
            }
        }
        let Some((i, indent)) = hit else { break };
        (found_line, start, parent_indent) = (i + 1, i + 1, Some(indent));
    }
    found_line
}

/// The key of a `key: value` or `key:` line (plain, 'single' or "double" quoted).
pub(super) fn line_key(content: &str) -> Option<&str> {
    let (key, after) = if let Some(q @ ('"' | '\'')) = content.chars().next() {
        let end = content[1..].find(q)? + 1;
        (&content[1..end], &content[end + 1..])
    } else {
        let end = content.find(':')?;
        (content[..end].trim_end(), &content[end..])
    };
    let after = after.trim_start().strip_prefix(':')?;
    (after.is_empty() || after.starts_with([' ', '\t'])).then_some(key)
}
