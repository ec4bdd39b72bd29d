//! The import form: the fields of an import with their defaults, the plan and the verdicts, edited
//! in place before anything runs.

use crate::domain::candidate::Alternative;
use crate::domain::{ImportSpec, Precision, RegistryPlace, job::default_model_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKey {
    Handle,
    Task,
    Model,
    Version,
    Pool,
    Service,
    MinInstances,
    MaxInstances,
    Precision,
    Gpu,
    TokenSecret,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: FieldKey,
    pub label: &'static str,
    pub value: String,
    pub hint: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImportForm {
    pub fields: Vec<Field>,
    pub focus: usize,
    pub error: Option<String>,
    /// What is known about the model: verdicts and facts, one line each.
    pub notes: Vec<(bool, String)>,
    /// The service name follows the model name until the user edits it.
    service_edited: bool,
    /// On Snowflake: the database, schema and warehouse the import goes to (the plan then shows
    /// the exact statements and specs).
    pub snowflake: Option<RegistryPlace>,
    /// The repo's library when known (Hub details or the catalog): Snowflake refuses the ones its
    /// import cannot serve.
    pub library: Option<String>,
    /// A model that serves the purpose better here; ctrl-o switches the form to it.
    pub alternative: Option<Alternative>,
}

impl ImportForm {
    pub fn new(
        handle: &str,
        task: Option<&str>,
        pool: &str,
        notes: Vec<(bool, String)>,
    ) -> ImportForm {
        let spec = ImportSpec::with_defaults(handle, pool);
        let field = |key, label, value: String, hint| Field {
            key,
            label,
            value,
            hint,
        };
        ImportForm {
            fields: vec![
                field(FieldKey::Handle, "handle", spec.handle, "the Hub repo"),
                field(
                    FieldKey::Task,
                    "task",
                    task.unwrap_or_default().to_string(),
                    "empty: from the repo's files",
                ),
                field(FieldKey::Model, "model", spec.model, "registry name"),
                field(FieldKey::Version, "version", spec.version, ""),
                field(FieldKey::Pool, "pool", spec.pool, "compute pool"),
                field(FieldKey::Service, "service", spec.service, ""),
                field(
                    FieldKey::MinInstances,
                    "min instances",
                    spec.min_instances.to_string(),
                    "",
                ),
                field(
                    FieldKey::MaxInstances,
                    "max instances",
                    spec.max_instances.to_string(),
                    "",
                ),
                field(
                    FieldKey::Precision,
                    "precision",
                    spec.precision.to_string(),
                    "fp32 · int8 fastest · bf16 half memory",
                ),
            ],
            focus: 2,
            error: None,
            notes,
            service_edited: false,
            snowflake: None,
            library: None,
            alternative: None,
        }
    }

    /// Turns the form into an import into a registry that lives in a database (Snowflake): the
    /// plan shows the exact statements, and a gated repo's token secret can be named.
    pub fn for_registry(&mut self, place: RegistryPlace) {
        self.snowflake = Some(place);
        // Snowflake's container runs transformers in fp32: precision is a local choice.
        self.fields.retain(|f| f.key != FieldKey::Precision);
        self.focus = self.focus.min(self.fields.len().saturating_sub(1));
        if !self.fields.iter().any(|f| f.key == FieldKey::Gpu) {
            self.fields.push(Field {
                key: FieldKey::Gpu,
                label: "gpu",
                value: String::new(),
                hint: "GPUs per instance; empty: none (needs a GPU pool)",
            });
        }
        if !self.fields.iter().any(|f| f.key == FieldKey::TokenSecret) {
            self.fields.push(Field {
                key: FieldKey::TokenSecret,
                label: "token secret",
                value: String::new(),
                hint: "gated repos: a Snowflake secret holding your HF token",
            });
        }
    }

    /// On Snowflake, the statements that will run with their specs (bound as text).
    pub fn snowflake_plan(&self) -> Option<Result<Vec<String>, String>> {
        let place = self.snowflake.as_ref()?;
        Some(
            self.spec()
                .and_then(|spec| crate::platform::import_statements(place, &spec)),
        )
    }

    fn value(&self, key: FieldKey) -> &str {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .map_or("", |f| f.value.as_str())
    }

    fn set(&mut self, key: FieldKey, value: String) {
        if let Some(f) = self.fields.iter_mut().find(|f| f.key == key) {
            f.value = value;
        }
    }

    pub fn next(&mut self) {
        self.focus = (self.focus + 1) % self.fields.len();
    }

    pub fn prev(&mut self) {
        self.focus = (self.focus + self.fields.len() - 1) % self.fields.len();
    }

    pub fn type_char(&mut self, c: char) {
        self.edit(|v| v.push(c));
    }

    pub fn backspace(&mut self) {
        self.edit(|v| {
            v.pop();
        });
    }

    fn edit(&mut self, f: impl FnOnce(&mut String)) {
        self.error = None;
        let Some(field) = self.fields.get_mut(self.focus) else {
            return;
        };
        f(&mut field.value);
        match field.key {
            FieldKey::Service => self.service_edited = true,
            FieldKey::Model if !self.service_edited => {
                let model = self.value(FieldKey::Model).to_ascii_uppercase();
                self.set(FieldKey::Service, format!("{model}_SVC"));
            }
            FieldKey::Handle if !self.service_edited => {
                let model = default_model_name(self.value(FieldKey::Handle));
                self.set(FieldKey::Model, model.clone());
                self.set(FieldKey::Service, format!("{model}_SVC"));
            }
            _ => {}
        }
    }

    /// The spec the form describes, or what is wrong with it.
    pub fn spec(&self) -> Result<ImportSpec, String> {
        let count = |key, name| {
            self.value(key)
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("{name} must be a whole number"))
        };
        let handle = self.value(FieldKey::Handle).trim().to_string();
        crate::hub::api::validate_repo_id(&handle)?;
        let task = self.value(FieldKey::Task).trim();
        if !task.is_empty() {
            task.parse::<crate::inference::Task>()?;
        }
        let precision = match self.fields.iter().any(|f| f.key == FieldKey::Precision) {
            false => Precision::Fp32,
            true => self.value(FieldKey::Precision).parse::<Precision>()?,
        };
        if !task.is_empty() && !precision.supports_task(task) {
            return Err(format!(
                "{precision} applies to text encoders; {task} is served in fp32"
            ));
        }
        let gpu = match self.fields.iter().any(|f| f.key == FieldKey::Gpu) {
            true if !self.value(FieldKey::Gpu).trim().is_empty() => {
                Some(count(FieldKey::Gpu, "gpu")?)
            }
            _ => None,
        };
        let min = count(FieldKey::MinInstances, "min instances")?;
        let max = count(FieldKey::MaxInstances, "max instances")?;
        let upper = |key| self.value(key).trim().to_ascii_uppercase();
        for (key, name) in [
            (FieldKey::Model, "model"),
            (FieldKey::Version, "version"),
            (FieldKey::Pool, "pool"),
            (FieldKey::Service, "service"),
        ] {
            if upper(key).is_empty() {
                return Err(format!("{name} is empty"));
            }
        }
        let spec = ImportSpec {
            handle,
            revision: "main".into(),
            task: (!task.is_empty()).then(|| task.to_string()),
            model: upper(FieldKey::Model),
            version: upper(FieldKey::Version),
            pool: upper(FieldKey::Pool),
            service: upper(FieldKey::Service),
            min_instances: min,
            max_instances: max,
            auto_suspend_secs: None,
            resources: crate::domain::Resources {
                gpu,
                ..Default::default()
            },
            token_secret: Some(self.value(FieldKey::TokenSecret).trim().to_string())
                .filter(|t| !t.is_empty()),
            library: self.library.clone(),
            precision,
        };
        spec.check_instances()?;
        spec.resources.check()?;
        Ok(spec)
    }

    /// The plan in words: what will run, in order.
    pub fn plan(&self) -> Vec<String> {
        match self.spec() {
            Err(e) => vec![format!("cannot run yet: {e}")],
            Ok(s) if self.snowflake.is_some() => vec![
                format!(
                    "pre-flight: pool {} usable, {} and {} {} free, task importable",
                    s.pool, s.service, s.model, s.version
                ),
                "SYSTEM$IMPORT_MODEL: Snowflake downloads and registers it (job MODEL_LOGGING_…)"
                    .into(),
                format!(
                    "SYSTEM$DEPLOY_MODEL: image build (MODEL_BUILD_…), then {} on {}",
                    s.service, s.pool
                ),
                "first call through the service's ingress".into(),
            ],
            Ok(s) => vec![
                format!(
                    "resolve {}@main (commit pinned), {}",
                    s.handle,
                    s.task
                        .as_deref()
                        .map_or("task from the repo's files".to_string(), |t| format!(
                            "as {t}"
                        ))
                ),
                "download the files the task needs into the HF cache; verify every hash".into(),
                format!(
                    "register {} version {} with its functions",
                    s.model, s.version
                ),
                format!(
                    "deploy service {} on {} ({} instance(s), up to {}){}; first call",
                    s.service,
                    s.pool,
                    s.min_instances.max(1),
                    s.max_instances,
                    if s.precision.is_reduced() {
                        format!(
                            " in {} ({}): each instance checks it against fp32 as it loads and \
                             refuses to start below the gate",
                            s.precision,
                            s.precision.trade()
                        )
                    } else {
                        String::new()
                    }
                ),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_follows_the_model_until_edited() {
        let mut f = ImportForm::new("dmis-lab/biobert-v1.1", None, "LOCAL_CPU", Vec::new());
        assert_eq!(f.spec().map(|s| s.service), Ok("BIOBERT_V1_1_SVC".into()));
        f.focus = 2;
        f.backspace();
        f.type_char('2');
        assert_eq!(f.spec().map(|s| s.service), Ok("BIOBERT_V1_2_SVC".into()));
        f.focus = 5;
        f.type_char('X');
        f.focus = 2;
        f.type_char('9');
        let s = f.spec().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.model, "BIOBERT_V1_29");
        assert_eq!(s.service, "BIOBERT_V1_2_SVCX");
    }

    #[test]
    fn bad_fields_are_named() {
        let mut f = ImportForm::new("org/m", Some("ner"), "LOCAL_CPU", Vec::new());
        f.focus = 6;
        f.type_char('x');
        assert!(f.spec().err().unwrap_or_default().contains("min instances"));
        let mut f = ImportForm::new("org/m", Some("poetry"), "LOCAL_CPU", Vec::new());
        assert!(f.spec().err().unwrap_or_default().contains("unknown task"));
        f.focus = 1;
        for _ in 0..6 {
            f.backspace();
        }
        assert!(f.spec().is_ok());
        assert!(f.plan()[0].contains("task from the repo"));
    }

    #[test]
    fn precision_is_a_local_field() {
        let mut f = ImportForm::new(
            "org/m",
            Some("sentence-similarity"),
            "LOCAL_CPU",
            Vec::new(),
        );
        f.focus = f
            .fields
            .iter()
            .position(|x| x.key == FieldKey::Precision)
            .unwrap_or(0);
        for _ in 0..4 {
            f.backspace();
        }
        for c in "int8".chars() {
            f.type_char(c);
        }
        assert_eq!(f.spec().map(|s| s.precision), Ok(Precision::Int8));
        assert!(f.plan()[3].contains("in int8"), "{:?}", f.plan());
        f.backspace();
        assert!(
            f.spec()
                .err()
                .unwrap_or_default()
                .contains("unknown precision `int`")
        );
        let mut img = ImportForm::new(
            "org/clip",
            Some("zero-shot-image-classification"),
            "LOCAL_CPU",
            Vec::new(),
        );
        img.set(FieldKey::Precision, "int8".into());
        assert!(
            img.spec()
                .err()
                .unwrap_or_default()
                .contains("served in fp32")
        );
        img.for_registry(RegistryPlace {
            database: "D".into(),
            schema: "S".into(),
            warehouse: None,
        });
        assert!(img.fields.iter().all(|x| x.key != FieldKey::Precision));
        assert_eq!(img.spec().map(|s| s.precision), Ok(Precision::Fp32));
    }
}
