//! The `statusline:` section of the config: how `sessctl statusline` renders. Every key is
//! checked at load time (an unknown placeholder in `format` is refused with its line), so
//! the status line itself never has to report a config mistake it could have caught.

use serde::Deserialize;

use super::Ctx;
use crate::config::ConfigError;
use crate::statusline::{ColorChoice, DEFAULT_SEPARATOR, Template};

/// The `statusline:` settings, validated. Command-line flags override each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatuslineConfig {
    /// The per-slot template (`statusline.format`).
    pub format: Template,
    /// Text between two slots.
    pub separator: String,
    /// Plain ASCII output, for terminals without emoji.
    pub ascii: bool,
    /// When to colour.
    pub color: ColorChoice,
    /// The stale marker; `None` means the default (`🔺`, or `[stale]` in ASCII mode).
    pub stale_marker: Option<String>,
    /// The slot Claude Code's stdin figures belong to.
    pub claude_code_slot: Option<String>,
}

impl Default for StatuslineConfig {
    fn default() -> Self {
        StatuslineConfig {
            format: Template::default(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            ascii: false,
            color: ColorChoice::Auto,
            stale_marker: None,
            claude_code_slot: None,
        }
    }
}

/// The section as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatusline {
    format: Option<String>,
    separator: Option<String>,
    ascii: Option<bool>,
    color: Option<ColorChoice>,
    stale_marker: Option<String>,
    claude_code_slot: Option<String>,
}

impl RawStatusline {
    pub(super) fn build(self, ctx: &Ctx) -> Result<StatuslineConfig, ConfigError> {
        let at = |key: &'static str| ["statusline", key];
        let mut c = StatuslineConfig::default();
        if let Some(text) = self.format {
            c.format =
                Template::parse(&text).map_err(|e| ctx.invalid(&at("format"), e.to_string()))?;
        }
        if let Some(separator) = self.separator {
            one_line(&separator).map_err(|m| ctx.invalid(&at("separator"), m))?;
            c.separator = separator;
        }
        if let Some(marker) = self.stale_marker {
            if marker.trim().is_empty() {
                let message = "must not be empty: the marker is how stale data shows";
                return Err(ctx.invalid(&at("stale_marker"), message));
            }
            one_line(&marker).map_err(|m| ctx.invalid(&at("stale_marker"), m))?;
            c.stale_marker = Some(marker);
        }
        if let Some(slot) = self.claude_code_slot {
            crate::slot_name::validate(&slot)
                .map_err(|m| ctx.invalid(&at("claude_code_slot"), m))?;
            c.claude_code_slot = Some(slot);
        }
        c.ascii = self.ascii.unwrap_or(c.ascii);
        c.color = self.color.unwrap_or(c.color);
        Ok(c)
    }
}

/// A status line is one line: no newlines or other control characters.
fn one_line(text: &str) -> Result<(), &'static str> {
    if text.chars().any(char::is_control) {
        Err("must be one line without control characters")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{parse, refused};
    use crate::statusline::{ColorChoice, Piece};

    #[test]
    fn every_statusline_key_is_read() {
        let c = parse(
            "statusline:\n  format: '{name}: {5h} {reset:7d}'\n  separator: ' | '\n  ascii: true\n  \
             color: always\n  stale_marker: '(old)'\n  claude_code_slot: work\n",
        )
        .unwrap();
        let s = &c.statusline;
        assert_eq!(s.format.pieces()[0], Piece::Name);
        assert_eq!(s.separator, " | ");
        assert!(s.ascii);
        assert_eq!(s.color, ColorChoice::Always);
        assert_eq!(s.stale_marker.as_deref(), Some("(old)"));
        assert_eq!(s.claude_code_slot.as_deref(), Some("work"));
    }

    #[test]
    fn an_empty_statusline_section_gives_the_defaults() {
        for text in ["statusline:\n", "statusline: {}\n", "stale_after: 5m\n"] {
            assert_eq!(
                parse(text).unwrap().statusline,
                crate::config::StatuslineConfig::default(),
                "{text}"
            );
        }
    }

    #[test]
    fn statusline_mistakes_are_refused_at_their_key_and_line() {
        let cases = [
            (
                "statusline:\n  format: '{nmae}'\n",
                2,
                "statusline.format",
                "unknown placeholder",
            ),
            (
                "statusline:\n  ascii: true\n  format: '{5h'\n",
                3,
                "statusline.format",
                "not closed",
            ),
            (
                "statusline:\n  format: '{reset:5 h}'\n",
                2,
                "statusline.format",
                "window",
            ),
            (
                "statusline:\n  separator: \"a\\nb\"\n",
                2,
                "statusline.separator",
                "one line",
            ),
            (
                "statusline:\n  stale_marker: ''\n",
                2,
                "statusline.stale_marker",
                "empty",
            ),
            (
                "statusline:\n  claude_code_slot: Work!\n",
                2,
                "statusline.claude_code_slot",
                "",
            ),
            (
                "statusline:\n  colour: never\n",
                2,
                "statusline.colour",
                "unknown field",
            ),
            (
                "statusline:\n  color: blue\n",
                2,
                "statusline.color",
                "unknown variant",
            ),
            (
                "statusline:\n  ascii: 3\n",
                2,
                "statusline.ascii",
                "invalid type",
            ),
            ("statusline: [format]\n", 1, "statusline", "invalid type"),
        ];
        for (text, line, key, words) in cases {
            let (l, k, m) = refused(text);
            assert_eq!((l, k.as_str()), (line, key), "{text:?}: {m}");
            assert!(m.contains(words), "{text:?}: {m}");
            assert!(!m.contains("RawStatusline"), "{m}");
        }
    }
}
