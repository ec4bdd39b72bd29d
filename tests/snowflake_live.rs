//! Opt-in checks against a real Snowflake account, to settle the lines SNOWFLAKE.md marks (?).
//!
//!     HUGFLAKE_LIVE_SNOWFLAKE=<connection name> cargo test --release --test snowflake_live -- --include-ignored
//!
//! `live_snowflake_read_only_checks` changes nothing. `live_snowflake_writes` runs only when
//! `HUGFLAKE_LIVE_SNOWFLAKE_WRITE=1` as well: it creates one table `HUGFLAKE_LIVE_<random>` in the
//! connection's schema and drops it (ARRAY → VECTOR and VARIANT → VECTOR casts, `DELETE … USING`
//! on a VECTOR table, the statement handle against QUERY_HISTORY, the cancel answer's body).
//! With `HUGFLAKE_LIVE_SNOWFLAKE_IMPORT_POOL=<pool>` it also imports MiniLM as a new version
//! through `SYSTEM$IMPORT_MODEL(?)` with the spec bound (a real import: minutes, credits), and with
//! `HUGFLAKE_LIVE_SNOWFLAKE_PIPELINE_SERVICE=<service>` (a transformers pipeline service you
//! already run) it calls `/--call--` on its ingress and prints its SPCS_GET_EVENTS rows; with
//! `HUGFLAKE_LIVE_SNOWFLAKE_IMAGE_SERVICE=<service>` (a zero-shot image service, e.g. PubMedCLIP)
//! it sends a demo picture, settling how BYTES travel in an ingress request.
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

fn live_writes() -> bool {
    std::env::var("HUGFLAKE_LIVE_SNOWFLAKE_WRITE").is_ok_and(|v| v == "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Snowflake account: HUGFLAKE_LIVE_SNOWFLAKE=<connection> HUGFLAKE_LIVE_SNOWFLAKE_WRITE=1"]
async fn live_snowflake_writes() {
    if !live_writes() {
        println!("HUGFLAKE_LIVE_SNOWFLAKE_WRITE is not 1: nothing written");
        return;
    }
    let p = platform().await;
    let run = |sql: String| {
        let api = p.api.clone();
        async move {
            api.execute(&sql, &[], Duration::from_secs(120))
                .await
                .map_err(|e| e.to_string())
        }
    };
    let table = format!(
        "{}.{}.HUGFLAKE_LIVE_{}",
        p.database,
        p.schema,
        &uuid::Uuid::new_v4().simple().to_string()[..8].to_ascii_uppercase()
    );
    let created = run(format!(
        "CREATE TABLE {table} (NOTE_ID VARCHAR, EMBEDDING VECTOR(FLOAT, 3))"
    ))
    .await;
    assert!(created.is_ok(), "{created:?}");
    // What hugflake sends: VARIANT → ARRAY → VECTOR.
    let through_array = run(format!(
        r#"INSERT INTO {table} SELECT 'a', PARSE_JSON('{{"output": [0.1, 0.2, 0.3]}}'):"output"::ARRAY::VECTOR(FLOAT, 3)"#
    ))
    .await;
    // What it used to send: VARIANT straight to VECTOR (printed, not asserted).
    let direct = run(
        r#"SELECT PARSE_JSON('{"output": [0.1, 0.2, 0.3]}'):"output"::VECTOR(FLOAT, 3)"#.into(),
    )
    .await;
    println!("VARIANT -> VECTOR directly: {direct:?}");
    let delete = run(format!(
        "DELETE FROM {table} c USING (SELECT 'a' AS NOTE_ID) t WHERE c.NOTE_ID = t.NOTE_ID"
    ))
    .await;
    // The statement handle is the query id (the job-name hash depends on it).
    let marker = format!("hugflake-marker-{}", uuid::Uuid::new_v4().simple());
    let marked = p
        .api
        .execute(&format!("SELECT '{marker}'"), &[], Duration::from_secs(60))
        .await;
    let history = match &marked {
        Ok(rs) => run(format!(
            "SELECT QUERY_ID FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY(RESULT_LIMIT => 1000)) \
             WHERE QUERY_TEXT = 'SELECT ''{marker}''' AND QUERY_ID = '{}'",
            rs.handle
        ))
        .await
        .map(|h| h.len()),
        Err(e) => Err(e.to_string()),
    };
    // The cancel answer's body.
    let cancel = match p
        .api
        .start("CALL SYSTEM$WAIT(30)", &[], 60)
        .await
        .map_err(|e| e.to_string())
    {
        Ok(Err(handle)) => p.api.cancel(&handle).await.map_err(|e| e.to_string()),
        Ok(Ok(_)) => Err("SYSTEM$WAIT returned at once".into()),
        Err(e) => Err(e),
    };
    println!("cancel answered: {cancel:?}");
    let dropped = run(format!("DROP TABLE {table}")).await;
    assert!(through_array.is_ok(), "ARRAY -> VECTOR: {through_array:?}");
    assert!(
        delete.is_ok(),
        "DELETE ... USING on a VECTOR table: {delete:?}"
    );
    assert_eq!(history, Ok(1), "the statement handle is not the query id");
    assert!(cancel.is_ok(), "{cancel:?}");
    assert!(dropped.is_ok(), "{dropped:?}");

    if let Ok(pool) = std::env::var("HUGFLAKE_LIVE_SNOWFLAKE_IMPORT_POOL") {
        // SYSTEM$IMPORT_MODEL with its spec as a bound `?`, then the whole flow to READY, then
        // warehouse inference on hugflake's own import.
        let mut spec = hugflake::domain::ImportSpec::with_defaults(
            "sentence-transformers/all-MiniLM-L6-v2",
            &pool,
        );
        spec.task = Some("sentence-similarity".into());
        spec.model = "HUGFLAKE_LIVE_MINILM".into();
        spec.version = format!("V{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        spec.service = format!("HUGFLAKE_LIVE_{}", spec.version);
        let job = p.import(&spec).await.unwrap_or_else(|e| panic!("{e}"));
        let d = loop {
            let d = p
                .job(&job.id, None, Some(Duration::from_secs(10)))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            if !matches!(
                d.summary.state,
                hugflake::domain::JobState::Queued | hugflake::domain::JobState::Running
            ) {
                break d;
            }
        };
        for l in &d.log {
            println!("  {}", l.line);
        }
        assert_eq!(
            d.summary.state,
            hugflake::domain::JobState::Done,
            "{:?}",
            d.summary.error
        );
        let v = p
            .versions(&spec.model)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        println!(
            "runnable_in of the new version: {:?}",
            v.iter()
                .find(|x| x.name == spec.version)
                .map(|x| &x.runnable_in)
        );
        let r = p
            .predict_version(
                &spec.model,
                &spec.version,
                "ENCODE",
                &[vec![serde_json::json!("warehouse inference")]],
            )
            .await;
        assert!(
            r.is_ok(),
            "MODEL(m, v)!ENCODE on hugflake's own import: {r:?}"
        );
    }

    if let Ok(service) = std::env::var("HUGFLAKE_LIVE_SNOWFLAKE_PIPELINE_SERVICE") {
        // `__call__` as `/--call--` on the ingress, and the events SPCS records.
        let r = p
            .predict(
                &service,
                "__CALL__",
                &[vec![serde_json::json!("fever and cough in a toddler")]],
            )
            .await;
        println!("/--call--: {r:?}");
        assert!(r.is_ok(), "{r:?}");
        let events = p.events(&service).await;
        println!("SPCS_GET_EVENTS: {events:?}");
        assert!(events.is_ok(), "{events:?}");
    }

    if let Ok(service) = std::env::var("HUGFLAKE_LIVE_SNOWFLAKE_IMAGE_SERVICE") {
        // How BYTES travel: hugflake sends hex to the ingress (BINARY_OUTPUT_FORMAT's default).
        use base64::Engine;
        let png = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/demo/chest-xray-synthetic.png"
        ))
        .unwrap_or_default();
        let image = base64::engine::general_purpose::STANDARD.encode(png);
        let r = p
            .predict(
                &service,
                "__CALL__",
                &[vec![
                    serde_json::json!(image),
                    serde_json::json!(["chest x-ray", "brain MRI"]),
                ]],
            )
            .await;
        println!("image call: {r:?}");
        assert!(r.is_ok(), "{r:?}");
    }
}
