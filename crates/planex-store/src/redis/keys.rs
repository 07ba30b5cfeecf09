//! Key names of the Redis layout (documented in `lua/common.lua` and docs/ARCHITECTURE.md).
//!
//! Key decision: a task's keys carry its id as hash tag (`px:task:{ID}…`, `px:events:{ID}`) and a
//! tier's keys carry the tier (`px:ready:{TIER}`, `px:leases:{TIER}`), so in a Redis Cluster one
//! task's state shares a slot. The Lua scripts build the same names; both sides must agree.

use planex_core::TaskId;

/// The key names under one prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    pub fn task(&self, id: &TaskId) -> String {
        format!("{}:task:{{{}}}", self.prefix, id.0)
    }

    pub fn steps(&self, id: &TaskId) -> String {
        format!("{}:steps", self.task(id))
    }

    /// `px:task:{ID}:staged:{NONCE}`: a plan's step fields, written before the start script
    /// moves them into place (see `ops::start_task`); the nonce keeps racing starts apart.
    pub fn staged(&self, id: &TaskId, nonce: &str) -> String {
        format!("{}:staged:{nonce}", self.task(id))
    }

    pub fn calls(&self, id: &TaskId) -> String {
        format!("{}:calls", self.task(id))
    }

    pub fn events(&self, id: &TaskId) -> String {
        format!("{}:events", self.task(id))
    }

    pub fn channel(&self, id: &TaskId) -> String {
        format!("{}:events:{{{}}}", self.prefix, id.0)
    }

    /// The channel of every task's status changes (`changes.rs`; published by the scripts).
    pub fn task_changes(&self) -> String {
        format!("{}:task_changes", self.prefix)
    }

    pub fn ready(&self, tier: &str) -> String {
        format!("{}:ready:{{{tier}}}", self.prefix)
    }

    /// The heartbeat key of `worker` of `tier` (expires when the worker stops beating).
    pub fn heartbeat(&self, tier: &str, worker: &str) -> String {
        format!("{}:hb:{{{tier}}}:{worker}", self.prefix)
    }

    /// Worker `worker`'s last TTFT report on `tier` (`P95_MICROS:SAMPLES`, with the heartbeat's TTL).
    pub fn ttft(&self, tier: &str, worker: &str) -> String {
        format!("{}:ttft:{{{tier}}}:{worker}", self.prefix)
    }

    /// The workers that reported a TTFT on `tier` (pruned of lapsed reports when read).
    pub fn ttft_reporters(&self, tier: &str) -> String {
        format!("{}:ttft_reporters:{{{tier}}}", self.prefix)
    }

    /// The set of `tier`'s workers that send heartbeats.
    pub fn workers(&self, tier: &str) -> String {
        format!("{}:workers:{{{tier}}}", self.prefix)
    }

    pub fn dead_letters(&self) -> String {
        format!("{}:dlq", self.prefix)
    }

    /// `px:idem:{TENANT}:{DIGEST}`: the submission an idempotency key of a tenant names.
    pub fn idempotency(&self, tenant: &str, digest: &str) -> String {
        format!("{}:idem:{{{tenant}}}:{digest}", self.prefix)
    }

    /// `px:plan:{KEY}`: one cached plan.
    pub fn plan(&self, key: &str) -> String {
        format!("{}:plan:{{{key}}}", self.prefix)
    }

    /// `px:drift:{TYPE}`: a task type's learned baseline (hash); its recent samples, learning
    /// samples and recorded task ids are keys under it (see `drift.rs`).
    pub fn drift(&self, task_type: &str) -> String {
        format!("{}:drift:{{{task_type}}}", self.prefix)
    }

    /// `px:drift:types`: the set of task types with a recorded task.
    pub fn drift_types(&self) -> String {
        format!("{}:drift:types", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_keys_share_one_hash_tag() {
        let keys = Keys::new("px");
        let id = TaskId::from("abc");
        for key in [
            keys.task(&id),
            keys.steps(&id),
            keys.staged(&id, "n"),
            keys.calls(&id),
            keys.events(&id),
            keys.channel(&id),
        ] {
            assert!(key.contains("{abc}"), "{key}");
        }
        assert_eq!(keys.ready("small"), "px:ready:{small}");
    }
}
