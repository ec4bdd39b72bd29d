//! A Snowflake SQL API v2 simulator on 127.0.0.1, the one the tests use: statements, polling,
//! partitions, SHOW answers with Snowflake's columns, imports and deploys that progress over time,
//! and a REST ingress. For seeing hugflake's Snowflake mode without an account.
//!
//!     cargo run --release --example snowflake-sim
//!
//! It prints the environment that points a `sim` connection at it. It is a simulator: it knows
//! only the statements hugflake sends, and nothing it answers comes from Snowflake.

#[path = "../tests/support/snowflake_server.rs"]
mod snowflake_server;

#[tokio::main]
async fn main() {
    let sim = snowflake_server::SnowflakeSim::start().await;
    sim.state().step = std::time::Duration::from_secs(3);
    // A GPU pool beside the CPU ones, to see GPU requests and sizes.
    sim.state().pools.push(snowflake_server::Pool {
        name: "ML_GPU_POOL".into(),
        state: "IDLE".into(),
        family: "GPU_NV_S".into(),
        auto_resume: true,
    });
    let port = sim.addr.port();
    println!("# Snowflake simulator on 127.0.0.1:{port} (Ctrl-C stops it). In another shell:");
    for (k, v) in [
        ("ACCOUNT", "sim12345".to_string()),
        ("USER", "hugflake".to_string()),
        ("DATABASE", "ML".to_string()),
        ("SCHEMA", "PUBLIC".to_string()),
        ("ROLE", "ML_ENGINEER".to_string()),
        ("WAREHOUSE", "ML_WH".to_string()),
        ("HOST", "127.0.0.1".to_string()),
        ("PORT", port.to_string()),
        ("PROTOCOL", "http".to_string()),
        ("AUTHENTICATOR", "PROGRAMMATIC_ACCESS_TOKEN".to_string()),
        ("TOKEN", snowflake_server::PAT.to_string()),
    ] {
        println!("export SNOWFLAKE_CONNECTIONS_SIM_{k}={v}");
    }
    println!("hugflake --connection sim      # the TUI on the simulated account");
    let _ = tokio::signal::ctrl_c().await;
}
