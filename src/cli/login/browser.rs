//! Opening a URL in the user's browser: the program in `$BROWSER` (given the URL as its one
//! argument), else the platform's opener where a browser can be shown at all
//! ([`crate::relogin::browser_available`]). Never fatal: the URL is always printed too.

use std::ffi::OsString;
use std::process::{Command, Stdio};

/// Tries to open `url`; says on stderr what happened.
pub fn open(url: &str) {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let (program, quiet) = match var("BROWSER") {
        Some(browser) => (browser, false),
        None if crate::relogin::browser_available(var) => (platform_opener(), true),
        // The flow was chosen for this (login/headless.rs); the URL is printed already.
        None => return,
    };
    let mut command = Command::new(&program);
    command.arg(url).stdin(Stdio::null()).stdout(Stdio::null());
    if quiet {
        command.stderr(Stdio::null());
    }
    let shown = program.to_string_lossy().into_owned();
    match command.spawn() {
        Ok(mut child) => {
            // Reaped in the background; a failing opener only earns a note.
            std::thread::spawn(move || {
                if let Ok(status) = child.wait()
                    && !status.success()
                {
                    eprintln!(
                        "(the browser command {shown} failed ({status}); open the URL yourself)"
                    );
                }
            });
        }
        Err(e) => eprintln!("(could not start the browser {shown}: {e}; open the URL yourself)"),
    }
}

fn platform_opener() -> OsString {
    if cfg!(target_os = "macos") {
        "open".into()
    } else {
        "xdg-open".into()
    }
}
