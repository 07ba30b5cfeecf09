//! The Lua scripts of the Redis store, each built from `lua/common.lua` followed by its own body.
//!
//! Key decision: every state change is one script (atomic on the server, one round trip), and
//! the helpers they share (event append, settling dependents, finishing a task, dead letters) live
//! once in `common.lua` instead of in Redis Functions, so nothing has to be installed on the server
//! beforehand: `redis::Script` sends `EVALSHA` and falls back to loading the script after a
//! restart emptied the script cache.

use redis::Script;

const COMMON: &str = include_str!("lua/common.lua");

fn build(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

/// All scripts, compiled (hashed) once per store.
pub(super) struct Scripts {
    pub create: Script,
    pub start: Script,
    pub finish_unplanned: Script,
    pub cancel: Script,
    pub claim: Script,
    pub complete: Script,
    pub release: Script,
    pub extend: Script,
    pub depth: Script,
    pub retire: Script,
    pub prune: Script,
    pub planning: Script,
    pub list: Script,
    pub streamed: Script,
    pub reap: Script,
}

impl Scripts {
    /// Loads every script into Redis's script cache, so the first burst of calls after start-up
    /// does not meet `NOSCRIPT` and load the same script once per call in flight. (After a
    /// Redis restart `redis::Script` still loads on demand.)
    pub async fn preload(
        &self,
        conn: &mut redis::aio::ConnectionManager,
    ) -> redis::RedisResult<()> {
        for script in [
            &self.create,
            &self.start,
            &self.finish_unplanned,
            &self.cancel,
            &self.claim,
            &self.complete,
            &self.release,
            &self.extend,
            &self.depth,
            &self.retire,
            &self.prune,
            &self.planning,
            &self.list,
            &self.streamed,
            &self.reap,
        ] {
            script.load_async(conn).await?;
        }
        Ok(())
    }

    pub fn new() -> Self {
        Scripts {
            create: build(include_str!("lua/create.lua")),
            start: build(include_str!("lua/start.lua")),
            finish_unplanned: build(include_str!("lua/finish_unplanned.lua")),
            cancel: build(include_str!("lua/cancel.lua")),
            claim: build(include_str!("lua/claim.lua")),
            complete: build(include_str!("lua/complete.lua")),
            release: build(include_str!("lua/release.lua")),
            extend: build(include_str!("lua/extend.lua")),
            depth: build(include_str!("lua/depth.lua")),
            retire: build(include_str!("lua/retire.lua")),
            prune: build(include_str!("lua/prune.lua")),
            planning: build(include_str!("lua/planning.lua")),
            list: build(include_str!("lua/list.lua")),
            streamed: build(include_str!("lua/streamed.lua")),
            reap: build(include_str!("lua/reap.lua")),
        }
    }
}

/// The ledger script (not built on `common.lua`: it shares nothing with the task scripts).
pub(super) fn ledger_script() -> Script {
    Script::new(include_str!("lua/ledger.lua"))
}
