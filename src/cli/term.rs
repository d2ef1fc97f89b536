//! The terminal: whether stdin/stdout are one, colour (only on a terminal, never with
//! `NO_COLOR`), prompts (the password without echo), and Ctrl-C noted rather than fatal.

use super::http::{CliError, CliResult};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn stdin_is_terminal() -> bool {
    unsafe { libc::isatty(0) == 1 }
}

pub fn stdout_is_terminal() -> bool {
    unsafe { libc::isatty(1) == 1 }
}

/// Colour on stdout: a terminal, and `NO_COLOR` unset or empty (no-color.org).
pub fn colour() -> bool {
    stdout_is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// An ANSI style, or nothing without colour.
#[derive(Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    fn wrap(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn bold(self, s: &str) -> String {
        self.wrap("1", s)
    }
    pub fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
    pub fn red(self, s: &str) -> String {
        self.wrap("31", s)
    }
    pub fn green(self, s: &str) -> String {
        self.wrap("32", s)
    }
    pub fn yellow(self, s: &str) -> String {
        self.wrap("33", s)
    }
}

fn read_line() -> CliResult<String> {
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line)?;
    if n == 0 {
        return Err(CliError::new("no answer: the input ended"));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Asks on the terminal; returns the answer without its newline.
pub fn prompt(question: &str) -> CliResult<String> {
    print!("{question}");
    std::io::stdout().flush()?;
    read_line()
}

/// Asks without echoing what is typed.
pub fn prompt_secret(question: &str) -> CliResult<String> {
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let have = unsafe { libc::tcgetattr(0, &mut saved) } == 0;
    if have {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
    }
    // Asked once the echo is off, so nothing typed after the question shows.
    print!("{question}");
    std::io::stdout().flush()?;
    let answer = read_line();
    if have {
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
    }
    println!();
    answer
}

/// Ctrl-C presses since `catch_interrupts`.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// From now on SIGINT is counted (`interrupts`) instead of ending the process.
pub fn catch_interrupts() {
    let handler: extern "C" fn(libc::c_int) = on_interrupt;
    unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
}

pub fn interrupts() -> usize {
    INTERRUPTS.load(Ordering::SeqCst)
}
