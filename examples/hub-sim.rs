//! A Hugging Face Hub simulator on 127.0.0.1, serving model directories from disk: the same server
//! the tests use. For trying `hugflake search/show/download` and the TUI without the real Hub, and
//! for the download benchmark.
//!
//!     cargo run --release --example hub-sim -- [--port N] ORG/NAME=DIR[@COMMIT] ...
//!     HF_ENDPOINT=http://127.0.0.1:N hugflake search mini
//!
//! It is a simulator: files, tree, search and resolve behave like the Hub's API; nothing else does.

#[path = "../tests/support/hub_server.rs"]
mod hub_server;

use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let mut port = 0u16;
    let mut repos = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--port" {
            port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            continue;
        }
        let Some((id, rest)) = arg.split_once('=') else {
            eprintln!("usage: hub-sim [--port N] ORG/NAME=DIR[@COMMIT] ...");
            std::process::exit(2);
        };
        let (dir, commit) = match rest.rsplit_once('@') {
            Some((d, c)) if c.len() == 40 => (d.to_string(), c.to_string()),
            _ => (rest.to_string(), format!("{:0>40}", repos.len() + 1)),
        };
        let mut repo = hub_server::Repo::from_dir(id, &commit, &PathBuf::from(&dir));
        if repo.files.iter().any(|f| f.path == "modules.json") {
            repo.library = Some("sentence-transformers".into());
            repo.pipeline_tag = Some("sentence-similarity".into());
            repo.tags.push("sentence-transformers".into());
        }
        repos.push(repo);
    }
    let server = hub_server::HubServer::start_on(repos, port).await;
    println!("{}", server.endpoint());
    eprintln!("hub simulator on {} (Ctrl-C stops it)", server.endpoint());
    let _ = tokio::signal::ctrl_c().await;
}
