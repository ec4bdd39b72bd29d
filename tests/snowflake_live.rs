//! Opt-in checks against a real Snowflake account, to settle the lines SNOWFLAKE.md marks (?).
//! Read-only: nothing is created or changed.
//!
//!     HUGFLAKE_LIVE_SNOWFLAKE=<connection name> cargo test --release --test snowflake_live -- --include-ignored
//!
//! The connection comes from connections.toml exactly as `hugflake --connection NAME` reads it.
//! `scripts/test.sh` skips this file (there is no account in CI).

use std::time::Duration;

use hugflake::paths::ProcessEnv;
use hugflake::platform::Platform;
use hugflake::platform::snowflake::{InferenceRoute, SnowflakePlatform, connection, statements};

async fn platform() -> SnowflakePlatform {
    let name = std::env::var("HUGFLAKE_LIVE_SNOWFLAKE").unwrap_or_else(|_| {
        panic!("set HUGFLAKE_LIVE_SNOWFLAKE to a connection name of connections.toml")
    });
    let env = ProcessEnv;
    let home = hugflake::paths::home(&env);
    let conn = connection::load(&env, &home, Some(&name), &[]).unwrap_or_else(|e| panic!("{e}"));
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    SnowflakePlatform::new(&conn, &env, &data.keep(), InferenceRoute::Rest)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
#[ignore = "needs a Snowflake account: HUGFLAKE_LIVE_SNOWFLAKE=<connection>"]
async fn live_snowflake_read_only_checks() {
    let p = platform().await;
    let status = p.status().await.unwrap_or_else(|e| panic!("{e}"));
    println!(
        "account {} version {} {:?}",
        status.location, status.version, status.details
    );

    // (?) Is the SQL API statement handle the query id (so MODEL_LOGGING_<H> names follow it)?
    let rs = p
        .run(&statements::current_context())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let hex: String = rs.handle.chars().filter(|c| *c != '-').collect();
    assert_eq!(
        hex.len(),
        32,
        "statement handle `{}` is not a query id",
        rs.handle
    );
    println!(
        "statement handle {} → job hash {:?}",
        rs.handle,
        statements::job_hash(&rs.handle)
    );

    // SHOW columns as SNOWFLAKE.md §4 lists them.
    let pools = p
        .run(&statements::show_compute_pools())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = pools.columns.iter().map(|c| c.name.as_str()).collect();
    for want in [
        "name",
        "state",
        "min_nodes",
        "max_nodes",
        "instance_family",
        "auto_resume",
    ] {
        assert!(
            names.contains(&want),
            "SHOW COMPUTE POOLS lacks `{want}`: {names:?}"
        );
    }
    let services = p
        .run(&statements::show_services(&p.database, &p.schema))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = services.columns.iter().map(|c| c.name.as_str()).collect();
    for want in [
        "name",
        "status",
        "compute_pool",
        "current_instances",
        "target_instances",
        "is_job",
    ] {
        assert!(
            names.contains(&want),
            "SHOW SERVICES lacks `{want}`: {names:?}"
        );
    }
    println!("{} pools, {} services", pools.len(), services.len());

    // (?) Inline deploy specs: the capability the Python client checks.
    match p.run(&statements::capabilities()).await {
        Ok(rs) => println!(
            "SYSTEM$ML_PLATFORM_CAPABILITIES: {}",
            rs.scalar().unwrap_or("")
        ),
        Err(e) => println!("SYSTEM$ML_PLATFORM_CAPABILITIES failed: {e}"),
    }

    // Bindings in a CALL (used for GET_SERVICE_LOGS): a harmless system function with a bound text.
    let bound = statements::Statement {
        sql: "SELECT UPPER(?)".into(),
        bindings: vec![hugflake::platform::snowflake::sqlapi::text("hugflake")],
    };
    let rs = p
        .api
        .execute(&bound.sql, &bound.bindings, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.scalar(), Some("HUGFLAKE"));
    let models = p.models().await.unwrap_or_else(|e| panic!("{e}"));
    for m in models.iter().take(3) {
        let v = p.versions(&m.name).await.unwrap_or_default();
        println!(
            "model {}: {:?}",
            m.name,
            v.iter()
                .map(|v| (&v.name, &v.task, v.functions.len()))
                .collect::<Vec<_>>()
        );
    }
}
