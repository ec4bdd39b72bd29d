//! What each batch command is asked to do, parsed by clap straight into these types and handed
//! whole to the local run (`cli::batch`) or the Snowflake plan ([`super::snowflake`]).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `hugflake batch ...`
#[derive(Debug, Subcommand)]
pub enum Job {
    /// Embed every note into the embedding cache; a re-run computes only new or changed notes and
    /// notes another model version embedded
    Embed(Embed),
    /// Search the embedding cache with a query text, or list the most similar pairs of notes
    Search(Search),
    /// Extract entities from every note (a token-classification service)
    Entities(Entities),
    /// Classify every image of a folder against labels (a zero-shot image service)
    ClassifyImages(ClassifyImages),
}

/// Where the notes are and which columns hold the id and the text.
#[derive(Debug, Clone, Args)]
pub struct Columns {
    #[arg(long, default_value = "NOTE_ID")]
    pub id_column: String,
    #[arg(long, default_value = "NOTE_TEXT")]
    pub text_column: String,
}

#[derive(Debug, Args)]
pub struct Embed {
    /// The embedding service (ENCODE)
    #[arg(long)]
    pub service: Option<String>,
    /// Local: a .csv (header row), .jsonl or .parquet file; Snowflake: a table
    #[arg(long)]
    pub input: String,
    #[command(flatten)]
    pub columns: Columns,
    /// Local: the cache file (default: embeddings.sqlite in the data dir); Snowflake: the cache
    /// table (default NOTE_EMBEDDINGS)
    #[arg(long)]
    pub cache: Option<String>,
    /// Notes per call (shrinks by itself when calls fail or run long)
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    #[command(flatten)]
    pub snowflake: SnowflakeOptions,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct Search {
    /// Local: the cache file (default: embeddings.sqlite in the data dir); Snowflake: the cache
    /// table (default NOTE_EMBEDDINGS)
    #[arg(long)]
    pub cache: Option<String>,
    /// The query text
    #[arg(long, required_unless_present = "pairs")]
    pub query: Option<String>,
    /// The most similar pairs of notes instead of a query
    #[arg(long, conflicts_with = "query")]
    pub pairs: bool,
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// The service that embeds the query (default: a running service of the cache's model)
    #[arg(long)]
    pub service: Option<String>,
    /// Local: the notes file, to show each hit's text
    #[arg(long)]
    pub input: Option<String>,
    #[command(flatten)]
    pub columns: Columns,
    #[command(flatten)]
    pub snowflake: SnowflakeOptions,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct Entities {
    #[arg(long)]
    pub service: Option<String>,
    /// Local: a .csv, .jsonl or .parquet file; Snowflake: a table
    #[arg(long)]
    pub input: String,
    #[command(flatten)]
    pub columns: Columns,
    /// Only notes whose column has this value, e.g. NOTE_TYPE=ONCOLOGY
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub filter: Option<super::input::Filter>,
    /// At most this many notes
    #[arg(long)]
    pub limit: Option<usize>,
    /// Local: a JSON Lines file (default: standard output); Snowflake: the results table
    /// (default NOTE_ENTITIES)
    #[arg(long)]
    pub output: Option<String>,
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch_size: u32,
    #[command(flatten)]
    pub snowflake: SnowflakeOptions,
}

#[derive(Debug, Args)]
pub struct ClassifyImages {
    #[arg(long)]
    pub service: String,
    /// Local: the folder (PNG and JPEG files)
    #[arg(long, required_unless_present = "input", conflicts_with = "input")]
    pub dir: Option<PathBuf>,
    /// Snowflake: the table whose BINARY column holds the images' bytes (e.g. RADIOLOGY_IMAGES);
    /// the images never leave the account
    #[arg(long, value_name = "TABLE")]
    pub input: Option<String>,
    /// Snowflake: the table's id column
    #[arg(long, default_value = "IMAGE_ID")]
    pub id_column: String,
    /// Snowflake: the table's BINARY column with each image file's bytes (PNG or JPEG)
    #[arg(long, default_value = "IMAGE_BYTES")]
    pub image_column: String,
    /// Snowflake: only rows where COLUMN=VALUE or a comparison holds, e.g. PATIENT_AGE<18
    #[arg(long = "where", value_name = "CONDITION")]
    pub filter: Option<super::input::Filter>,
    /// Snowflake: at most this many images
    #[arg(long)]
    pub limit: Option<usize>,
    /// Candidate labels, comma-separated (two or more)
    #[arg(long, value_name = "A,B,C")]
    pub labels: String,
    /// The prompt each label goes through (default: the model's own, e.g. the transformers
    /// pipeline's "This is a photo of {}.")
    #[arg(long)]
    pub template: Option<String>,
    /// Local: a JSON Lines file (default: standard output); Snowflake: the results table (default
    /// IMAGE_LABELS)
    #[arg(long)]
    pub output: Option<String>,
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub batch_size: u32,
    #[command(flatten)]
    pub snowflake: SnowflakeOptions,
}

/// Options that only matter on Snowflake.
#[derive(Debug, Clone, Args)]
pub struct SnowflakeOptions {
    /// Print the SQL (with its bound values) and run nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Warehouse inference: call this model's version instead of a service (`MODEL(m, v)!ENCODE`)
    #[arg(long, value_name = "MODEL")]
    pub warehouse_model: Option<String>,
    /// The registry model the rows are computed by, as the cache records it (local search: the
    /// cached model to search when the cache holds several; Snowflake: default the service name
    /// without its `_SVC` suffix)
    #[arg(long)]
    pub model: Option<String>,
    /// The version, for --warehouse-model and the cache's MODEL_VERSION (default V1)
    #[arg(long, value_name = "VERSION")]
    pub model_version: Option<String>,
    /// Embedding dimensions of the cache table's VECTOR column
    #[arg(long, default_value_t = 384)]
    pub dim: usize,
}

impl Job {
    /// What the job changes, if anything (a read-only session refuses it): the embedding cache,
    /// and on Snowflake the results table. Searching and local results files change nothing.
    pub fn writes(&self, on_snowflake: bool) -> Option<&'static str> {
        match self {
            Job::Embed(j) if j.snowflake.dry_run && on_snowflake => None,
            Job::Entities(j) if j.snowflake.dry_run => None,
            Job::ClassifyImages(j) if j.snowflake.dry_run => None,
            Job::ClassifyImages(_) if on_snowflake => {
                Some("`batch classify-images` on Snowflake (it writes a results table)")
            }
            Job::Embed(_) => Some("`batch embed` (it writes the embedding cache)"),
            Job::Entities(_) if on_snowflake => {
                Some("`batch entities` on Snowflake (it writes a results table)")
            }
            Job::Entities(_) | Job::Search(_) | Job::ClassifyImages(_) => None,
        }
    }
}

impl Columns {
    /// The reader's column choice.
    pub fn input(&self) -> super::input::Columns {
        super::input::Columns {
            id: self.id_column.clone(),
            text: self.text_column.clone(),
        }
    }
}
