//! What a real Snowflake account would reject, against a simulator that rejects it too: context
//! names as identifiers, ARRAY → VECTOR, warehouse inference only on versions logged for it, the
//! ingress token's scope, readiness calls that follow each pipeline's signature, the inline-spec
//! capability, job services in their own schemas, deadlines, libraries Snowflake cannot serve,
//! and an ordinary `connections.toml` driven through the real binary.

mod support;

use std::time::Duration;

use hugflake::domain::{JobState, Stage, StageState};
use hugflake::platform::snowflake::{InferenceRoute, SnowflakePlatform, connection, statements};
use hugflake::platform::{Platform, PlatformError};
use serde_json::{Value, json};
use support::sim_setup::{Setup, keys, spec, wait_job};
use support::snowflake_server::{PAT, Version};

/// The platform on connection `sim` with `extra` variables on top (`None` removes one).
fn platform_with(s: &Setup, extra: &[(&str, Option<&str>)]) -> SnowflakePlatform {
    platform_on(s, extra, InferenceRoute::Rest)
}

fn platform_on(
    s: &Setup,
    extra: &[(&str, Option<&str>)],
    route: InferenceRoute,
) -> SnowflakePlatform {
    let mut env = s.env(&[
        (
            "SNOWFLAKE_CONNECTIONS_SIM_AUTHENTICATOR",
            "PROGRAMMATIC_ACCESS_TOKEN".into(),
        ),
        ("SNOWFLAKE_CONNECTIONS_SIM_TOKEN", PAT.into()),
    ]);
    for (k, v) in extra {
        match v {
            Some(v) => env.0.insert((*k).to_string(), (*v).to_string()),
            None => env.0.remove(*k),
        };
    }
    let conn =
        connection::load(&env, s.dir.path(), Some("sim"), &[]).unwrap_or_else(|e| panic!("{e}"));
    fast(
        SnowflakePlatform::new(&conn, &env, &s.dir.path().join("data"), route)
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn fast(p: SnowflakePlatform) -> SnowflakePlatform {
    let mut p = p.with_poll_every(Duration::from_millis(100));
    if let Some(a) = std::sync::Arc::get_mut(&mut p.api) {
        a.pacing.first_poll = Duration::from_millis(50);
        a.pacing.first_retry = Duration::from_millis(20);
        a.pacing.request_timeout = Duration::from_secs(2);
    }
    p
}

async fn import_done(p: &SnowflakePlatform, sp: &hugflake::domain::ImportSpec) -> Vec<String> {
    let job = p.import(sp).await.unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(p, &job.id).await;
    let log: Vec<String> = d.log.iter().map(|l| l.line.clone()).collect();
    assert_eq!(
        d.summary.state,
        JobState::Done,
        "{} {:?} {log:#?}",
        sp.handle,
        d.summary.error
    );
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_and_warehouse_are_identifiers_as_snowflake_stores_them() {
    let s = Setup::new().await;
    // connections.toml as people write it: lower-case names.
    let p = platform_with(
        &s,
        &[
            ("SNOWFLAKE_CONNECTIONS_SIM_ROLE", Some("ml_engineer")),
            ("SNOWFLAKE_CONNECTIONS_SIM_WAREHOUSE", Some("ml_wh")),
        ],
    );
    let status = p.status().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status
            .details
            .contains(&("warehouse".to_string(), "ML_WH".to_string())),
        "{:?}",
        status.details
    );
    p.run(&statements::service_call(
        &p.qualify("nope_svc").unwrap_or_else(|e| panic!("{e}")),
        "ENCODE",
        &["x".into()],
    ))
    .await
    .err()
    .filter(|e| e.to_string().contains("Service not running"))
    .unwrap_or_else(|| panic!("a computing statement ran without a warehouse error"));
    assert_eq!(
        s.sim.state().contexts.last().cloned(),
        Some((Some("ML_ENGINEER".into()), Some("ML_WH".into())))
    );

    // The simulator answers like Snowflake: a role named in another case does not exist, and a
    // warehouse that is not one leaves none for statements that compute.
    let quoted = platform_with(
        &s,
        &[("SNOWFLAKE_CONNECTIONS_SIM_ROLE", Some("\"ml_engineer\""))],
    );
    let err = quoted.status().await.err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("390189") && e.contains("'ml_engineer'")),
        "{err:?}"
    );
    let no_wh = platform_with(
        &s,
        &[("SNOWFLAKE_CONNECTIONS_SIM_WAREHOUSE", Some("\"ml_wh\""))],
    );
    let err = no_wh
        .run(&statements::service_call(
            &no_wh.qualify("svc").unwrap_or_else(|e| panic!("{e}")),
            "ENCODE",
            &["x".into()],
        ))
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("No active warehouse selected")),
        "{err:?}"
    );

    // No role in the connection: none is sent, and the user's default role answers.
    let default = platform_with(&s, &[("SNOWFLAKE_CONNECTIONS_SIM_ROLE", None)]);
    let status = default.status().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status
            .details
            .contains(&("role".to_string(), "ML_ENGINEER".to_string()))
    );
    assert_eq!(
        s.sim.state().contexts.last().map(|c| c.0.clone()),
        Some(None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouse_inference_only_on_versions_logged_for_it() {
    let s = Setup::new().await;
    let p = platform_with(&s, &[]);
    let sp = spec(
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-similarity",
        "ALL_MINILM_L6_V2",
    );
    import_done(&p, &sp).await;
    let v = p
        .versions("ALL_MINILM_L6_V2")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v[0].runnable_in,
        vec!["WAREHOUSE", "SNOWPARK_CONTAINER_SERVICES"]
    );
    // model_attributes.task is Snowflake's enum, kept under its own name, not as the HF task.
    assert_eq!(v[0].snowflake_ml_task.as_deref(), Some("UNKNOWN"));
    assert_eq!(v[0].task, "");
    // The version lists its service by fully qualified name; the build job is left out.
    assert_eq!(
        v[0].inference_services,
        vec!["ML.PUBLIC.ALL_MINILM_L6_V2_SVC".to_string()]
    );
    // A service's functions come from the version that lists exactly that service: `SVC` is
    // not `…_SVC`.
    let f = hugflake::platform::service_functions(&p, "ALL_MINILM_L6_V2_SVC", None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(f.iter().any(|f| f.name == "ENCODE"), "{f:?}");
    let none = hugflake::platform::service_functions(&p, "SVC", None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(none.is_empty(), "{none:?}");
    let r = p
        .predict_version(
            "ALL_MINILM_L6_V2",
            "V1",
            "ENCODE",
            &[vec![json!("fever and cough")]],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.outputs.len(), 1);

    // A version logged for SPCS only (what hugflake imported before): refused before any call,
    // with what to do.
    s.sim.state().versions.push(Version {
        model: "OLD_MINILM".into(),
        name: "V1".into(),
        task: "sentence-transformers".into(),
        functions: vec!["ENCODE"],
        runnable_in: vec!["SNOWPARK_CONTAINER_SERVICES".into()],
    });
    let calls_before = model_calls(&s);
    let err = p
        .predict_version("OLD_MINILM", "V1", "ENCODE", &[vec![json!("x")]])
        .await
        .err();
    match &err {
        Some(PlatformError::Conflict(m)) => {
            assert!(
                m.contains("not logged for inference in a warehouse")
                    && m.contains("import it again"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(model_calls(&s), calls_before, "a MODEL(...)! call was sent");
    // The simulator refuses such a call as snowflake-ml-python does.
    let v1 =
        hugflake::platform::snowflake::ident::Ident::parse("V1").unwrap_or_else(|e| panic!("{e}"));
    let err = p
        .run(&statements::warehouse_call(
            &p.qualify("OLD_MINILM").unwrap_or_else(|e| panic!("{e}")),
            &v1,
            "ENCODE",
            "x",
        ))
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("not logged for inference in Warehouse")),
        "{err:?}"
    );
}

fn model_calls(s: &Setup) -> usize {
    s.sim
        .statements()
        .iter()
        .filter(|q| q.starts_with("SELECT MODEL("))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_tokens_use_the_default_role_and_are_reused() {
    let s = Setup::new().await;
    let (plain, _) = keys(s.dir.path());
    let key = plain.display().to_string();
    let keypair = [
        (
            "SNOWFLAKE_CONNECTIONS_SIM_AUTHENTICATOR",
            Some("SNOWFLAKE_JWT"),
        ),
        (
            "SNOWFLAKE_CONNECTIONS_SIM_PRIVATE_KEY_FILE",
            Some(key.as_str()),
        ),
        ("SNOWFLAKE_CONNECTIONS_SIM_TOKEN", None),
    ];
    let mut no_role = keypair.to_vec();
    no_role.push(("SNOWFLAKE_CONNECTIONS_SIM_ROLE", None));
    let p = platform_with(&s, &no_role);
    // The readiness call is the first ingress call.
    import_done(
        &p,
        &spec(
            "sentence-transformers/all-MiniLM-L6-v2",
            "sentence-similarity",
            "ALL_MINILM_L6_V2",
        ),
    )
    .await;
    for _ in 0..3 {
        p.predict("ALL_MINILM_L6_V2_SVC", "ENCODE", &[vec![json!("rash")]])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let scopes = s.sim.state().oauth_scopes.clone();
    assert_eq!(scopes.len(), 1, "one exchange, then reused: {scopes:?}");
    assert!(!scopes[0].contains("session:role:"), "{scopes:?}");
    assert!(scopes[0].starts_with("127.0.0.1:"), "{scopes:?}");

    // A configured role goes into the scope as Snowflake stores it.
    let mut with_role = keypair.to_vec();
    with_role.push(("SNOWFLAKE_CONNECTIONS_SIM_ROLE", Some("ml_engineer")));
    let p = platform_with(&s, &with_role);
    p.predict("ALL_MINILM_L6_V2_SVC", "ENCODE", &[vec![json!("rash")]])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let last = s
        .sim
        .state()
        .oauth_scopes
        .last()
        .cloned()
        .unwrap_or_default();
    assert!(
        last.starts_with("session:role:ML_ENGINEER 127.0.0.1:"),
        "{last}"
    );

    // The simulator's ingress refuses a PUBLIC token for a service ML_ENGINEER owns, as the
    // old client's `session:role:PUBLIC` would have met on a real account.
    let mut public = keypair.to_vec();
    public.push(("SNOWFLAKE_CONNECTIONS_SIM_ROLE", Some("public")));
    let p = platform_with(&s, &public);
    match p
        .predict("ALL_MINILM_L6_V2_SVC", "ENCODE", &[vec![json!("rash")]])
        .await
    {
        Err(PlatformError::Api { status: 403, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pipeline_answers_its_own_readiness_call() {
    let s = Setup::new().await;
    s.sim.state().step = Duration::from_millis(200);
    let p = platform_with(&s, &[]);
    let cases = [
        (
            "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
            "text-classification",
            "SST2",
        ),
        (
            "facebook/bart-large-mnli",
            "zero-shot-classification",
            "MNLI",
        ),
        ("google-bert/bert-base-uncased", "fill-mask", "BERT_MLM"),
        (
            "flaviagiammarino/pubmed-clip-vit-base-patch32",
            "zero-shot-image-classification",
            "PUBMED_CLIP",
        ),
        ("d4data/biomedical-ner-all", "token-classification", "NER"),
    ];
    let mut jobs = Vec::new();
    for (handle, task, model) in cases {
        let job = p
            .import(&spec(handle, task, model))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        jobs.push((handle, job.id));
    }
    for (handle, id) in jobs {
        let d = wait_job(&p, &id).await;
        let log: Vec<&str> = d.log.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(
            d.summary.state,
            JobState::Done,
            "{handle}: {:?} {log:#?}",
            d.summary.error
        );
        assert!(
            log.iter()
                .any(|l| l.starts_with("ready: __CALL__ answered")),
            "{handle}: {log:#?}"
        );
    }
    // Over SQL as well: the image travels as TO_BINARY(?, 'BASE64'), the labels as an ARRAY.
    let sql = platform_on(&s, &[], InferenceRoute::Sql);
    let r = sql
        .predict(
            "PUBMED_CLIP_SVC",
            "__CALL__",
            &[vec![
                json!("iVBORw0KGgo="),
                json!(["chest x-ray", "brain MRI"]),
            ]],
        )
        .await;
    assert!(r.is_ok(), "{r:?}");
    let last = s
        .sim
        .statements()
        .into_iter()
        .rfind(|q| q.contains("PUBMED_CLIP_SVC!"))
        .unwrap_or_default();
    assert!(
        last.contains("(TO_BINARY(?, 'BASE64'), PARSE_JSON(?)::ARRAY)"),
        "{last}"
    );
    // A pipeline service has no ENCODE, and zero-shot needs its labels: the simulator says so.
    match p
        .predict("SST2_SVC", "ENCODE", &[vec![json!("great")]])
        .await
    {
        Err(PlatformError::Api { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }
    match p
        .predict("MNLI_SVC", "__CALL__", &[vec![json!("fever")]])
        .await
    {
        Err(PlatformError::Api { status: 400, .. }) => {}
        other => panic!("{other:?}"),
    }

    // An open_clip repo is refused before anything runs, by its library.
    let job = p
        .import(&spec(
            "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
            "zero-shot-image-classification",
            "BIOMEDCLIP",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&p, &job.id).await;
    assert_eq!(d.summary.state, JobState::Failed);
    assert_eq!(
        d.stage(Stage::Resolve).map(|s| s.state),
        Some(StageState::Failed)
    );
    let err = d.summary.error.unwrap_or_default();
    assert!(
        err.contains("open_clip") && err.contains("pubmed-clip"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_check_the_capability_follow_job_schemas_and_end() {
    let s = Setup::new().await;
    let p = platform_with(&s, &[]).with_deadline(Duration::from_secs(3));
    let minilm = |model: &str, service: &str| {
        let mut sp = spec(
            "sentence-transformers/all-MiniLM-L6-v2",
            "sentence-similarity",
            model,
        );
        sp.service = service.into();
        sp
    };

    // No inline specs on this account: refused at resolve, before the import runs.
    s.sim.state().faults.no_inline_specs = true;
    let job = p
        .import(&minilm("M0", "M0_SVC"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&p, &job.id).await;
    assert_eq!(d.summary.state, JobState::Failed);
    assert_eq!(
        d.stage(Stage::Resolve).map(|s| s.state),
        Some(StageState::Failed)
    );
    let err = d.summary.error.unwrap_or_default();
    assert!(
        err.contains("inline") && err.contains("create_service"),
        "{err}"
    );
    assert!(
        !s.sim
            .statements()
            .iter()
            .any(|q| q.contains("SYSTEM$IMPORT_MODEL")),
        "the import ran though the deploy could not"
    );
    s.sim.state().faults.no_inline_specs = false;

    // The model in another schema: its logging job runs there and is followed there.
    let log = import_done(&p, &minilm("ML.MODELS.MINILM", "MINILM_SVC")).await;
    assert!(
        log.iter().any(
            |l| l.contains("the logging job is MODEL_LOGGING_") && l.ends_with(" in ML.MODELS")
        ),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("model-logging: downloading sentence-transformers")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("model-build: building image")),
        "{log:#?}"
    );

    // An image reused: no build job, the service's own state carries on.
    s.sim.state().faults.reuse_image = true;
    let log = import_done(&p, &minilm("M2", "M2_SVC")).await;
    assert!(log.iter().any(|l| l.contains("no build job")), "{log:#?}");

    // The deploy returns and no service ever appears: the job ends at its deadline.
    s.sim.state().faults.service_never_appears = true;
    let job = p
        .import(&minilm("M3", "M3_SVC"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&p, &job.id).await;
    assert_eq!(d.summary.state, JobState::Failed, "{:?}", d.log);
    let err = d.summary.error.unwrap_or_default();
    assert!(
        err.contains("within 0 min") || err.contains("not READY"),
        "{err}"
    );
}

/// The hospital's first hour, through the real binary: an ordinary connections.toml (lower-case
/// role and warehouse, a PAT kept under `password`) found under the platform config directory
/// because SNOWFLAKE_HOME names a directory that does not exist, then a key-pair connection with
/// an encrypted key, `private_key_passphrase` and no role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_connections_toml_works_end_to_end() {
    let s = Setup::new().await;
    s.sim.state().step = Duration::from_millis(200);
    let home = s.dir.path().to_path_buf();
    let port = s.sim.addr.port();
    let (_, encrypted) = keys(&home);
    let sf = home.join(".config").join("snowflake");
    std::fs::create_dir_all(&sf).unwrap_or_else(|e| panic!("{e}"));
    let toml = format!(
        "[hospital]\naccount = \"sim12345\"\nuser = \"hugflake\"\ndatabase = \"ml\"\nschema = \"public\"\n\
         role = \"ml_engineer\"\nwarehouse = \"ml_wh\"\nhost = \"127.0.0.1\"\nport = {port}\nprotocol = \"http\"\n\
         authenticator = \"PROGRAMMATIC_ACCESS_TOKEN\"\npassword = \"{PAT}\"\n\n\
         [keypair]\naccount = \"sim12345\"\nuser = \"hugflake\"\ndatabase = \"ml\"\n\
         host = \"127.0.0.1\"\nport = {port}\nprotocol = \"http\"\nauthenticator = \"SNOWFLAKE_JWT\"\n\
         private_key_file = \"{}\"\nprivate_key_passphrase = \"canary-passphrase\"\n",
        encrypted.display()
    );
    let file = sf.join("connections.toml");
    std::fs::write(&file, toml).unwrap_or_else(|e| panic!("{e}"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("{e}"));
    // A decoy in ~/.snowflake: the connector passes over it when SNOWFLAKE_HOME is set.
    let decoy = home.join(".snowflake");
    std::fs::create_dir_all(&decoy).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        decoy.join("connections.toml"),
        "[hospital]\naccount = \"decoy\"\nhost = \"127.0.0.1\"\nport = 9\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        home.join("config.toml"),
        "[platform]\nsnowflake_poll_secs = 0.2\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = move |args: Vec<&'static str>| {
        let home = home.clone();
        move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_hugflake"))
                .args(&args)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", &home)
                .env("HUGFLAKE_CONFIG", home.join("config.toml"))
                .env("HUGFLAKE_DATA_DIR", home.join("data"))
                .env("HUGFLAKE_STATE_DIR", home.join("state"))
                .env("SNOWFLAKE_HOME", home.join("no-such-dir"))
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        }
    };
    let go = |args: Vec<&'static str>| tokio::task::spawn_blocking(run.clone()(args));
    let (code, out, err) = go(vec!["--connection", "hospital", "status", "--json"])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_default();
    let details = v["status"]["details"].to_string();
    assert!(
        details.contains("ML_ENGINEER") && details.contains("ML_WH"),
        "{details}"
    );
    assert!(!out.contains(PAT) && !err.contains(PAT));
    let (code, _, err) = go(vec![
        "--connection",
        "hospital",
        "import",
        "sentence-transformers/all-MiniLM-L6-v2",
        "--task",
        "sentence-similarity",
        "--pool",
        "ml_cpu_pool",
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    s.sim.state().notes = vec![
        ("1".into(), "fever and cough for three days".into()),
        ("2".into(), "itchy rash behind the knees".into()),
    ];
    // Semantic search's batch: it computes, so it needs the warehouse named in lower case.
    let (code, _, err) = go(vec![
        "--connection",
        "hospital",
        "batch",
        "embed",
        "--service",
        "all_minilm_l6_v2_svc",
        "--input",
        "clinical_notes",
        "--id-column",
        "note_id",
        "--text-column",
        "note_text",
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(
        s.sim
            .state()
            .contexts
            .iter()
            .all(|(r, w)| r.as_deref() == Some("ML_ENGINEER") && w.as_deref() == Some("ML_WH")),
        "every request named the stored role and warehouse"
    );
    // Warehouse inference on the version hugflake just imported.
    let (code, out, err) = go(vec![
        "--connection",
        "hospital",
        "batch",
        "search",
        "--warehouse-model",
        "all_minilm_l6_v2",
        "--query",
        "child with a cough",
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("NOTE_ID"), "{out}");

    // Key pair, encrypted key with private_key_passphrase, no role: the REST ingress works with
    // the user's default role.
    let (code, out, err) = go(vec![
        "--connection",
        "keypair",
        "predict",
        "all_minilm_l6_v2_svc",
        "--text",
        "wheeze",
        "--json",
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("output"), "{out}");
    assert!(!err.contains("canary-passphrase") && !out.contains("canary-passphrase"));
    let scopes = s.sim.state().oauth_scopes.clone();
    assert!(
        scopes.last().is_some_and(|sc| !sc.contains("session:role")),
        "{scopes:?}"
    );
}
