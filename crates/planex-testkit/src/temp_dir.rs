//! Fresh scratch directories under the system's temporary directory, one per call.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates and returns `TMP/PREFIX-PID-N`, where N counts the calls of this process, so
/// concurrent tests and concurrent test processes never share one. The caller removes it when
/// it should not outlive the test.
pub fn fresh(prefix: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_call_gets_its_own_directory() -> std::io::Result<()> {
        let first = super::fresh("planex-testkit")?;
        let second = super::fresh("planex-testkit")?;
        assert_ne!(first, second);
        assert!(first.is_dir() && second.is_dir());
        std::fs::remove_dir_all(first)?;
        std::fs::remove_dir_all(second)
    }
}
