//! The command line of `sessctl statusline` read without clap, for the plain forms a prompt,
//! tmux or Claude Code runs on every render: building clap's command is a good part of a
//! 10-slot render. Anything it is not sure of (help, a repeated or unknown flag, a value
//! clap might read otherwise, a non-UTF-8 argument, an empty `SESSCTL_CONFIG`) is left to
//! clap, which then parses the whole line, errors and help included; on what it does take,
//! it agrees with clap (tested against it).

use std::ffi::OsString;
use std::path::PathBuf;

use super::statusline::Args;
use crate::statusline::ColorChoice;

/// The `--config` path (or `$SESSCTL_CONFIG`) and the flags, from the arguments after
/// `statusline`; `None`: let clap parse them.
pub fn parse(args: &[OsString]) -> Option<(Option<PathBuf>, Args)> {
    let mut out = Args::default();
    let mut config: Option<PathBuf> = None;
    let mut seen: Vec<&str> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_str()?;
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (arg, None),
        };
        if seen.contains(&flag) {
            return None;
        }
        seen.push(flag);
        match flag {
            "--ascii" | "--no-stdin" if inline.is_none() => {
                *if flag == "--ascii" {
                    &mut out.ascii
                } else {
                    &mut out.no_stdin
                } = true;
            }
            "--format" | "--separator" | "--slot" | "--config" | "--color" => {
                let value = match inline {
                    Some(value) => value,
                    None => args.next()?.to_str().filter(|v| !v.starts_with('-'))?,
                };
                if value.is_empty() {
                    return None;
                }
                let value = value.to_owned();
                match flag {
                    "--format" => out.format = Some(value),
                    "--separator" => out.separator = Some(value),
                    "--slot" => out.slot = Some(value),
                    "--config" => config = Some(PathBuf::from(value)),
                    _ => out.color = Some(color(&value)?),
                }
            }
            _ => return None,
        }
    }
    if config.is_none()
        && let Some(value) = std::env::var_os("SESSCTL_CONFIG")
    {
        if value.is_empty() {
            return None;
        }
        config = Some(PathBuf::from(value));
    }
    Some((config, out))
}

fn color(value: &str) -> Option<ColorChoice> {
    match value {
        "auto" => Some(ColorChoice::Auto),
        "always" => Some(ColorChoice::Always),
        "never" => Some(ColorChoice::Never),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::StatuslineOnly;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// What clap makes of the same arguments, as the fast parse's type.
    fn clap(args: &[&str]) -> Option<String> {
        let line = std::iter::once("statusline").chain(args.iter().copied());
        let only = StatuslineOnly::try_parse_from(line).ok()?;
        Some(format!("{:?}", (only.config, only.args)))
    }

    #[test]
    fn what_it_takes_it_reads_as_clap_does() {
        // Both read SESSCTL_CONFIG alike when it is set (and not empty).
        let lines: &[&[&str]] = &[
            &[],
            &["--no-stdin"],
            &["--ascii", "--no-stdin", "--color", "always"],
            &["--format", "{name} {5h}", "--separator=|", "--slot", "work"],
            &[
                "--format={name}={5h}",
                "--color=never",
                "--config",
                "/x/c.yaml",
            ],
            &["--separator", " · ", "--config=/y.yaml", "--slot=a=b"],
        ];
        for line in lines {
            let fast = parse(&os(line)).map(|parsed| format!("{parsed:?}"));
            assert!(fast.is_some(), "{line:?} left to clap");
            assert_eq!(fast, clap(line), "{line:?}");
        }
    }

    #[test]
    fn anything_unsure_is_left_to_clap() {
        let lines: &[&[&str]] = &[
            &["--help"],
            &["-h"],
            &["--version"],
            &["--ascii", "--ascii"],
            &["--slot", "a", "--slot=b"],
            &["--format"],
            &["--format", "--ascii"],
            &["--separator", "-"],
            &["--format="],
            &["--color", "sometimes"],
            &["--ascii=true"],
            &["--nope"],
            &["work"],
            &["--", "--ascii"],
        ];
        for line in lines {
            assert!(parse(&os(line)).is_none(), "{line:?} taken");
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let bad = vec![OsString::from("--slot"), OsString::from_vec(vec![0xff])];
            assert!(parse(&bad).is_none());
        }
    }
}
