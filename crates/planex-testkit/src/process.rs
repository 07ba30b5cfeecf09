//! Reading a child process's output line by line, to wait for its readiness line (never a sleep).
//!
//! Key decision: the lines are read on a thread of their own that keeps draining the pipe for the
//! child's whole life, even once nobody listens, so a chatty child never blocks on a full pipe.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why no matching line arrived.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineWaitError {
    /// No line containing the text arrived in time.
    #[error("no line containing {needle:?} within {timeout:?}")]
    TimedOut {
        /// The text waited for.
        needle: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// The output ended (the process exited or closed it) first.
    #[error("the output ended before a line containing {needle:?}")]
    Ended {
        /// The text waited for.
        needle: String,
    },
}

/// The lines a child process writes to one of its pipes, as they arrive.
pub struct OutputLines {
    lines: mpsc::Receiver<String>,
}

impl OutputLines {
    /// Starts reading `output` (a child's piped stdout or stderr) on a thread of its own.
    pub fn read(output: impl Read + Send + 'static) -> OutputLines {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines() {
                let Ok(line) = line else { break };
                // A dropped receiver only means nobody listens any more: keep draining the pipe.
                let _ = tx.send(line);
            }
        });
        OutputLines { lines }
    }

    /// The next line containing `needle` (any line for `""`), within `timeout`; the lines before
    /// it are passed over.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Result<String, LineWaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(LineWaitError::TimedOut {
                        needle: needle.to_owned(),
                        timeout,
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(LineWaitError::Ended {
                        needle: needle.to_owned(),
                    });
                }
            }
        }
    }
}

/// The first `http://…` word of a line, such as the address in a `listening on http://…` readiness
/// line.
pub fn first_url(line: &str) -> Option<&str> {
    line.split_whitespace().find(|w| w.starts_with("http://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_past_other_lines_and_reports_the_end() {
        let lines = OutputLines::read(&b"starting\nlistening on http://127.0.0.1:9 now\n"[..]);
        let line = lines.wait_for("listening", Duration::from_secs(10));
        assert_eq!(line.as_deref(), Ok("listening on http://127.0.0.1:9 now"));
        assert_eq!(
            first_url("listening on http://127.0.0.1:9 now"),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            lines.wait_for("more", Duration::from_secs(10)),
            Err(LineWaitError::Ended {
                needle: "more".into()
            })
        );
    }
}
