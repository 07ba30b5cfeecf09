//! Loading and validating the config file: the embedded default, unknown fields, field-naming errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use planex_core::cause::chain_text;

#[test]
fn the_embedded_default_is_valid_and_simulated() {
    let settings = Config::from_toml(DEFAULT_CONFIG).unwrap();
    assert!(settings.is_simulated());
    assert_eq!(settings.engine.planner_tier, "planner");
    assert!(settings.catalog().unwrap().len() >= 4);
    let planner = settings.tiers.iter().find(|t| t.name == "planner").unwrap();
    assert_eq!(
        planner.price.per_million().0.round_dp(3).to_string(),
        "0.504"
    );
}

fn with(extra: &str) -> String {
    format!("{DEFAULT_CONFIG}\n{extra}")
}

#[test]
fn unknown_fields_are_errors_naming_the_field() {
    let err = Config::from_toml(&DEFAULT_CONFIG.replace("max_subtasks = 8", "max_subtask = 8"))
        .unwrap_err();
    // The CLI prints the chain (`{:#}`): the figment error naming the field is the cause.
    let err = chain_text(&err);
    assert!(err.contains("max_subtask"), "{err}");
}

#[test]
fn inconsistent_values_name_the_field() {
    let err = Config::from_toml(&DEFAULT_CONFIG.replace("usd_per_hour = 0.96\n", "")).unwrap_err();
    assert!(
        err.to_string().contains("tiers.executor.usd_per_hour"),
        "{err}"
    );
    let err = Config::from_toml(
        &DEFAULT_CONFIG.replace("planner_tier = \"planner\"", "planner_tier = \"big\""),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("engine.planner_tier") && err.to_string().contains("executor"),
        "{err}"
    );
    let err = Config::from_toml(&with(
        "[[tools]]\nname = \"x\"\ndescription = \"d\"\ntier = \"gpu9\"\ninput_schema = { type = \"object\" }\nkind = { type = \"llm\", prompt = \"p\" }",
    ))
    .unwrap_err();
    assert!(err.to_string().contains("gpu9"), "{err}");
}

#[test]
fn real_endpoints_replace_the_simulator() {
    let text = DEFAULT_CONFIG.replace(
        "simulated = { ttft_ms = 40, tokens_per_second = 6000 }",
        "endpoints = [\"http://10.0.0.7:30000/v1\"]\nescalate_to = \"planner\"",
    );
    let settings = Config::from_toml(&text).unwrap();
    let executor = settings
        .tiers
        .iter()
        .find(|t| t.name == "executor")
        .unwrap();
    assert_eq!(executor.endpoints[0].base_url, "http://10.0.0.7:30000/v1");
    assert_eq!(executor.escalate_to.as_deref(), Some("planner"));
    assert!(!settings.simulated.contains_key("executor"));
    let bad = DEFAULT_CONFIG.replace(
        "simulated = { ttft_ms = 40, tokens_per_second = 6000 }",
        "endpoints = [\"10.0.0.7\"]",
    );
    assert!(
        Config::from_toml(&bad)
            .unwrap_err()
            .to_string()
            .contains("http://")
    );
}

#[test]
fn enum_fields_refuse_unknown_values_and_list_the_accepted_ones() {
    let err = chain_text(
        &Config::from_toml(&DEFAULT_CONFIG.replace("backend = \"memory\"", "backend = \"reddis\""))
            .unwrap_err(),
    );
    assert!(err.contains("reddis"), "{err}");
    assert!(err.contains("memory") && err.contains("redis"), "{err}");
    assert!(err.contains("store.backend"), "{err}");
}

#[test]
fn the_store_section_becomes_a_store_setting() {
    let redis = Config::from_toml(&DEFAULT_CONFIG.replace(
        "backend = \"memory\"",
        "backend = \"redis\"\nurl = \"redis://127.0.0.1:6390\"",
    ))
    .unwrap();
    assert_eq!(
        redis.store,
        StoreSettings::Redis {
            url: "redis://127.0.0.1:6390".into()
        }
    );
    let err =
        Config::from_toml(&DEFAULT_CONFIG.replace("backend = \"memory\"", "backend = \"redis\""))
            .unwrap_err()
            .to_string();
    assert!(err.contains("store.url"), "{err}");
    assert!(StoreSettings::from_flag("postgres://x").is_err());
    assert!(StoreSettings::from_flag("redis://h:1").unwrap().is_shared());
}

#[test]
fn a_config_file_that_does_not_parse_keeps_the_parser_error_as_source() {
    use std::error::Error as _;
    let path = std::env::temp_dir().join(format!("planex-bad-config-{}.toml", std::process::id()));
    std::fs::write(&path, "[engine\nmax_subtasks = 10\n").unwrap();
    let err = Config::load(Some(&path)).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(err, ConfigError::Parse(_)), "{err:?}");
    let source = err.source().expect("the parser's error is the source");
    // Kept boxed (figment errors are large), so the chain's link is the box.
    assert!(
        source.downcast_ref::<Box<figment::Error>>().is_some(),
        "{source:?}"
    );
    // The message says what to do; the chain adds the parser's words, once.
    let chain = chain_text(&err);
    assert!(chain.starts_with(&err.to_string()), "{chain}");
    assert!(chain.contains(&source.to_string()), "{chain}");
    assert!(!err.to_string().contains(&source.to_string()), "{err}");
}

#[test]
fn a_missing_config_file_keeps_the_io_error_as_source() {
    use std::error::Error as _;
    let path = std::path::Path::new("/nonexistent/planex.toml");
    let err = Config::load(Some(path)).unwrap_err();
    assert!(matches!(err, ConfigError::Unreadable { .. }), "{err:?}");
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the I/O error is the source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string().contains("/nonexistent/planex.toml"),
        "{err}"
    );
}

#[test]
fn defaults_follow_the_reference_design_by_tier_role() {
    let config = Config::from_toml(DEFAULT_CONFIG).unwrap();
    assert_eq!(config.engine.max_subtasks, 8);
    assert_eq!(EngineSettings::default().max_subtasks, 8);
    let planner = config.tier("planner").unwrap();
    assert_eq!(
        planner.retry.max_retries, 0,
        "the planner tier is not retried"
    );
    assert_eq!(planner.timeout, Duration::from_secs(120));
    let executor = config.tier("executor").unwrap();
    assert_eq!(executor.retry.max_retries, 3);
    assert_eq!(executor.retry.initial_backoff, Duration::from_secs(1));
    assert_eq!(executor.timeout, Duration::from_secs(30));
}

#[test]
fn the_planner_role_follows_engine_planner_tier_and_explicit_retries_win() {
    // Make "executor" the planner tier: it takes the planner's defaults, "planner" an executor's.
    let swapped =
        DEFAULT_CONFIG.replace("planner_tier = \"planner\"", "planner_tier = \"executor\"");
    let config = Config::from_toml(&swapped).unwrap();
    assert_eq!(config.tier("executor").unwrap().retry.max_retries, 0);
    assert_eq!(config.tier("planner").unwrap().retry.max_retries, 3);
    assert_eq!(
        config.tier("planner").unwrap().timeout,
        Duration::from_secs(30)
    );
    // The planner tier's retries are still configurable; unset fields keep the role's defaults.
    let retried = DEFAULT_CONFIG.replace(
        "simulated = { ttft_ms = 120, tokens_per_second = 2500 }",
        "simulated = { ttft_ms = 120, tokens_per_second = 2500 }\ntimeout_secs = 60\nretry = { max_retries = 2 }",
    );
    let config = Config::from_toml(&retried).unwrap();
    let planner = config.tier("planner").unwrap();
    assert_eq!(planner.retry.max_retries, 2);
    assert_eq!(planner.retry.initial_backoff, Duration::from_secs(1));
    assert_eq!(planner.timeout, Duration::from_secs(60));
    assert!(
        Config::from_toml(&DEFAULT_CONFIG.replace(
            "simulated = { ttft_ms = 120, tokens_per_second = 2500 }",
            "simulated = { ttft_ms = 120, tokens_per_second = 2500 }\nretry = { max_retry = 2 }",
        ))
        .is_err(),
        "unknown retry fields are still refused"
    );
}

#[test]
fn client_plan_and_task_text_limits_are_engine_fields() {
    let config = Config::from_toml(DEFAULT_CONFIG).unwrap();
    assert_eq!(
        (
            config.engine.max_client_plan_steps,
            config.engine.max_task_chars
        ),
        (64, 32_768)
    );
    let set = DEFAULT_CONFIG.replace(
        "max_subtasks = 8",
        "max_subtasks = 8\nmax_client_plan_steps = 100\nmax_task_chars = 500",
    );
    let config = Config::from_toml(&set).unwrap();
    assert_eq!(
        (
            config.engine.max_client_plan_steps,
            config.engine.max_task_chars
        ),
        (100, 500)
    );
    for field in ["max_client_plan_steps", "max_task_chars"] {
        let zero = DEFAULT_CONFIG.replace(
            "max_subtasks = 8",
            &format!("max_subtasks = 8\n{field} = 0"),
        );
        let err = Config::from_toml(&zero).unwrap_err().to_string();
        assert!(err.contains(&format!("engine.{field}")), "{err}");
    }
}

#[test]
fn retention_defaults_to_a_day_and_reads_the_store_section() {
    let default = Config::from_toml(DEFAULT_CONFIG).unwrap().retention;
    assert_eq!(default.keep_finished, Some(Duration::from_secs(24 * 3600)));
    assert_eq!(default.max_finished_bytes, 48 * 1024 * 1024);
    let text = DEFAULT_CONFIG.replace(
        "backend = \"memory\"",
        "backend = \"memory\"\nkeep_finished_secs = 0\nmax_finished_tasks = 500\nmax_finished_mib = 64",
    );
    let retention = Config::from_toml(&text).unwrap().retention;
    assert_eq!(
        retention,
        Retention {
            keep_finished: None,
            max_finished_tasks: 500,
            max_finished_bytes: 64 * 1024 * 1024,
        }
    );
    for (field, bad) in [("max_finished_tasks", "0"), ("max_finished_mib", "0")] {
        let text = DEFAULT_CONFIG.replace(
            "backend = \"memory\"",
            &format!("backend = \"memory\"\n{field} = {bad}"),
        );
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains(&format!("store.{field}")), "{err}");
    }
}
