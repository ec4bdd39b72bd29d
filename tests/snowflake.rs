//! The Snowflake platform against the SQL API simulator on 127.0.0.1: golden statements and
//! specs, key-pair JWTs checked with openssl, and the whole import and health flow through the
//! Platform trait (progress, logs, failures, re-attach after a restart, retries, partitions, REST
//! and SQL inference).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use hugflake::domain::{JobState, PoolState, ServiceStatus, Stage, StageState};
use hugflake::platform::snowflake::auth::Signer;
use hugflake::platform::snowflake::connection;
use hugflake::platform::snowflake::ident::{Ident, Qualified};
use hugflake::platform::snowflake::{InferenceRoute, SnowflakePlatform, jobs, statements};
use hugflake::platform::{Platform, PlatformError};
use serde_json::{Value, json};
use support::snowflake_server::{PAT, SimState};

use support::sim_setup::{Setup, keys, openssl, spec, wait_job};

#[test]
fn statements_are_golden() {
    let db = Ident::parse("ml").unwrap_or_else(|e| panic!("{e}"));
    let sc = Ident::parse("public").unwrap_or_else(|e| panic!("{e}"));
    let svc = Qualified::parse("minilm_svc", &db, &sc).unwrap_or_else(|e| panic!("{e}"));
    let odd = Qualified::parse("\"My Svc\"", &db, &sc).unwrap_or_else(|e| panic!("{e}"));
    let model = Qualified::parse("ALL_MINILM_L6_V2", &db, &sc).unwrap_or_else(|e| panic!("{e}"));
    let v1 = Ident::parse("v1").unwrap_or_else(|e| panic!("{e}"));
    let pool = Ident::parse("ml_cpu_pool").unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        (statements::show_compute_pools().sql, "SHOW COMPUTE POOLS"),
        (
            statements::show_services(&db, &sc).sql,
            "SHOW SERVICES IN SCHEMA ML.PUBLIC",
        ),
        (
            statements::show_models(&db, &sc).sql,
            "SHOW MODELS IN SCHEMA ML.PUBLIC",
        ),
        (
            statements::show_versions(&model).sql,
            "SHOW VERSIONS IN MODEL ML.PUBLIC.ALL_MINILM_L6_V2",
        ),
        (
            statements::show_functions(&model, &v1).sql,
            "SHOW FUNCTIONS IN MODEL ML.PUBLIC.ALL_MINILM_L6_V2 VERSION V1",
        ),
        (
            statements::show_containers(&svc).sql,
            "SHOW SERVICE CONTAINERS IN SERVICE ML.PUBLIC.MINILM_SVC",
        ),
        (
            statements::show_endpoints(&odd).sql,
            "SHOW ENDPOINTS IN SERVICE ML.PUBLIC.\"My Svc\"",
        ),
        (
            statements::alter_pool(&pool, true).sql,
            "ALTER COMPUTE POOL ML_CPU_POOL SUSPEND",
        ),
        (
            statements::alter_service(&svc, false).sql,
            "ALTER SERVICE ML.PUBLIC.MINILM_SVC RESUME",
        ),
        (
            statements::drop_service(&svc).sql,
            "DROP SERVICE ML.PUBLIC.MINILM_SVC",
        ),
        (
            statements::alter_service_scaling(
                &svc,
                &hugflake::domain::ScalingChange {
                    min_instances: Some(0),
                    max_instances: None,
                    auto_suspend_secs: Some(300),
                },
            )
            .sql,
            "ALTER SERVICE ML.PUBLIC.MINILM_SVC SET MIN_INSTANCES = 0 AUTO_SUSPEND_SECS = 300",
        ),
        (
            statements::drop_model(&model, Some(&v1)).sql,
            "ALTER MODEL ML.PUBLIC.ALL_MINILM_L6_V2 DROP VERSION V1",
        ),
        (
            statements::drop_model(&model, None).sql,
            "DROP MODEL ML.PUBLIC.ALL_MINILM_L6_V2",
        ),
        (
            statements::service_logs(&svc, 0, "model-inference").sql,
            "CALL SYSTEM$GET_SERVICE_LOGS(?, ?, ?)",
        ),
        (
            statements::service_previous_logs(&svc, 0, "model-inference", 200).sql,
            "CALL SYSTEM$GET_SERVICE_LOGS(?, ?, ?, ?, TRUE)",
        ),
        (
            statements::service_call(&svc, "ENCODE", &["x".into()]).sql,
            "SELECT ML.PUBLIC.MINILM_SVC!ENCODE(?)",
        ),
        (
            statements::service_call(&svc, "__CALL__", &["x".into()]).sql,
            "SELECT ML.PUBLIC.MINILM_SVC!\"__CALL__\"(?)",
        ),
        (
            statements::import_model("spec").sql,
            "SELECT SYSTEM$IMPORT_MODEL(?)",
        ),
        (
            statements::deploy_model("spec").sql,
            "CALL SYSTEM$DEPLOY_MODEL(?)",
        ),
        (
            statements::capabilities().sql,
            "SELECT SYSTEM$ML_PLATFORM_CAPABILITIES()",
        ),
        (
            statements::show_grants(&Ident::parse("ml_engineer").unwrap_or_else(|e| panic!("{e}")))
                .sql,
            "SHOW GRANTS TO ROLE ML_ENGINEER",
        ),
        (
            statements::show_secret(
                &Qualified::parse("hf_token", &db, &sc).unwrap_or_else(|e| panic!("{e}")),
            )
            .sql,
            "SHOW SECRETS LIKE 'HF\\\\_TOKEN' IN SCHEMA ML.PUBLIC",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
    // Literals only ever travel as bindings.
    let logs = statements::service_logs(&odd, 0, "proxy'; DROP TABLE x; --");
    assert_eq!(
        logs.bindings
            .iter()
            .map(|b| b.value.as_str())
            .collect::<Vec<_>>(),
        ["ML.PUBLIC.\"My Svc\"", "0", "proxy'; DROP TABLE x; --"]
    );
    let call = statements::service_call(&svc, "ENCODE", &["Jane's note".into()]);
    assert_eq!(call.bindings[0].kind, "TEXT");
    assert_eq!(call.bindings[0].value, "Jane's note");
}

#[tokio::test]
async fn specs_are_golden() {
    let s = Setup::new().await;
    let p = s.platform(InferenceRoute::Rest);
    let mut sp = spec(
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-similarity",
        "ALL_MINILM_L6_V2",
    );
    sp.min_instances = 0;
    assert_eq!(
        jobs::import_yaml(&p, &sp).unwrap_or_else(|e| panic!("{e}")),
        "compute_pool: ML_CPU_POOL
models:
- name:
    model_name: ML.PUBLIC.ALL_MINILM_L6_V2
    version_name: V1
  hf_model:
    hf_model_name: sentence-transformers/all-MiniLM-L6-v2
    trust_remote_code: false
    hf_model_kwargs: '{}'
  log_model_args:
    target_platforms:
    - WAREHOUSE
    - SNOWPARK_CONTAINER_SERVICES
    warehouse: ML_WH
    comment: imported by hugflake
"
    );
    assert_eq!(
        jobs::deploy_yaml(&p, &sp).unwrap_or_else(|e| panic!("{e}")),
        "models:
- name: ML.PUBLIC.ALL_MINILM_L6_V2
  version: V1
image_build:
  compute_pool: ML_CPU_POOL
  force_rebuild: false
service:
  name: ML.PUBLIC.ALL_MINILM_L6_V2_SVC
  compute_pool: ML_CPU_POOL
  ingress_enabled: true
  min_instances: 0
  max_instances: 1
"
    );
    // Resource requests are strings, as snowflake-ml-python's deployment spec has them.
    sp.resources = hugflake::domain::Resources {
        gpu: Some(1),
        cpu: Some("4".into()),
        memory: Some("16Gi".into()),
    };
    let y = jobs::deploy_yaml(&p, &sp).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        y.ends_with("  max_instances: 1\n  cpu: '4'\n  memory: 16Gi\n  gpu: '1'\n"),
        "{y}"
    );
    let ner = spec("d4data/biomedical-ner-all", "token-classification", "NER");
    let y = jobs::import_yaml(&p, &ner).unwrap_or_else(|e| panic!("{e}"));
    assert!(y.contains("    task: token-classification\n"), "{y}");
    let err = jobs::import_yaml(
        &p,
        &spec(
            "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
            "zero-shot-image-classification",
            "CLIP",
        ),
    )
    .err()
    .unwrap_or_default();
    assert!(err.contains("open_clip"), "{err}");
}

#[test]
fn key_pair_jwts_carry_the_documented_claims_and_verify() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (plain, enc) = keys(dir.path());
    let spki = openssl(
        &[
            "pkey",
            "-in",
            plain.to_str().unwrap_or(""),
            "-pubout",
            "-outform",
            "DER",
        ],
        None,
    );
    let want = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD.encode(sha256(&spki))
    );
    let signer = Signer::load(&plain, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(signer.fingerprint, want);
    // The encrypted key needs its passphrase, and gives the same fingerprint with it.
    let err = Signer::load(&enc, None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("encrypted"), "{err}");
    let wrong = Signer::load(&enc, Some(&hugflake::secret::Secret::new("nope")))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        wrong.contains("wrong passphrase") && !wrong.contains("nope"),
        "{wrong}"
    );
    let signer2 = Signer::load(
        &enc,
        Some(&hugflake::secret::Secret::new("canary-passphrase")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(signer2.fingerprint, want);

    let jwt = signer
        .jwt("myorg-acct.us-east-1", "hugflake", 1_764_100_000)
        .unwrap_or_else(|e| panic!("{e}"));
    let parts: Vec<&str> = jwt.expose().split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap_or_default()
    };
    let header: Value = serde_json::from_slice(&decode(parts[0])).unwrap_or_default();
    assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
    let claims: Value = serde_json::from_slice(&decode(parts[1])).unwrap_or_default();
    assert_eq!(claims["iss"], format!("MYORG-ACCT.HUGFLAKE.{want}"));
    assert_eq!(claims["sub"], "MYORG-ACCT.HUGFLAKE");
    assert_eq!(claims["iat"], 1_764_100_000);
    assert_eq!(claims["exp"], 1_764_100_000 + 59 * 60);
    // The signature verifies with the public key openssl extracts.
    let pkcs1 = openssl(
        &[
            "rsa",
            "-in",
            plain.to_str().unwrap_or(""),
            "-RSAPublicKey_out",
            "-outform",
            "DER",
        ],
        None,
    );
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        pkcs1,
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    assert!(key.verify(signed.as_bytes(), &decode(parts[2])).is_ok());
    assert!(key.verify(b"tampered", &decode(parts[2])).is_err());
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pair_connections_reach_the_sql_api() {
    let s = Setup::new().await;
    let (plain, _) = keys(s.dir.path());
    let env = s.env(&[
        (
            "SNOWFLAKE_CONNECTIONS_SIM_AUTHENTICATOR",
            "SNOWFLAKE_JWT".into(),
        ),
        (
            "SNOWFLAKE_CONNECTIONS_SIM_PRIVATE_KEY_FILE",
            plain.display().to_string(),
        ),
    ]);
    let conn =
        connection::load(&env, s.dir.path(), Some("sim"), &[]).unwrap_or_else(|e| panic!("{e}"));
    let p = SnowflakePlatform::new(
        &conn,
        &env,
        &s.dir.path().join("data"),
        InferenceRoute::Rest,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let status = p.status().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.version, "9.38.1");
    assert!(
        status
            .details
            .contains(&("role".to_string(), "ML_ENGINEER".to_string()))
    );
    let st = s.sim.state();
    assert_eq!(
        st.token_types.last().map(String::as_str),
        Some("KEYPAIR_JWT")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_health_through_the_platform_trait() {
    let s = Setup::new().await;
    let p = s.platform(InferenceRoute::Rest);
    // Health: pools with the instance family's size; partitions of a long answer are fetched.
    s.sim.state().faults.partition_rows = 1;
    let pools = p.pools().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pools.len(), 2);
    assert_eq!(pools[0].name, "ML_CPU_POOL");
    assert_eq!((pools[0].vcpu, pools[0].memory_gib), (3.0, 13.0));
    assert_eq!(s.sim.state().partition_requests, 1);
    s.sim.state().faults.partition_rows = 0;

    let job = p
        .import(&spec(
            "sentence-transformers/all-MiniLM-L6-v2",
            "sentence-similarity",
            "ALL_MINILM_L6_V2",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&p, &job.id).await;
    assert_eq!(
        d.summary.state,
        JobState::Done,
        "{:?} {:?}",
        d.summary.error,
        d.log
    );
    let state = |st: Stage| d.stage(st).map(|s| s.state);
    assert_eq!(state(Stage::Verify), Some(StageState::Skipped));
    for st in [
        Stage::Resolve,
        Stage::Download,
        Stage::Register,
        Stage::Build,
        Stage::Deploy,
        Stage::Ready,
    ] {
        assert_eq!(state(st), Some(StageState::Done), "{st:?}");
    }
    let log: Vec<&str> = d.log.iter().map(|l| l.line.as_str()).collect();
    assert!(
        log.iter()
            .any(|l| l.contains("the logging job is MODEL_LOGGING_")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l
                .starts_with("model-logging: downloading sentence-transformers/all-MiniLM-L6-v2")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("model-build: building image")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("functions ENCODE, ENCODE_QUERY, ENCODE_DOCUMENT")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("ready: ENCODE answered")),
        "{log:#?}"
    );
    // The statements sent: the spec only ever as a binding, with the documented SQL.
    let st = s.sim.state().statements.clone();
    let import = st
        .iter()
        .find(|(q, _)| q == "SELECT SYSTEM$IMPORT_MODEL(?)")
        .unwrap_or_else(|| panic!("no import in {st:?}"));
    assert!(import.1[0].contains("hf_model_name: sentence-transformers/all-MiniLM-L6-v2"));
    // Autocapture is left out of the spec (off), as snowflake-ml-python leaves it out.
    assert!(
        st.iter()
            .any(|(q, b)| q == "CALL SYSTEM$DEPLOY_MODEL(?)" && !b[0].contains("autocapture"))
    );

    // Health and inference on the new service.
    let services = p.services().await.unwrap_or_default();
    let svc = services
        .iter()
        .find(|x| x.name == "ALL_MINILM_L6_V2_SVC")
        .unwrap_or_else(|| panic!("{services:?}"));
    assert_eq!(svc.status, ServiceStatus::Running);
    assert!(
        services
            .iter()
            .any(|x| x.is_job && x.name.starts_with("MODEL_BUILD_"))
    );
    let c = p
        .containers("ALL_MINILM_L6_V2_SVC")
        .await
        .unwrap_or_default();
    assert_eq!(c[0].container_name, "model-inference");
    assert_eq!(c[0].status, hugflake::domain::InstanceStatus::Ready);
    let logs = p
        .logs("ALL_MINILM_L6_V2_SVC", None, 100, None)
        .await
        .unwrap_or_default();
    assert!(logs.iter().any(|l| l.line.contains("model loaded")));
    // The previous container's log: refused while nothing restarted (Snowflake allows the
    // argument only after a restart, so it is not even asked); after a restart, the five-argument
    // form with the line count.
    let err = p
        .previous_logs("ALL_MINILM_L6_V2_SVC", None, 50)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("has restarted, so there is no previous log"),
        "{err}"
    );
    assert!(
        !s.sim
            .state()
            .statements
            .iter()
            .any(|(q, _)| q.contains("?, TRUE)"))
    );
    if let Some(svc) = s
        .sim
        .state()
        .services
        .iter_mut()
        .find(|x| x.name == "ALL_MINILM_L6_V2_SVC")
    {
        svc.previous_logs = Some(
            (0..80)
                .map(|i| format!("line {i}"))
                .chain(["Killed: out of memory".to_string()])
                .collect(),
        );
    }
    let previous = p
        .previous_logs("ALL_MINILM_L6_V2_SVC", Some(0), 50)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(previous.len(), 50);
    assert_eq!(previous[49].line, "Killed: out of memory");
    assert_eq!(previous[0].line, "line 31");
    let st = s.sim.state().statements.clone();
    let (_, binds) = st
        .iter()
        .find(|(q, _)| q == "CALL SYSTEM$GET_SERVICE_LOGS(?, ?, ?, ?, TRUE)")
        .unwrap_or_else(|| panic!("{st:?}"));
    assert_eq!(binds[1..], ["0", "model-inference", "50"]);
    let none = p
        .previous_logs("ALL_MINILM_L6_V2_SVC", Some(1), 50)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(none.contains("no container of instance 1"), "{none}");
    // SPCS_GET_EVENTS: the container's status changes, oldest first.
    let events = p
        .events("ALL_MINILM_L6_V2_SVC")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["PENDING: Waiting to start", "READY: Running"]);
    assert_eq!(events[1].name, "CONTAINER.STATUS_CHANGE");
    assert_eq!(events[1].instance_id, Some(0));
    assert!(
        s.sim
            .state()
            .statements
            .iter()
            .any(|(q, _)| q.contains("!SPCS_GET_EVENTS()) ORDER BY TIMESTAMP"))
    );
    let models = p.models().await.unwrap_or_default();
    assert_eq!(models[0].versions, vec!["V1".to_string()]);
    let v = p.versions("ALL_MINILM_L6_V2").await.unwrap_or_default();
    assert_eq!(
        v[0].functions
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["ENCODE", "ENCODE_QUERY", "ENCODE_DOCUMENT"]
    );
    assert_eq!(v[0].functions[0].arguments[0].name, "sentence");
    let r = p
        .predict(
            "ALL_MINILM_L6_V2_SVC",
            "ENCODE",
            &[vec![json!("chest pain")], vec![json!("fever")]],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.outputs[0]["output"][0], 10.0);
    assert_eq!(r.outputs[1]["output"][0], 5.0);
    let calls = s.sim.state().ingress_calls;
    let sql = s.platform(InferenceRoute::Sql);
    let r = sql
        .predict(
            "ALL_MINILM_L6_V2_SVC",
            "ENCODE",
            &[vec![json!("chest pain")]],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.outputs[0]["output"][0], 10.0);
    assert_eq!(
        s.sim.state().ingress_calls,
        calls,
        "the SQL route does not use the ingress"
    );
    assert!(
        s.sim
            .statements()
            .iter()
            .any(|q| q == "SELECT ML.PUBLIC.ALL_MINILM_L6_V2_SVC!ENCODE(?)")
    );

    // 429 storms are retried.
    s.sim.state().faults.throttle = 3;
    assert!(p.pools().await.is_ok());
    // Submissions that hang past the request timeout are sent again with the same request id and
    // retry=true (Snowflake then never runs a statement twice).
    s.sim.state().submissions.clear();
    s.sim.state().faults.stall = (2, Duration::from_secs(3));
    let pools = p.pools().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pools[0].name, "ML_CPU_POOL");
    let subs = s.sim.state().submissions.clone();
    assert_eq!(subs.len(), 3, "{subs:?}");
    assert!(subs.iter().all(|(id, _)| id == &subs[0].0), "{subs:?}");
    assert_eq!(
        subs.iter().map(|(_, retry)| *retry).collect::<Vec<_>>(),
        [false, true, true]
    );

    // Suspend and resume, pool and service; drop.
    let pool = p
        .suspend_pool("ml_cpu_pool")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pool.state, PoolState::Suspended);
    let svc = p
        .resume_service("all_minilm_l6_v2_svc")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(svc.status, ServiceStatus::Running);
    let svc = p
        .suspend_service("ALL_MINILM_L6_V2_SVC")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(svc.status, ServiceStatus::Suspended);
    assert!(p.resume_pool("ML_CPU_POOL").await.is_ok());
    p.drop_service("ALL_MINILM_L6_V2_SVC")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        p.containers("ALL_MINILM_L6_V2_SVC").await,
        Err(PlatformError::NotFound(_))
    ));
    assert!(
        s.sim
            .statements()
            .iter()
            .any(|q| q == "ALTER COMPUTE POOL ML_CPU_POOL SUSPEND")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_fail_with_the_reason_and_pre_flight_catches_what_it_can() {
    let s = Setup::new().await;
    let p = s.platform(InferenceRoute::Rest);
    let failed = |d: &hugflake::domain::JobDetail, stage: Stage, needle: &str| {
        assert_eq!(d.summary.state, JobState::Failed, "{:?}", d.log);
        let e = d.summary.error.clone().unwrap_or_default();
        assert!(e.contains(needle), "`{e}` lacks `{needle}`");
        assert_eq!(d.stage(stage).map(|s| s.state), Some(StageState::Failed));
    };
    let j = p
        .import(&spec(
            "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
            "zero-shot-image-classification",
            "CLIP",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    failed(&wait_job(&p, &j.id).await, Stage::Resolve, "open_clip");
    let j = p
        .import(&spec(
            "dmis-lab/biobert-v1.1",
            "feature-extraction",
            "BIOBERT",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    failed(
        &wait_job(&p, &j.id).await,
        Stage::Resolve,
        "no automatic signature",
    );
    let mut nopool = spec(
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-similarity",
        "M1",
    );
    // Precision is a local serving choice: Snowflake's container runs transformers in fp32.
    let mut int8 = nopool.clone();
    int8.precision = hugflake::domain::Precision::Int8;
    let err = p
        .import(&int8)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("--precision int8 is a local serving choice"),
        "{err}"
    );
    nopool.pool = "GPU_POOL".into();
    let j = p.import(&nopool).await.unwrap_or_else(|e| panic!("{e}"));
    failed(
        &wait_job(&p, &j.id).await,
        Stage::Resolve,
        "compute pool GPU_POOL does not exist",
    );
    // The import statement fails server-side: the job says why; retry after the fault clears.
    s.sim.state().faults.import_error =
        Some("Insufficient privileges to operate on schema 'PUBLIC'".into());
    let j = p
        .import(&spec(
            "sentence-transformers/all-MiniLM-L6-v2",
            "sentence-similarity",
            "M2",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    failed(
        &wait_job(&p, &j.id).await,
        Stage::Download,
        "Insufficient privileges",
    );
    s.sim.state().faults.import_error = None;
    s.sim.state().faults.build_fails = true;
    p.retry_job(&j.id).await.unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&p, &j.id).await;
    failed(&d, Stage::Build, "MODEL_BUILD_");
    assert!(
        d.log
            .iter()
            .any(|l| l.line.contains("model-build: ERROR: pip install failed")),
        "{:?}",
        d.log
    );
    s.sim.state().faults.build_fails = false;
    p.retry_job(&j.id).await.unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&p, &j.id).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.log);
    // The same name again is refused before anything runs.
    let j = p
        .import(&spec(
            "sentence-transformers/all-MiniLM-L6-v2",
            "sentence-similarity",
            "M2",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    failed(&wait_job(&p, &j.id).await, Stage::Resolve, "already exists");
    // Gated repos: the HF token travels as the name of a Snowflake secret, which must exist.
    let mut gated = spec("meta-llama/gated-ner", "token-classification", "GATED");
    gated.token_secret = Some("NO_SUCH_SECRET".into());
    let j = p.import(&gated).await.unwrap_or_else(|e| panic!("{e}"));
    failed(
        &wait_job(&p, &j.id).await,
        Stage::Resolve,
        "secret ML.PUBLIC.NO_SUCH_SECRET does not exist",
    );
    gated.token_secret = Some("hf_token".into());
    let j = p.import(&gated).await.unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&p, &j.id).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.log);
    assert!(
        d.log
            .iter()
            .any(|l| l.line.contains("role ML_ENGINEER holds the grants")),
        "{:?}",
        d.log
    );
    let st = s.sim.state().statements.clone();
    assert!(st.iter().any(|(q, b)| q == "SELECT SYSTEM$IMPORT_MODEL(?)"
        && b[0].contains("token_secret_object: ML.PUBLIC.HF_TOKEN")));
    // Bad names never reach SQL.
    let mut bad = spec(
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-similarity",
        "X",
    );
    bad.service = String::new();
    assert!(p.import(&bad).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_hugflake_reattaches_to_a_running_import() {
    let s = Setup::new().await;
    s.sim.state().step = Duration::from_millis(800);
    let id = {
        let p = s.platform(InferenceRoute::Rest);
        let j = p
            .import(&spec(
                "sentence-transformers/all-MiniLM-L6-v2",
                "sentence-similarity",
                "RE",
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Wait until the import statement runs, then "exit".
        let start = Instant::now();
        loop {
            let d = p
                .job(&j.id, None, None)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            if d.stage(Stage::Download).map(|s| s.state) == Some(StageState::Running)
                && d.log.iter().any(|l| l.line.contains("MODEL_LOGGING_"))
            {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        j.id
    };
    let imports_before = s
        .sim
        .statements()
        .iter()
        .filter(|q| q.contains("IMPORT_MODEL"))
        .count();
    // A new process: same data dir, a fresh platform; listing jobs re-attaches.
    let p = s.platform(InferenceRoute::Rest);
    let listed = p.jobs().await.unwrap_or_default();
    assert!(listed.iter().any(|j| j.id == id));
    let d = wait_job(&p, &id).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.log);
    assert!(
        d.log
            .iter()
            .any(|l| l.line.contains("re-attached to the import statement"))
    );
    let imports_after = s
        .sim
        .statements()
        .iter()
        .filter(|q| q.contains("IMPORT_MODEL"))
        .count();
    assert_eq!(
        imports_before, imports_after,
        "the import statement ran once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_unknown_statements_say_so() {
    let s = Setup::new().await;
    let env = s.env(&[("SNOWFLAKE_CONNECTIONS_SIM_TOKEN", "wrong-token".into())]);
    let conn =
        connection::load(&env, s.dir.path(), Some("sim"), &[]).unwrap_or_else(|e| panic!("{e}"));
    let p = SnowflakePlatform::new(
        &conn,
        &env,
        &s.dir.path().join("data"),
        InferenceRoute::Rest,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = p
        .pools()
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("wrong-token"));
    let p = s.platform(InferenceRoute::Rest);
    let err = p.versions("NOPE").await.err();
    assert!(matches!(err, Some(PlatformError::NotFound(_))), "{err:?}");
}

/// The binary on connection `sim` of the simulator (a PAT), with its own config and data.
fn cli_command(s: &Setup) -> impl Fn(&[&str]) -> Command + Clone + Send + 'static {
    let port = s.sim.addr.port().to_string();
    let home = s.dir.path().to_path_buf();
    std::fs::write(
        home.join("config.toml"),
        "[platform]\nsnowflake_poll_secs = 0.2\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    move |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hugflake"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("HUGFLAKE_CONFIG", home.join("config.toml"))
            .env("HUGFLAKE_DATA_DIR", home.join("data"))
            .env("HUGFLAKE_STATE_DIR", home.join("state"))
            .env("SNOWFLAKE_HOME", home.join("sf"))
            .env("SNOWFLAKE_CONNECTIONS_SIM_ACCOUNT", "sim12345")
            .env("SNOWFLAKE_CONNECTIONS_SIM_USER", "hugflake")
            .env("SNOWFLAKE_CONNECTIONS_SIM_DATABASE", "ML")
            .env("SNOWFLAKE_CONNECTIONS_SIM_HOST", "127.0.0.1")
            .env("SNOWFLAKE_CONNECTIONS_SIM_PORT", &port)
            .env("SNOWFLAKE_CONNECTIONS_SIM_PROTOCOL", "http")
            .env(
                "SNOWFLAKE_CONNECTIONS_SIM_AUTHENTICATOR",
                "PROGRAMMATIC_ACCESS_TOKEN",
            )
            .env("SNOWFLAKE_CONNECTIONS_SIM_TOKEN", PAT)
            .stdin(std::process::Stdio::null());
        c
    }
}

/// Runs the binary on connection `sim`: exit code, stdout, stderr.
fn cli_runner(s: &Setup) -> impl Fn(&[&str]) -> (i32, String, String) + Clone + Send + 'static {
    let command = cli_command(s);
    move |args: &[&str]| {
        let out = command(args).output().unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

/// `batch embed` of the simulator's notes table through the MiniLM service, on connection `sim`.
const EMBED_NOTES: [&str; 8] = [
    "--connection",
    "sim",
    "batch",
    "embed",
    "--service",
    "all_minilm_l6_v2_svc",
    "--input",
    "clinical_notes",
];

/// The binary on the Snowflake platform: `--connection` picks it; doctor shows each key's source
/// with secrets masked; `status --json` and an import through the headless command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_speaks_to_snowflake_with_connection() {
    let s = Setup::new().await;
    s.sim.state().step = Duration::from_millis(200);
    let command = cli_command(&s);
    let run = cli_runner(&s);
    let (code, out, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(&["--connection", "sim", "doctor"])
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("connection `sim`, authentication PROGRAMMATIC_ACCESS_TOKEN"),
        "{out}"
    );
    assert!(out.contains("$SNOWFLAKE_CONNECTIONS_SIM_HOST"), "{out}");
    assert!(!out.contains(PAT), "the PAT reached doctor's output");
    assert!(
        out.contains("Snowflake: one refresh = ") && out.contains("SQL statements"),
        "{out}"
    );
    let (code, out, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(&["--connection", "sim", "status", "--json"])
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(v["status"]["kind"], "snowflake");
    assert_eq!(v["pools"][0]["name"], "ML_CPU_POOL");
    let (code, _, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || {
            run(&[
                "--connection",
                "sim",
                "import",
                "sentence-transformers/all-MiniLM-L6-v2",
                "--task",
                "sentence-similarity",
                "--pool",
                "ML_CPU_POOL",
            ])
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ALL_MINILM_L6_V2_SVC is RUNNING"), "{err}");
    assert!(!err.contains(PAT));
    let (code, out, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || {
            run(&[
                "--connection",
                "sim",
                "predict",
                "all_minilm_l6_v2_svc",
                "--text",
                "chest pain",
                "--json",
            ])
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(rows[0]["output"]["output"][0], 10.0, "{out}");
    let (code, out, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(&["--connection", "sim", "events", "all_minilm_l6_v2_svc"])
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("READY: Running"), "{out}");
    // A time window goes to SPCS_GET_EVENTS / SPCS_GET_LOGS as START_TIME and END_TIME.
    let window = |args: &'static [&'static str]| {
        let run = run.clone();
        move || run(args)
    };
    let (code, out, err) = tokio::task::spawn_blocking(window(&[
        "--connection",
        "sim",
        "events",
        "all_minilm_l6_v2_svc",
        "--until",
        "2026-11-26 12:00:10",
    ]))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("PENDING") && !out.contains("READY"), "{out}");
    assert!(s.sim.statements().iter().any(|q| {
        q.contains("SPCS_GET_EVENTS(START_TIME => '2026-11-25T12:00:10.000Z'::TIMESTAMP_LTZ, END_TIME => '2026-11-26T12:00:10.000Z'::TIMESTAMP_LTZ)")
    }));
    let (code, out, err) = tokio::task::spawn_blocking(window(&[
        "--connection",
        "sim",
        "logs",
        "all_minilm_l6_v2_svc",
        "--since",
        "2026-11-26T12:00:01Z",
        "--json",
    ]))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect();
    assert!(!lines.is_empty(), "{out}{err}");
    assert!(
        lines
            .iter()
            .all(|l| l["at"].as_str().unwrap_or("") >= "2026-11-26T12:00:01"),
        "{out}"
    );
    let (code, _, err) = tokio::task::spawn_blocking(window(&[
        "--connection",
        "sim",
        "logs",
        "all_minilm_l6_v2_svc",
        "--since",
        "yesterday",
    ]))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 1);
    assert!(err.contains("give a duration ago"), "{err}");

    // Batch work runs in the account: the plan, then the cache flow (missing or stale rows only).
    s.sim.state().notes = vec![
        ("1".into(), "Fever and cough for three days".into()),
        ("2".into(), "Wheezing at night".into()),
        ("3".into(), "  ".into()),
        ("4".into(), "Mass in the left lung".into()),
    ];
    let batch = |extra: &[&str]| {
        let run = run.clone();
        let mut args: Vec<String> = EMBED_NOTES.iter().map(|a| a.to_string()).collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        move || run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (code, out, err) = tokio::task::spawn_blocking(batch(&["--dry-run"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("batch_embed_plan", out);
    assert!(
        !s.sim
            .state()
            .statements
            .iter()
            .any(|(q, _)| q.contains("NOTE_EMBEDDINGS")),
        "--dry-run ran SQL"
    );
    let (code, _, err) = tokio::task::spawn_blocking(batch(&[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("4 row(s); warehouse size: SMALL"), "{err}");
    assert!(err.contains("number of rows inserted 3"), "{err}");
    assert!(err.contains("skipped 1"), "{err}");
    // Nothing changed: nothing computed.
    let (code, _, err) = tokio::task::spawn_blocking(batch(&[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("number of rows inserted 0"), "{err}");
    // One note changed, then a new version: only what is stale is deleted and computed.
    s.sim.state().notes[1].1 = "Wheezing at night, worse with exercise".into();
    let (_, _, err) = tokio::task::spawn_blocking(batch(&[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        err.contains("number of rows deleted 1") && err.contains("number of rows inserted 1"),
        "{err}"
    );
    let (_, _, err) = tokio::task::spawn_blocking(batch(&["--model-version", "V2"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        err.contains("number of rows deleted 3") && err.contains("number of rows inserted 3"),
        "{err}"
    );
    let bound = s
        .sim
        .state()
        .statements
        .iter()
        .rev()
        .find(|(q, _)| q.starts_with("INSERT INTO"))
        .map(|(_, b)| b.clone())
        .unwrap_or_default();
    assert_eq!(bound, ["ALL_MINILM_L6_V2", "V2", "ALL_MINILM_L6_V2", "V2"]);
    // Each run is on record for the TUI, with what the account computed.
    let runs = hugflake::batch::runs::list(
        &s.dir.path().join("data").join(hugflake::batch::runs::FILE),
        10,
    )
    .unwrap_or_default();
    let done: Vec<(String, u64)> = runs.iter().map(|r| (r.platform.clone(), r.done)).collect();
    assert_eq!(
        done,
        [
            ("snowflake".to_string(), 3),
            ("snowflake".into(), 1),
            ("snowflake".into(), 0),
            ("snowflake".into(), 3)
        ]
    );
    // Search in the account, ordered with a tiebreak; image classification is refused with the reason.
    let (code, out, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || {
            run(&[
                "--connection",
                "sim",
                "batch",
                "search",
                "--service",
                "all_minilm_l6_v2_svc",
                "--query",
                "night wheeze",
                "--top",
                "2",
                "--model-version",
                "V2",
            ])
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    let ids: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids, ["1", "2"], "{out}");
    let search = s.sim.state().statements.last().cloned().unwrap_or_default();
    assert!(
        search.0.contains("ORDER BY SCORE DESC, c.NOTE_ID LIMIT 2"),
        "{}",
        search.0
    );
    assert_eq!(search.1[0], "night wheeze");
    // A gateway's bad minute: 503s are retried and the run completes.
    s.sim
        .state()
        .notes
        .push(("6".into(), "Rash on both arms".into()));
    s.sim.state().faults.server_errors = 3;
    let (code, _, err) = tokio::task::spawn_blocking(batch(&[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.sim.state().faults.server_errors, 0, "the 503s were met");
    assert!(
        s.sim
            .state()
            .cache
            .contains_key(&("6".to_string(), "ALL_MINILM_L6_V2".to_string()))
    );
    // A statement that fails after running a while: the error is Snowflake's, no row is written,
    // the run is on record as failed, and the next run does the work.
    s.sim
        .state()
        .notes
        .push(("7".into(), "Ear pain and fever".into()));
    let rows_before = s.sim.state().cache.len();
    s.sim.state().faults.batch_fails = Some(Duration::from_millis(400));
    let (code, _, err) = tokio::task::spawn_blocking(batch(&[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ran out of memory"), "{err}");
    assert_eq!(
        s.sim.state().cache.len(),
        rows_before,
        "no row from a failed statement"
    );
    let runs = hugflake::batch::runs::list(
        &s.dir.path().join("data").join(hugflake::batch::runs::FILE),
        10,
    )
    .unwrap_or_default();
    assert_eq!(runs[0].state, hugflake::domain::JobState::Failed);
    s.sim.state().faults.batch_fails = None;
    let (code, _, err) = tokio::task::spawn_blocking(batch(&[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.sim.state().cache.len(), rows_before + 1);
    // Ctrl-C during a long statement cancels it in the account; the run is on record as cancelled.
    s.sim.state().faults.slow_batch = Some(Duration::from_secs(60));
    s.sim
        .state()
        .notes
        .push(("5".into(), "Knee pain after football".into()));
    let child = command(&[&EMBED_NOTES[..], &["--model-version", "V2"]].concat())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let inserts = |st: &SimState| {
        st.statements
            .iter()
            .filter(|(q, _)| q.starts_with("INSERT INTO"))
            .count()
    };
    let before = inserts(&s.sim.state());
    let started = std::time::Instant::now();
    while inserts(&s.sim.state()) == before {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the INSERT never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("cancelled in the account"), "{err}");
    assert_eq!(s.sim.state().cancelled_statements(), 1);
    assert!(
        !s.sim
            .state()
            .cache
            .contains_key(&("5".to_string(), "ALL_MINILM_L6_V2".to_string()))
    );
    let runs = hugflake::batch::runs::list(
        &s.dir.path().join("data").join(hugflake::batch::runs::FILE),
        10,
    )
    .unwrap_or_default();
    assert_eq!(runs[0].state, hugflake::domain::JobState::Cancelled);
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        run(&[
            "--connection",
            "sim",
            "batch",
            "classify-images",
            "--service",
            "x",
            "--dir",
            ".",
            "--labels",
            "a,b",
        ])
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(code, 0);
    assert!(err.contains("give --input TABLE"), "{err}");
}

/// The hospital's radiology test on Snowflake: PubMedCLIP imports as
/// zero-shot-image-classification, and `batch classify-images --connection` classifies the images
/// of a table's BINARY column in the account (children only, at most N), with the call's shape
/// taken from the service's signature; the simulator rejects wrong argument types as Snowflake
/// would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radiology_images_are_classified_in_the_account() {
    let s = Setup::new().await;
    s.sim.state().step = Duration::from_millis(100);
    let p = s.platform(InferenceRoute::Rest);
    let j = p
        .import(&spec(
            "flaviagiammarino/pubmed-clip-vit-base-patch32",
            "zero-shot-image-classification",
            "PUBMED_CLIP",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&p, &j.id).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    let png = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tiny-clip/test_image_120x90.png"),
    )
    .unwrap_or_default();
    s.sim.state().images = (0..6)
        .map(|i| support::snowflake_server::SimImage {
            id: format!("IMG{i}"),
            bytes: png.clone(),
            age: [4, 30, 12, 17, 45, 9][i],
        })
        .collect();
    let run = cli_runner(&s);
    let batch = |extra: &[&str]| {
        let run = run.clone();
        let mut args: Vec<String> = [
            "--connection",
            "sim",
            "batch",
            "classify-images",
            "--service",
            "pubmed_clip_svc",
            "--input",
            "radiology_images",
            "--labels",
            "chest X-ray,brain MRI,bone X-ray",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        move || run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (code, out, err) = tokio::task::spawn_blocking(batch(&[
        "--where",
        "PATIENT_AGE<18",
        "--limit",
        "3",
        "--dry-run",
    ]))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("batch_classify_images_plan", out);
    assert!(s.sim.state().image_labels.is_empty(), "--dry-run ran SQL");

    let (code, _, err) =
        tokio::task::spawn_blocking(batch(&["--where", "PATIENT_AGE<18", "--limit", "3"]))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("number of rows inserted 3"), "{err}");
    let done: Vec<String> = s
        .sim
        .state()
        .image_labels
        .iter()
        .map(|r| r.0.clone())
        .collect();
    assert_eq!(
        done,
        ["IMG0", "IMG2", "IMG3"],
        "children, in id order, 3 at most"
    );
    // Again: only the child not yet classified; the adults never.
    let (_, _, err) = tokio::task::spawn_blocking(batch(&["--where", "PATIENT_AGE<18"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(err.contains("number of rows inserted 1"), "{err}");
    // Other labels are another result set.
    let (_, _, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || {
            run(&[
                "--connection",
                "sim",
                "batch",
                "classify-images",
                "--service",
                "pubmed_clip_svc",
                "--input",
                "radiology_images",
                "--labels",
                "normal,pneumonia",
                "--template",
                "a radiograph showing {}",
            ])
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(err.contains("number of rows inserted 6"), "{err}");
    let (q, binds) = s
        .sim
        .state()
        .statements
        .iter()
        .rev()
        .find(|(q, _)| q.starts_with("INSERT INTO"))
        .cloned()
        .unwrap_or_default();
    assert!(
        q.contains("!\"__CALL__\"(t.IMAGE_BYTES, PARSE_JSON(?)::ARRAY, ?)"),
        "{q}"
    );
    assert!(
        binds.contains(&"a radiograph showing {}".to_string()),
        "{binds:?}"
    );
    // The image column must be the BINARY one: Snowflake's refusal comes through, with the hint.
    let (code, _, err) = tokio::task::spawn_blocking(batch(&["--image-column", "PATIENT_AGE"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(code, 0);
    assert!(
        err.contains("Invalid argument types for function '__CALL__': (NUMBER(38,0), ARRAY)"),
        "{err}"
    );
    // A broken image fails the statement with the service's reason.
    s.sim
        .state()
        .images
        .push(support::snowflake_server::SimImage {
            id: "IMG9".into(),
            bytes: b"not an image".to_vec(),
            age: 3,
        });
    let (code, _, err) = tokio::task::spawn_blocking(batch(&[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(code, 0);
    assert!(
        err.contains("IMG9") && err.contains("cannot identify image file"),
        "{err}"
    );
    // A text service is not an image service: said before any statement runs.
    let before = s.sim.state().statements.len();
    let j = p
        .import(&spec(
            "d4data/biomedical-ner-all",
            "token-classification",
            "NER",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wait_job(&p, &j.id).await.summary.state, JobState::Done);
    let (code, _, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || {
            run(&[
                "--connection",
                "sim",
                "batch",
                "classify-images",
                "--service",
                "ner_svc",
                "--input",
                "radiology_images",
                "--labels",
                "a,b",
            ])
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(code, 0);
    assert!(
        err.contains("service NER_SVC does not take images"),
        "{err}"
    );
    assert!(
        !s.sim.state().statements[before..]
            .iter()
            .any(|(q, _)| q.starts_with("INSERT")),
        "nothing ran"
    );
}

/// Secrets and clinical text on the Snowflake platform: a PAT (from a token file) and a key-pair
/// passphrase (from the environment) go through doctor, status, an import, calls with PHI-like text,
/// a failing call, batch work and an injected panic that formats a credential into its message;
/// then everything printed and every file hugflake wrote is searched: no canary anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snowflake_secrets_and_clinical_text_never_leak() {
    const PHI: &str = "Jane Doe MRN 00012345 DOB 2015-03-02";
    const MRN: &str = "00012345";
    const PASSPHRASE: &str = "canary-passphrase";
    let s = Setup::new().await;
    s.sim.state().step = Duration::from_millis(150);
    s.sim.state().notes = vec![
        ("1".into(), format!("{PHI} presents with fever")),
        ("2".into(), "Wheezing at night".into()),
    ];
    let home = s.dir.path().to_path_buf();
    let keys_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_, encrypted) = keys(keys_dir.path());
    let sf = home.join("sf");
    std::fs::create_dir_all(&sf).unwrap_or_else(|e| panic!("{e}"));
    let token_file = keys_dir.path().join("pat");
    std::fs::write(&token_file, PAT).unwrap_or_else(|e| panic!("{e}"));
    let port = s.sim.addr.port();
    let connections = format!(
        "[sim]\naccount = \"sim12345\"\nuser = \"hugflake\"\ndatabase = \"ML\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nprotocol = \"http\"\nauthenticator = \"PROGRAMMATIC_ACCESS_TOKEN\"\n\
         token_file_path = \"{}\"\n\n\
         [kp]\naccount = \"sim12345\"\nuser = \"hugflake\"\ndatabase = \"ML\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nprotocol = \"http\"\nauthenticator = \"SNOWFLAKE_JWT\"\n\
         private_key_file = \"{}\"\n",
        token_file.display(),
        encrypted.display()
    );
    std::fs::write(sf.join("connections.toml"), connections).unwrap_or_else(|e| panic!("{e}"));
    for f in [sf.join("connections.toml"), token_file.clone()] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(
        home.join("config.toml"),
        "[platform]\nsnowflake_poll_secs = 0.2\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = move |args: Vec<String>, fault: Option<&'static str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hugflake"));
        c.args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("HUGFLAKE_CONFIG", home.join("config.toml"))
            .env("HUGFLAKE_DATA_DIR", home.join("data"))
            .env("HUGFLAKE_STATE_DIR", home.join("state"))
            .env("SNOWFLAKE_HOME", home.join("sf"))
            .env("PRIVATE_KEY_PASSPHRASE", PASSPHRASE)
            .env("RUST_BACKTRACE", "1")
            .stdin(std::process::Stdio::null());
        if let Some(f) = fault {
            c.env("HUGFLAKE_FAULT", f);
        }
        let out = c.output().unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let mut printed = String::new();
    // (connection, arguments, injected fault, expected exit code)
    let steps: Vec<(&str, Vec<&str>, Option<&'static str>, i32)> = vec![
        ("sim", vec!["doctor"], None, 0),
        ("kp", vec!["doctor"], None, 0),
        ("sim", vec!["status", "--json"], None, 0),
        ("kp", vec!["status", "--json"], None, 0),
        (
            "sim",
            vec![
                "import",
                "sentence-transformers/all-MiniLM-L6-v2",
                "--task",
                "sentence-similarity",
                "--pool",
                "ML_CPU_POOL",
            ],
            None,
            0,
        ),
        (
            "sim",
            vec!["predict", "all_minilm_l6_v2_svc", "--text", PHI],
            None,
            0,
        ),
        (
            "sim",
            vec!["predict", "no_such_svc", "--text", PHI],
            None,
            1,
        ),
        (
            "sim",
            vec![
                "batch",
                "embed",
                "--service",
                "all_minilm_l6_v2_svc",
                "--input",
                "clinical_notes",
            ],
            None,
            0,
        ),
        ("sim", vec!["logs", "all_minilm_l6_v2_svc"], None, 0),
        // A bug that formats a credential into a panic message: the report is scrubbed.
        ("sim", vec!["status"], Some("snowflake-credentials"), 101),
        ("kp", vec!["status"], Some("snowflake-credentials"), 101),
    ];
    for (connection, rest, fault, want) in steps {
        let args: Vec<String> = ["--connection", connection]
            .iter()
            .chain(rest.iter())
            .map(|a| a.to_string())
            .collect();
        let shown = args.join(" ");
        let run = run.clone();
        let (code, out) = tokio::task::spawn_blocking(move || run(args, fault))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code, want, "`hugflake {shown}`:\n{out}");
        if fault.is_some() {
            assert!(
                out.contains("fault injected at snowflake-credentials")
                    && out.contains(hugflake::secret::MASK),
                "{out}"
            );
        }
        printed.push_str(&out);
    }
    // The credentials were in play: the simulator received the PAT and key-pair JWTs.
    let tokens = s.sim.state().tokens.clone();
    assert!(tokens.iter().any(|t| t == PAT));
    let jwts: Vec<String> = tokens
        .iter()
        .filter(|t| t.split('.').count() == 3)
        .cloned()
        .collect();
    assert!(!jwts.is_empty(), "no key-pair JWT was sent");

    let mut canaries = vec![PAT, PASSPHRASE, PHI, MRN];
    canaries.extend(jwts.iter().map(String::as_str));
    for c in &canaries {
        assert!(
            !printed.contains(c),
            "printed output holds {c:?}:\n{printed}"
        );
    }
    let found: Vec<_> = support::leaks(s.dir.path(), &canaries)
        .into_iter()
        // The user's own secret files hold their secrets, as they should.
        .filter(|(f, _)| !f.ends_with("sf/connections.toml"))
        .collect();
    assert!(found.is_empty(), "canaries in files: {found:?}");
    // The scan does look: the daemon-free Snowflake flow still wrote its job store and log.
    assert!(s.dir.path().join("state").exists());
}

/// `hugflake scale` on Snowflake: `ALTER SERVICE … SET` with only the values asked for, checked
/// against the service first (AUTO_SUSPEND_SECS 0 or ≥ 300, MIN ≤ MAX), with the plan shown and a
/// confirmation; an import cannot carry AUTO_SUSPEND_SECS (the deploy spec has no such key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_service_alters_only_what_was_asked() {
    let s = Setup::new().await;
    let p = s.platform(InferenceRoute::Rest);
    let mut idle = spec(
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-similarity",
        "ALL_MINILM_L6_V2",
    );
    idle.auto_suspend_secs = Some(600);
    let err = p
        .import(&idle)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("SYSTEM$DEPLOY_MODEL's spec has no such key")
            && err.contains("hugflake scale ALL_MINILM_L6_V2_SVC --auto-suspend-secs 600"),
        "{err}"
    );
    idle.auto_suspend_secs = None;
    let job = p.import(&idle).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wait_job(&p, &job.id).await.summary.state, JobState::Done);
    let run = cli_runner(&s);
    let scale = |args: &'static [&'static str]| {
        let run = run.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--connection", "sim", "scale", "all_minilm_l6_v2_svc"];
            all.extend_from_slice(args);
            run(&all)
        })
    };
    let altered = |s: &Setup| -> Vec<String> {
        s.sim
            .statements()
            .into_iter()
            .filter(|q| q.starts_with("ALTER SERVICE") && q.contains(" SET "))
            .collect()
    };
    // Refused before anything is sent.
    let (code, _, err) = scale(&["--auto-suspend-secs", "60", "--yes"])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 1);
    assert!(
        err.contains("Snowflake takes 0 (never) or at least 300"),
        "{err}"
    );
    let (code, _, err) = scale(&["--min", "3", "--yes"])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 1);
    assert!(err.contains("must not exceed MAX_INSTANCES"), "{err}");
    // Off a terminal without --yes: the plan, and nothing sent.
    let (code, out, err) = scale(&["--min", "0", "--max", "2"])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("ALTER SERVICE ML.PUBLIC.ALL_MINILM_L6_V2_SVC:")
            && out.contains("MIN_INSTANCES 1 → 0")
            && out.contains("MAX_INSTANCES 1 → 2"),
        "{out}"
    );
    assert!(err.contains("nothing changed: confirm with --yes"), "{err}");
    assert!(altered(&s).is_empty(), "{:?}", altered(&s));
    // Confirmed: one statement with exactly those values; SHOW SERVICES then says them.
    let (code, out, err) = scale(&[
        "--min",
        "0",
        "--max",
        "2",
        "--auto-suspend-secs",
        "600",
        "--yes",
        "--json",
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("does not apply to services with a public endpoint"),
        "{err}"
    );
    assert_eq!(
        altered(&s),
        vec![
            "ALTER SERVICE ML.PUBLIC.ALL_MINILM_L6_V2_SVC SET MIN_INSTANCES = 0 MAX_INSTANCES = 2 AUTO_SUSPEND_SECS = 600"
                .to_string()
        ]
    );
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        (
            v["min_instances"].as_u64(),
            v["max_instances"].as_u64(),
            v["auto_suspend_secs"].as_u64()
        ),
        (Some(0), Some(2), Some(600))
    );
    // Through the binary: a GPU request on a CPU pool stops at pre-flight with the families named.
    let run_import = run.clone();
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        run_import(&[
            "--connection",
            "sim",
            "import",
            "sentence-transformers/all-MiniLM-L6-v2",
            "--task",
            "sentence-similarity",
            "--model",
            "GPU_MINILM",
            "--pool",
            "ML_CPU_POOL",
            "--gpu",
            "1",
            "--memory",
            "8Gi",
        ])
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "--gpu 1: compute pool ML_CPU_POOL is INSTANCE_FAMILY CPU_X64_S, which has no GPU"
        ) && err.contains("GPU_NV_S (1× NVIDIA A10G 24 GiB)"),
        "{err}"
    );
    // Only what was asked: one value, one clause.
    let (code, _, err) = scale(&["--max", "3", "--yes"])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        altered(&s).last().map(String::as_str),
        Some("ALTER SERVICE ML.PUBLIC.ALL_MINILM_L6_V2_SVC SET MAX_INSTANCES = 3")
    );
}

/// GPUs: the pool's instance family (SHOW COMPUTE POOL INSTANCE FAMILIES) must have what
/// `--gpu` asks, refused before anything starts with the account's GPU families named; a GPU
/// pool shows its GPUs; the deploy spec carries the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_request_needs_a_gpu_pool_and_reaches_the_deploy_spec() {
    let s = Setup::new().await;
    let p = s.platform(InferenceRoute::Rest);
    let mut gpu = spec(
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-similarity",
        "ALL_MINILM_L6_V2",
    );
    gpu.resources.gpu = Some(1);
    let job = p.import(&gpu).await.unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&p, &job.id).await;
    assert_eq!(d.summary.state, JobState::Failed);
    let err = d.summary.error.unwrap_or_default();
    assert!(
        err.contains(
            "--gpu 1: compute pool ML_CPU_POOL is INSTANCE_FAMILY CPU_X64_S, which has no GPU"
        ) && err.contains("GPU_NV_S (1× NVIDIA A10G 24 GiB), GPU_NV_M (4× NVIDIA A10G 24 GiB)"),
        "{err}"
    );
    assert!(
        !s.sim
            .statements()
            .iter()
            .any(|q| q.contains("IMPORT_MODEL")),
        "the import started anyway"
    );
    // A GPU pool: its size says its GPUs, and the request goes into the deploy spec.
    s.sim.state().pools.push(support::snowflake_server::Pool {
        name: "ML_GPU_POOL".into(),
        state: "IDLE".into(),
        family: "GPU_NV_S".into(),
        auto_resume: true,
    });
    let pools = p.pools().await.unwrap_or_else(|e| panic!("{e}"));
    let pool = pools
        .iter()
        .find(|x| x.name == "ML_GPU_POOL")
        .unwrap_or_else(|| panic!("{pools:?}"));
    assert_eq!(pool.size(), "6 vCPU · 27.0 GiB · 1× NVIDIA A10G 24 GiB");
    gpu.resources.gpu = Some(2);
    gpu.pool = "ML_GPU_POOL".into();
    let job = p.import(&gpu).await.unwrap_or_else(|e| panic!("{e}"));
    let err = wait_job(&p, &job.id)
        .await
        .summary
        .error
        .unwrap_or_default();
    assert!(
        err.contains(
            "which has 1 GPU(s) per node; instance families with 2 GPU(s) or more here: GPU_NV_M"
        ),
        "{err}"
    );
    // More memory than a node of the family has: refused before anything starts.
    gpu.resources.gpu = Some(1);
    gpu.resources.memory = Some("64Gi".into());
    let job = p.import(&gpu).await.unwrap_or_else(|e| panic!("{e}"));
    let err = wait_job(&p, &job.id)
        .await
        .summary
        .error
        .unwrap_or_default();
    assert!(
        err.contains("--memory 64Gi: a node of compute pool ML_GPU_POOL (GPU_NV_S) has 27 GiB"),
        "{err}"
    );
    gpu.resources.memory = Some("16Gi".into());
    let job = p.import(&gpu).await.unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&p, &job.id).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    let deploy = s
        .sim
        .state()
        .statements
        .iter()
        .find(|(q, _)| q.contains("SYSTEM$DEPLOY_MODEL"))
        .map(|(_, binds)| binds.join(""))
        .unwrap_or_default();
    assert!(deploy.contains("  gpu: '1'\n"), "{deploy}");
    // The service's requests as DESCRIBE SERVICE's spec says them, in its detail.
    let detail = hugflake::platform::ServiceDetail::fetch(&p, "ALL_MINILM_L6_V2_SVC".into()).await;
    assert_eq!(
        detail.requests.as_ref().map(|r| r.summary()).as_deref(),
        Some("1 GPU · 16Gi"),
        "{:?}",
        detail.problems
    );
    // Bad requests are refused as typed.
    let mut bad = gpu.clone();
    bad.resources.memory = Some("16GB".into());
    let err = p
        .import(&bad)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("--memory 16GB: a size with a unit, e.g. 8Gi"),
        "{err}"
    );
}
