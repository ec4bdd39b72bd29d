//! How the state takes input: terminal events, keys (through the keymap), the actions they map
//! to, the mouse, the command bar, confirmations and the import form's opening.

use super::*;

impl App {
    /// Turns a terminal event into state changes and effects.
    pub fn handle_event(&mut self, event: &Event) -> Vec<Effect> {
        let mut effects = match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.handle_key(key),
            Event::Mouse(m) if self.mouse => self.handle_mouse(m),
            Event::Resize(w, h) => {
                self.resize(*w, *h);
                Vec::new()
            }
            Event::Paste(text) => self.handle_paste(text),
            _ => Vec::new(),
        };
        if !self.quit {
            effects.extend(self.follow_up());
        }
        effects
    }

    /// A bracketed paste goes only into the text field being typed in, as typed characters
    /// (line breaks become spaces on one-line fields); anywhere else, and on a question, it is
    /// ignored with a flash, so pasted text never runs as key presses.
    /// A one-line field takes typed characters: the command bar, a filter, the import form, the
    /// log view's filter.
    fn typing_in_a_line(&self) -> bool {
        match &self.overlay {
            Overlay::Command { .. } | Overlay::Filter { .. } | Overlay::Import(_) => true,
            Overlay::Logs(v) => v.editing_filter,
            _ => false,
        }
    }

    pub(super) fn handle_paste(&mut self, text: &str) -> Vec<Effect> {
        self.dirty = true;
        let multi_line =
            matches!(self.overlay, Overlay::None) && self.tab == Tab::Query && self.query.editing;
        let field = multi_line || self.typing_in_a_line();
        if !field {
            self.set_flash("paste ignored: no field is being typed in", true);
            return Vec::new();
        }
        if multi_line {
            // Straight into the query: no key of the paste can send it or leave the field.
            self.query
                .input
                .extend(text.chars().filter(|c| *c == '\n' || !c.is_control()));
            return Vec::new();
        }
        let mut effects = Vec::new();
        for c in text.chars() {
            let c = match c {
                '\r' => continue,
                '\n' | '\t' => ' ',
                c if c.is_control() => continue,
                c => c,
            };
            // One-line fields take characters as text; should the field close, the rest of the
            // paste is dropped rather than run as keys.
            if !self.typing_in_a_line() {
                break;
            }
            effects.extend(self.handle_key(&KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
        }
        effects
    }

    pub fn handle_key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        self.dirty = true;
        // Ctrl-C always quits, whatever is open and however keys are bound.
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return vec![Effect::Quit];
        }
        let focused = self.focused_table();
        match &mut self.overlay {
            Overlay::Command { input, error } => {
                match key.code {
                    KeyCode::Esc => self.overlay = Overlay::None,
                    KeyCode::Enter => {
                        let line = input.clone();
                        self.overlay = Overlay::None;
                        return self.run_command(&line);
                    }
                    KeyCode::Tab => {
                        if let Some(done) = command::complete(input) {
                            *input = done;
                        }
                        *error = None;
                    }
                    KeyCode::Backspace => {
                        if input.pop().is_none() {
                            self.overlay = Overlay::None;
                        } else {
                            *error = None;
                        }
                    }
                    KeyCode::Char(c) => {
                        input.push(c);
                        *error = None;
                    }
                    _ => {}
                }
                return Vec::new();
            }
            Overlay::Filter { input } => {
                let id = focused;
                let mut effects = Vec::new();
                match key.code {
                    KeyCode::Esc => {
                        self.overlay = Overlay::None;
                        self.view_mut(id).filter.clear();
                    }
                    KeyCode::Enter => self.overlay = Overlay::None,
                    KeyCode::Backspace => {
                        input.pop();
                        let text = input.clone();
                        self.view_mut(id).filter = text;
                    }
                    KeyCode::Char(c) => {
                        input.push(c);
                        let text = input.clone();
                        self.view_mut(id).filter = text;
                    }
                    KeyCode::Up | KeyCode::Down => {
                        let d = if key.code == KeyCode::Up { -1 } else { 1 };
                        self.move_cursor(id, |s, _| s + d);
                    }
                    _ => {}
                }
                self.move_cursor(id, |s, _| s);
                if id == TableId::Candidates {
                    effects.extend(self.candidates_filter_changed());
                }
                return effects;
            }
            Overlay::Import(form) => {
                match key.code {
                    KeyCode::Esc => {
                        self.overlay = Overlay::None;
                        self.set_flash("import cancelled: nothing ran", false);
                    }
                    KeyCode::Enter => match form.spec() {
                        Ok(spec) => {
                            self.overlay = Overlay::None;
                            self.set_flash(
                                format!("starting the import of {}…", spec.handle),
                                false,
                            );
                            return vec![Effect::Import(spec)];
                        }
                        Err(e) => form.error = Some(e),
                    },
                    KeyCode::Char('o') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                        self.switch_import_to_alternative();
                    }
                    KeyCode::Tab | KeyCode::Down => form.next(),
                    KeyCode::BackTab | KeyCode::Up => form.prev(),
                    KeyCode::Backspace => form.backspace(),
                    KeyCode::Char(c) => form.type_char(c),
                    _ => {}
                }
                return Vec::new();
            }
            Overlay::Logs(view) => {
                if view.editing_filter {
                    match key.code {
                        KeyCode::Esc => {
                            view.filter.clear();
                            view.editing_filter = false;
                        }
                        KeyCode::Enter => view.editing_filter = false,
                        KeyCode::Backspace => {
                            view.filter.pop();
                        }
                        KeyCode::Char(c) => view.filter.push(c),
                        _ => {}
                    }
                    return Vec::new();
                }
                const LOG_KEYS: [Action; 13] = [
                    Action::Back,
                    Action::Filter,
                    Action::PreviousLogs,
                    Action::Wrap,
                    Action::LogWindow,
                    Action::SaveLogs,
                    Action::Up,
                    Action::Down,
                    Action::PageUp,
                    Action::PageDown,
                    Action::Top,
                    Action::Bottom,
                    Action::Quit,
                ];
                // Lines count from the newest: scroll 0 follows the end.
                match self
                    .keymap
                    .action_among(&KeyChord::from_event(key), &LOG_KEYS)
                {
                    Some(Action::Back) => self.overlay = Overlay::None,
                    Some(Action::Filter) => view.editing_filter = true,
                    Some(Action::PreviousLogs) if !view.job => {
                        view.previous = !view.previous;
                        view.scroll = 0;
                        if view.previous {
                            let name = view.service.clone();
                            self.previous_logs = None;
                            return vec![Effect::PreviousLogs(name)];
                        }
                    }
                    Some(Action::Wrap) => view.wrap = !view.wrap,
                    Some(Action::LogWindow) => {
                        let now = super::logs::LOG_WINDOWS
                            .iter()
                            .position(|w| *w == view.window_secs)
                            .unwrap_or(0);
                        view.window_secs =
                            super::logs::LOG_WINDOWS[(now + 1) % super::logs::LOG_WINDOWS.len()];
                        view.scroll = 0;
                    }
                    Some(Action::Bottom) => view.scroll = 0,
                    Some(Action::Top) => view.scroll = usize::MAX / 2,
                    Some(Action::Up) => view.scroll = view.scroll.saturating_add(1),
                    Some(Action::Down) => view.scroll = view.scroll.saturating_sub(1),
                    Some(Action::PageUp) => view.scroll = view.scroll.saturating_add(20),
                    Some(Action::PageDown) => view.scroll = view.scroll.saturating_sub(20),
                    Some(Action::SaveLogs) => {
                        let service = view.service.clone();
                        let lines = self.log_lines_shown();
                        return vec![Effect::SaveLogs { service, lines }];
                    }
                    Some(Action::Quit) => return self.update(Action::Quit),
                    _ => {}
                }
                return Vec::new();
            }
            Overlay::Confirm { effect, .. } => {
                let effect = (**effect).clone();
                let among = [Action::Confirm, Action::Deny, Action::Back, Action::Quit];
                match self.keymap.action_among(&KeyChord::from_event(key), &among) {
                    Some(Action::Confirm) => {
                        self.overlay = Overlay::None;
                        return vec![effect];
                    }
                    Some(Action::Deny | Action::Back) => {
                        self.overlay = Overlay::None;
                        self.set_flash("nothing changed", false);
                    }
                    Some(Action::Quit) => return self.update(Action::Quit),
                    _ => {}
                }
                return Vec::new();
            }
            Overlay::Help { .. } | Overlay::None => {}
        }
        if self.tab == Tab::Query && self.query.editing {
            let chord = KeyChord::from_event(key);
            if self.keymap.action(&chord) == Some(Action::RunQuery) {
                return self.update(Action::RunQuery);
            }
            match key.code {
                KeyCode::Esc => self.query.editing = false,
                KeyCode::Enter => self.query.input.push('\n'),
                KeyCode::Backspace => {
                    self.query.input.pop();
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.query.input.push(c)
                }
                _ => {}
            }
            return Vec::new();
        }
        match self.keymap.action(&KeyChord::from_event(key)) {
            Some(action) => self.update(action),
            None => Vec::new(),
        }
    }

    /// Carries out an action.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.dirty = true;
        if let Overlay::Help { scroll } = &mut self.overlay {
            match action {
                Action::Up => *scroll = scroll.saturating_sub(1),
                Action::Down => *scroll = scroll.saturating_add(1),
                Action::PageUp => *scroll = scroll.saturating_sub(10),
                Action::PageDown => *scroll = scroll.saturating_add(10),
                Action::Top => *scroll = 0,
                Action::Back | Action::Help => self.overlay = Overlay::None,
                // Any other action closes the help and is carried out.
                _ => {
                    self.overlay = Overlay::None;
                    return self.update(action);
                }
            }
            return Vec::new();
        }
        let id = self.focused_table();
        match action {
            Action::Quit => {
                self.quit = true;
                return vec![Effect::Quit];
            }
            Action::Back => {
                if !self.view(id).filter.is_empty() {
                    self.view_mut(id).filter.clear();
                    self.move_cursor(id, |s, _| s);
                    if id == TableId::Candidates {
                        return self.candidates_filter_changed();
                    }
                } else {
                    self.quit = true;
                    return vec![Effect::Quit];
                }
            }
            Action::Help => self.overlay = Overlay::Help { scroll: 0 },
            Action::Command => {
                self.overlay = Overlay::Command {
                    input: String::new(),
                    error: None,
                }
            }
            Action::Filter => {
                self.overlay = Overlay::Filter {
                    input: self.view(id).filter,
                }
            }
            Action::NextTab => self.tab = self.tab.offset(1),
            Action::PrevTab => self.tab = self.tab.offset(-1),
            Action::TabCandidates => self.tab = Tab::Candidates,
            Action::TabImports => self.tab = Tab::Imports,
            Action::TabHealth => self.tab = Tab::Health,
            Action::TabQuery => self.tab = Tab::Query,
            Action::Up => self.move_cursor(id, |s, _| s - 1),
            Action::Down => self.move_cursor(id, |s, _| s + 1),
            Action::PageUp => self.move_cursor(id, |s, p| s - p),
            Action::PageDown => self.move_cursor(id, |s, p| s + p),
            Action::Top => self.move_cursor(id, |_, _| 0),
            Action::Bottom => self.move_cursor(id, |_, _| isize::MAX / 2),
            Action::FocusNext => {
                if self.tab == Tab::Health {
                    self.health_focus = match self.health_focus {
                        TableId::Pools => TableId::Services,
                        _ => TableId::Pools,
                    };
                }
            }
            Action::Refresh => {
                self.set_flash("refreshing…", false);
                self.details.clear();
                let mut effects = vec![Effect::Refresh];
                effects.extend(self.restart_search());
                return effects;
            }
            Action::Download => {
                if self.tab != Tab::Candidates {
                    return Vec::new();
                }
                if self.read_only {
                    self.set_flash(
                        "read-only mode: downloads into the Hugging Face cache start from a screen without --read-only",
                        true,
                    );
                    return Vec::new();
                }
                let Some(handle) = self.selected_candidate().map(|c| c.handle.clone()) else {
                    return Vec::new();
                };
                if !self.hub.online() {
                    self.set_flash("the Hub is offline: nothing can be downloaded", true);
                    return Vec::new();
                }
                if self
                    .downloads
                    .get(&handle)
                    .is_some_and(|d| d.finished.is_none())
                {
                    self.set_flash(format!("{handle} is already downloading"), false);
                    return Vec::new();
                }
                self.set_flash(format!("downloading {handle}…"), false);
                return vec![Effect::Download(handle)];
            }
            Action::DeleteCached => {
                if self.tab != Tab::Candidates {
                    return Vec::new();
                }
                if self.read_only {
                    self.set_flash(
                        "read-only mode: nothing can be deleted from this screen",
                        true,
                    );
                    return Vec::new();
                }
                let Some(c) = self.selected_candidate() else {
                    return Vec::new();
                };
                // The revision `main` points to, else the first cached one.
                let Some((repo, rev)) = c
                    .cache
                    .as_ref()
                    .and_then(|r| Some((r.repo_id.clone(), r.revisions.first()?.clone())))
                else {
                    self.set_flash(
                        format!("{} is not in the Hugging Face cache", c.handle),
                        false,
                    );
                    return Vec::new();
                };
                let Some(root) = self.hf_cache.clone() else {
                    return Vec::new();
                };
                self.confirm(PlatformOp::DeleteCached {
                    root,
                    repo,
                    commit: rev.commit,
                    bytes: rev.size_bytes,
                });
            }
            // Keys of the log view and of questions: nothing on a pane.
            Action::Wrap
            | Action::SaveLogs
            | Action::LogWindow
            | Action::Confirm
            | Action::Deny => {}
            Action::Tree => {
                if self.tab == Tab::Health {
                    self.health_tree = !self.health_tree;
                }
            }
            Action::Logs if self.tab == Tab::Imports => {
                let Some(id) = self.selected_job().map(|j| j.id.clone()) else {
                    return Vec::new();
                };
                self.overlay = Overlay::Logs(Box::new(LogView {
                    service: id,
                    job: true,
                    scroll: 0,
                    wrap: true,
                    filter: String::new(),
                    editing_filter: false,
                    previous: false,
                    window_secs: None,
                }));
            }
            Action::PreviousLogs => {
                if self.tab != Tab::Health {
                    return Vec::new();
                }
                let Some(name) = self.selected_service().map(|s| s.name.clone()) else {
                    self.set_flash("select a service to see its previous log", false);
                    return Vec::new();
                };
                self.previous_logs = None;
                self.overlay = Overlay::Logs(Box::new(LogView {
                    service: name.clone(),
                    job: false,
                    scroll: 0,
                    wrap: false,
                    filter: String::new(),
                    editing_filter: false,
                    previous: true,
                    window_secs: None,
                }));
                return vec![Effect::PreviousLogs(name)];
            }
            Action::Logs => {
                if self.tab != Tab::Health {
                    return Vec::new();
                }
                let Some(name) = self.selected_service().map(|s| s.name.clone()) else {
                    self.set_flash("select a service to see its log", false);
                    return Vec::new();
                };
                self.overlay = Overlay::Logs(Box::new(LogView {
                    service: name,
                    job: false,
                    scroll: 0,
                    wrap: false,
                    filter: String::new(),
                    editing_filter: false,
                    previous: false,
                    window_secs: None,
                }));
            }
            Action::Import if self.read_only => {
                self.set_flash(
                    "read-only mode: imports start from a screen without --read-only",
                    true,
                );
            }
            Action::Import => return self.open_import_form(),
            Action::EditInput if self.tab == Tab::Query => {
                if self.query_target().is_some() || self.query.compare.is_some() {
                    self.query.editing = true;
                }
            }
            Action::RunQuery if self.tab == Tab::Query => {
                if self.query.busy {
                    self.set_flash("a call is already on its way", false);
                    return Vec::new();
                }
                self.query.editing = false;
                return self.query_request().into_iter().collect();
            }
            Action::ToggleMode if self.tab == Tab::Query => {
                self.query.search = !self.query.search;
                self.query.result = None;
            }
            Action::RawJson if self.tab == Tab::Query => self.query.raw = !self.query.raw,
            Action::CopyResult if self.tab == Tab::Query => {
                if let Some(r) = &self.query.result {
                    let text = serde_json::to_string_pretty(&r.raw_response).unwrap_or_default();
                    self.set_flash("result copied to the clipboard (OSC 52)", false);
                    return vec![Effect::Clipboard(text)];
                }
            }
            Action::EditInput
            | Action::RunQuery
            | Action::ToggleMode
            | Action::RawJson
            | Action::CopyResult => {}
            Action::CancelJob | Action::RetryJob => {
                if self.tab != Tab::Imports {
                    return Vec::new();
                }
                let Some(job) = self.selected_job() else {
                    return Vec::new();
                };
                let running = matches!(job.state, JobState::Queued | JobState::Running);
                let op = match (action, running) {
                    (Action::CancelJob, true) => PlatformOp::CancelJob(job.id.clone()),
                    (Action::RetryJob, false) if job.state != JobState::Done => {
                        PlatformOp::RetryJob(job.id.clone())
                    }
                    (Action::CancelJob, false) => {
                        let msg = format!("nothing to cancel: job {} is {}", job.id, job.state);
                        self.set_flash(msg, false);
                        return Vec::new();
                    }
                    _ => {
                        let msg = format!(
                            "only failed or cancelled jobs are retried ({} is {})",
                            job.id, job.state
                        );
                        self.set_flash(msg, false);
                        return Vec::new();
                    }
                };
                self.confirm(op);
            }
            Action::Suspend | Action::Resume => {
                if self.tab != Tab::Health {
                    return Vec::new();
                }
                let suspend = action == Action::Suspend;
                let op = match self.health_focus {
                    TableId::Services => {
                        let rows = self.visible_services();
                        let Some(s) = rows.get(self.view(TableId::Services).cursor.selected) else {
                            return Vec::new();
                        };
                        if suspend {
                            PlatformOp::SuspendService(s.name.clone())
                        } else {
                            PlatformOp::ResumeService(s.name.clone())
                        }
                    }
                    _ => {
                        let rows = self.visible_pools();
                        let Some(p) = rows.get(self.view(TableId::Pools).cursor.selected) else {
                            return Vec::new();
                        };
                        if suspend {
                            PlatformOp::SuspendPool(p.name.clone())
                        } else {
                            PlatformOp::ResumePool(p.name.clone())
                        }
                    }
                };
                self.confirm(op);
            }
            Action::CycleSort => {
                let current = self.hub.query.sort.clone().unwrap_or_default();
                let i = search::SORTS
                    .iter()
                    .position(|(a, _)| *a == current)
                    .map_or(0, |i| (i + 1) % search::SORTS.len());
                self.hub.query.sort = Some(search::SORTS[i].0.into());
                self.set_flash(format!("Hub sorted by {}", search::SORTS[i].1), false);
                return self.restart_search();
            }
        }
        Vec::new()
    }

    pub(super) fn confirm(&mut self, op: PlatformOp) {
        if self.read_only {
            self.set_flash(
                "read-only mode: nothing can be changed from this screen",
                true,
            );
            return;
        }
        self.overlay = Overlay::Confirm {
            message: op.describe(),
            effect: Box::new(Effect::Platform(op)),
        };
    }

    /// The import form for the selected candidate, with what is known about it.
    pub(super) fn open_import_form(&mut self) -> Vec<Effect> {
        if self.tab != Tab::Candidates {
            return Vec::new();
        }
        let Some(c) = self.selected_candidate().cloned() else {
            self.set_flash("select a model to import", false);
            return Vec::new();
        };
        self.import_form_for(c);
        Vec::new()
    }

    /// Replaces the open import form with one for its alternative (the catalog's "import X
    /// instead"), selecting that row.
    fn switch_import_to_alternative(&mut self) {
        let Overlay::Import(form) = &self.overlay else {
            return;
        };
        let Some(alt) = form.alternative.clone() else {
            self.set_flash("no other model to switch to", false);
            return;
        };
        let found = self
            .candidates
            .data
            .iter()
            .flatten()
            .find(|c| c.handle == alt.handle)
            .cloned();
        let Some(c) = found else {
            self.set_flash(format!("{} is not among the candidates", alt.handle), true);
            return;
        };
        // Select it, so the details beside the form are the new model's.
        self.view_mut(TableId::Candidates).filter.clear();
        if let Some(i) = self
            .visible_candidates()
            .iter()
            .position(|v| v.handle == c.handle)
        {
            self.view_mut(TableId::Candidates).cursor.selected = i;
        }
        self.set_flash(
            format!("switched the import to {} ({})", c.handle, alt.purpose),
            false,
        );
        self.import_form_for(c);
    }

    fn import_form_for(&mut self, c: Candidate) {
        let mut notes = Vec::new();
        let pool = self.fit_pool();
        let details = self.details.get(&c.handle).and_then(|d| d.data.clone());
        let task = c
            .task
            .clone()
            .or_else(|| details.as_ref().and_then(|d| d.pipeline_tag.clone()));
        // The local platform's tasks; anything else is left for the repo's files to decide.
        let task = task.filter(|t| t.parse::<crate::inference::Task>().is_ok());
        if let Some(d) = &details {
            notes.push((
                d.snowflake.supported != Some(false),
                format!("on Snowflake: {}", d.snowflake.summary()),
            ));
            if let Some(fit) = self.fit_of(d) {
                notes.push((fit.fits, fit.summary()));
            }
            if d.gated {
                notes.push((false, "gated: your HF token is used to download it".into()));
            }
        } else {
            notes.push((
                c.snowflake.supported != Some(false),
                format!("on Snowflake: {}", c.snowflake.summary()),
            ));
            notes.push((
                true,
                "Hub details not loaded yet: resolve checks licence, gating and fit".into(),
            ));
        }
        let pool_name = pool
            .map(|p| p.0)
            .or_else(|| self.snapshot.data.as_ref()?.status.default_pool.clone())
            .unwrap_or_default();
        let alternative = self.alternative_for(&c).cloned();
        let mut form = ImportForm::new(&c.handle, task.as_deref(), &pool_name, notes);
        form.alternative = alternative;
        form.library = details
            .as_ref()
            .and_then(|d| d.library.clone())
            .or_else(|| c.library.clone());
        if let Some(place) = self
            .snapshot
            .data
            .as_ref()
            .and_then(|s| s.status.registry.clone())
        {
            form.for_registry(place);
        }
        self.overlay = Overlay::Import(Box::new(form));
    }

    pub(super) fn run_command(&mut self, line: &str) -> Vec<Effect> {
        match command::parse(line) {
            Ok(Command::Go(tab)) => self.tab = tab,
            Ok(Command::Help) => self.overlay = Overlay::Help { scroll: 0 },
            Ok(Command::Refresh) => return self.update(Action::Refresh),
            Ok(Command::Theme(name)) => {
                self.theme = name;
                self.set_flash(
                    format!(
                        "theme {name}{}",
                        if name == ThemeName::Colorblind {
                            " (Okabe-Ito palette)"
                        } else {
                            ""
                        }
                    ),
                    false,
                );
            }
            Ok(Command::Compare(pair)) => {
                match &pair {
                    Some((a, b)) => self.set_flash(
                        format!("Query sends to {a} and {b} side by side; :compare none goes back"),
                        false,
                    ),
                    None => self.set_flash("Query calls the selected service", false),
                }
                self.query.compare = pair;
                self.query.comparison = None;
                self.tab = Tab::Query;
            }
            Ok(Command::Scale(name, change)) => {
                let selected = || {
                    let rows = self.visible_services();
                    rows.get(self.view(TableId::Services).cursor.selected)
                        .map(|s| s.name.clone())
                };
                let Some(name) = name.or_else(selected) else {
                    self.set_flash(
                        "select a service in Health, or name one: :scale SERVICE min=…",
                        true,
                    );
                    return Vec::new();
                };
                let found = self
                    .snapshot
                    .data
                    .as_ref()
                    .and_then(|s| {
                        s.services
                            .iter()
                            .find(|s| s.name == name || s.qualified_name() == name)
                    })
                    .cloned();
                if self.platform_kind == crate::domain::PlatformKind::Snowflake
                    && let Err(e) = change.check_snowflake()
                {
                    self.set_flash(e, true);
                    return Vec::new();
                }
                let Some(svc) = found else {
                    self.set_flash(format!("no service {name}"), true);
                    return Vec::new();
                };
                match change.plan(&svc.name, svc.scaling()) {
                    Ok(plan) => self.confirm(PlatformOp::AlterService {
                        service: svc.name.clone(),
                        change,
                        plan,
                    }),
                    Err(e) => self.set_flash(e, true),
                }
            }
            Ok(Command::Version(target)) => {
                match &target {
                    Some((m, v)) => self.set_flash(
                        format!("Query calls {m} {v} directly (warehouse inference on Snowflake); :version none goes back"),
                        false,
                    ),
                    None => self.set_flash("Query calls the selected service", false),
                }
                self.query.version_target = target;
                self.query.result = None;
                self.tab = Tab::Query;
            }
            Ok(Command::Platform(kind)) => {
                if kind == self.platform_kind && matches!(self.link, Link::Connected { .. }) {
                    self.set_flash(format!("already on the {kind} platform"), false);
                    return Vec::new();
                }
                self.platform_kind = kind;
                self.link = Link::Connecting;
                self.snapshot = Remote::default();
                self.snapshot.loading = true;
                self.job_detail = None;
                self.job_detail_asked = None;
                self.set_flash(format!("switching to the {kind} platform…"), false);
                return vec![Effect::SwitchPlatform(kind)];
            }
            Ok(Command::Quit) => {
                self.quit = true;
                return vec![Effect::Quit];
            }
            Ok(Command::Sort(api)) => {
                self.hub.query.sort = Some(api.into());
                self.tab = Tab::Candidates;
                return self.restart_search();
            }
            Ok(Command::HubFilter(field, value)) => {
                let slot = match field {
                    command::HubField::Task => &mut self.hub.query.pipeline_tag,
                    command::HubField::Author => &mut self.hub.query.author,
                    command::HubField::Library => &mut self.hub.query.library,
                };
                *slot = value;
                self.tab = Tab::Candidates;
                return self.restart_search();
            }
            Err(e) => {
                self.overlay = Overlay::Command {
                    input: line.to_string(),
                    error: Some(e),
                }
            }
        }
        Vec::new()
    }

    pub(super) fn handle_mouse(&mut self, m: &MouseEvent) -> Vec<Effect> {
        let at = Position::new(m.column, m.row);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if !matches!(self.overlay, Overlay::None) {
                    self.overlay = Overlay::None;
                    self.dirty = true;
                    return Vec::new();
                }
                if let Some(tab) = self.drawn.tab_at(at) {
                    self.tab = tab;
                    self.dirty = true;
                    return Vec::new();
                }
                for id in self.tab.tables() {
                    let Some(area) = self.drawn.rows_of(id) else {
                        continue;
                    };
                    if area.contains(at) {
                        if self.tab == Tab::Health {
                            self.health_focus = id;
                        }
                        let row = self.view(id).cursor.offset + (at.y - area.y) as usize;
                        if row < self.row_count(id) {
                            self.move_cursor(id, |_, _| row as isize);
                        }
                        self.dirty = true;
                    }
                }
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let d = if m.kind == MouseEventKind::ScrollDown {
                    1
                } else {
                    -1
                };
                let id = self
                    .tab
                    .tables()
                    .into_iter()
                    .find(|id| self.drawn.rows_of(*id).is_some_and(|a| a.contains(at)))
                    .unwrap_or(self.focused_table());
                self.move_cursor(id, |s, _| s + d);
                self.dirty = true;
            }
            _ => {}
        }
        Vec::new()
    }
}
