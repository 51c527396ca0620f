//! The per-slot template language of `sessctl statusline`: literal text with `{placeholder}`s,
//! `{{` and `}}` for literal braces. A template is parsed once (from `--format` or
//! `statusline.format`) into [`Piece`]s, so a typo is refused up front with its position and
//! rendering never fails.
//!
//! This module only parses; it never reads a file or the clock (see `render` for that).

use std::fmt;

/// The template used when neither `--format` nor `statusline.format` gives one.
pub const DEFAULT_FORMAT: &str = "{current} {name} {windows} {stale}";

/// Every placeholder, for the documentation and error messages.
pub const PLACEHOLDERS: &str = "{name} {account} {state} {stale} {current} {windows} {5h} \
     {7d} {window:W} {reset:W} {reset_in:W}";

use crate::cache::LABELLED_WINDOWS;
pub use crate::cache::{FIVE_HOUR, SEVEN_DAY};

/// One parsed piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text copied as is.
    Literal(String),
    /// `{name}`: the slot name.
    Name,
    /// `{account}`: the account (e-mail) the slot belongs to, or nothing.
    Account,
    /// `{state}`: `active`, `degraded` or `inactive`.
    State,
    /// `{stale}`: the stale marker when this slot's own data is stale, else nothing.
    Stale,
    /// `{current}`: a marker on the slot Claude Code's stdin figures were attributed to (the
    /// account the Claude Code session running the statusline uses), else nothing.
    Current,
    /// `{windows}`: `5h 16% · 7d 42%`, leaving out windows without data.
    Windows,
    /// `{5h}`, `{7d}`, `{window:W}`: the window's rounded utilization (`16%`), or nothing.
    Percent(String),
    /// `{reset:W}`: when the window resets, in local time (`14:05`, or `Tue 14:05` when
    /// more than a day away), or nothing.
    Reset(String),
    /// `{reset_in:W}`: how long until the window resets (`2h13m`, `3d4h`), or nothing.
    ResetIn(String),
}

/// A parsed per-slot template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Why a template was refused: `position` is the 0-based character offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.position + 1, self.message)
    }
}

impl std::error::Error for FormatError {}

impl Default for Template {
    fn default() -> Self {
        Template::parse(DEFAULT_FORMAT).expect("the default format parses (tested)")
    }
}

impl Template {
    /// Parses a template.
    ///
    /// # Errors
    /// An unknown placeholder, a bad window name, an unclosed `{` or a lone `}`.
    pub fn parse(text: &str) -> Result<Template, FormatError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(error(i, "a lone '}'; write '}}' for a literal brace")),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(error(
                            i,
                            "'{' is not closed; write '{{' for a literal brace",
                        ));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(placeholder(&name).map_err(|m| error(i, m))?);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template { pieces })
    }

    /// The parsed pieces, in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// True when some piece shows a reset time (so the local time zone is needed).
    pub fn uses_local_time(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Reset(_)))
    }
}

fn error(position: usize, message: impl Into<String>) -> FormatError {
    FormatError {
        position,
        message: message.into(),
    }
}

/// The piece for the text between `{` and `}`.
fn placeholder(name: &str) -> Result<Piece, String> {
    if let Some(window) = labelled(name) {
        return Ok(Piece::Percent(window));
    }
    let piece = match name {
        "name" => Piece::Name,
        "account" => Piece::Account,
        "state" => Piece::State,
        "stale" => Piece::Stale,
        "current" => Piece::Current,
        "windows" => Piece::Windows,
        _ => {
            let (kind, window) = name.split_once(':').ok_or_else(|| unknown(name))?;
            let window = window_name(window)?;
            match kind {
                "window" => Piece::Percent(window),
                "reset" => Piece::Reset(window),
                "reset_in" => Piece::ResetIn(window),
                _ => return Err(unknown(name)),
            }
        }
    };
    Ok(piece)
}

/// The window a short label (`5h`, `7d`) stands for.
fn labelled(label: &str) -> Option<String> {
    LABELLED_WINDOWS
        .iter()
        .find(|(_, l)| *l == label)
        .map(|(window, _)| (*window).to_owned())
}

fn unknown(name: &str) -> String {
    let shown: String = name.chars().take(40).collect();
    format!("unknown placeholder {{{shown}}}; known: {PLACEHOLDERS}")
}

/// A window as written in a template: `5h`, `7d`, or a cache window name (`seven_day_opus`).
fn window_name(text: &str) -> Result<String, String> {
    if let Some(window) = labelled(text) {
        return Ok(window);
    }
    match text {
        _ if !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "window {:?} should be 5h, 7d or a window name such as seven_day_opus",
            text.chars().take(40).collect::<String>()
        )),
    }
}
