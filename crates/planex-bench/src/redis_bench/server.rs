//! The Redis a benchmark runs against: the one `--url` names, or else a private `redis-server`
//! started for this run (`planex_testkit::redis::RedisServer`: a free loopback port, no
//! persistence), stopped when the benchmark ends.

use anyhow::{Context, Result};
use planex_testkit::redis::RedisServer;

/// The benchmark's Redis; a private server lives as long as this value.
pub(crate) struct BenchRedis {
    url: String,
    _private: Option<RedisServer>,
}

impl BenchRedis {
    /// Uses `url`, or starts a private `redis-server` (and says so on stderr) when it is `None`.
    pub(crate) async fn open(url: Option<&str>) -> Result<BenchRedis> {
        if let Some(url) = url {
            return Ok(BenchRedis {
                url: url.to_owned(),
                _private: None,
            });
        }
        let server = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .context("starting a private redis-server")?
            .context("starting a private redis-server (or pass --url redis://HOST:PORT)")?;
        let url = server.url();
        eprintln!(
            "planex-bench: no --url given: started a private redis-server at {url} for this run"
        );
        Ok(BenchRedis {
            url,
            _private: Some(server),
        })
    }

    /// The server's URL (`redis://…`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}
