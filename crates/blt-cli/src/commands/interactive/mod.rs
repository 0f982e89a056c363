//! `blt-cli generate --interactive`: a terminal screen (ratatui on crossterm) with a prompt box,
//! the generated text streamed as it arrives and coloured by entropy with patch boundaries
//! marked, live bytes/s, and keys for the temperature, stopping and quitting (see [`app`] for
//! the keys and [`view`] for the colours).
//!
//! The model runs on its own thread ([`worker`]) and sends each byte over a channel; the screen
//! polls keys and the channel in turns, so typing and Esc work while bytes arrive. The terminal
//! is restored on every exit: normally, on error (a guard's `Drop`) and on panic (ratatui's
//! panic hook restores it before the message is printed).

mod app;
mod view;
mod worker;

use std::{
    io::IsTerminal,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, Receiver, Sender, TryRecvError},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use blt_model::{GenerationConfig, Generator, load_model};
use burn::tensor::backend::Backend;
use crossterm::event::{self, KeyEventKind};
use ratatui::DefaultTerminal;

use crate::backend::{BackendKind, BackendTask, decoding_preference_of};
use app::{Action, App};
use worker::{Event, ModelInfo, Request};

/// How long the screen waits for a key before looking at the channel again.
const POLL: Duration = Duration::from_millis(25);
/// How often the screen is redrawn while nothing changes (the bytes/s keeps moving).
const TICK: Duration = Duration::from_millis(250);

/// Fails with one line unless stdin and stdout are terminals (checked before anything loads, so
/// a pipe or a CI job gets an error at once instead of a screen nobody sees).
pub fn require_terminal() -> Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!(
            "--interactive needs a terminal (stdin and stdout are not both a TTY); \
             use --prompt without --interactive to generate into a pipe"
        );
    }
    Ok(())
}

/// The interactive session: the model to load and how to generate.
pub struct InteractiveTask {
    /// Model or run directory.
    pub model: PathBuf,
    /// Decoding path.
    pub decoder: crate::decoder::DecoderChoice,
    /// Settings for every generation (temperature and seed change per run).
    pub generation: GenerationConfig,
    /// Text the prompt box starts with.
    pub initial_prompt: String,
}

impl BackendTask for InteractiveTask {
    type Output = ();
    fn cpu_preference(&self) -> [BackendKind; 2] {
        decoding_preference_of(&self.model)
    }

    fn run<B: Backend>(self, device: B::Device, name: &'static str) -> Result<()> {
        // Load and check before the screen opens, so these errors are ordinary one-liners.
        let loaded = load_model::<B>(&self.model, &device)
            .with_context(|| format!("loading model {}", self.model.display()))?;
        Generator::new(
            &loaded.model,
            loaded.entropy_model.as_ref(),
            &loaded.config,
            device.clone(),
        )?;
        let app = App::new(
            ModelInfo::of(&loaded, name),
            self.generation,
            self.initial_prompt,
        );
        let (request_tx, request_rx) = mpsc::channel();
        let (event_tx, event_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        std::thread::scope(|scope| {
            let worker_stop = Arc::clone(&stop);
            let mode = crate::decoder::mode_for(
                self.decoder,
                &loaded.model,
                loaded.entropy_model.as_ref(),
                name,
            );
            let worker = std::thread::Builder::new()
                .name("blt-generate".into())
                .spawn_scoped(scope, move || {
                    worker::serve(loaded, device, mode, request_rx, event_tx, worker_stop)
                })
                .context("starting the generation thread")?;
            let result = run_screen(app, request_tx, event_rx, &stop);
            // The channels are gone with `run_screen`; a running generation sees the flag (or
            // the closed channel) at its next byte and the thread ends.
            stop.store(true, Ordering::Relaxed);
            let joined = worker.join();
            result?;
            joined.map_err(|_| anyhow!("the generation thread panicked"))
        })
    }
}

/// Restores the terminal when dropped (also on `?` and unwinding).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Opens the screen and runs it until the user quits.
fn run_screen(
    mut app: App,
    requests: Sender<Request>,
    events: Receiver<Event>,
    stop: &AtomicBool,
) -> Result<()> {
    // The guard exists before raw mode is switched on, so a half-done set-up is undone too.
    let _guard = TerminalGuard;
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    event_loop(&mut terminal, &mut app, &requests, &events, stop)
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    requests: &Sender<Request>,
    events: &Receiver<Event>,
    stop: &AtomicBool,
) -> Result<()> {
    let mut dirty = true;
    let mut last_draw = Instant::now();
    loop {
        loop {
            match events.try_recv() {
                Ok(event) => {
                    app.on_event(event, Instant::now());
                    dirty = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    bail!("the generation thread stopped unexpectedly")
                }
            }
        }
        if dirty || last_draw.elapsed() >= TICK {
            let now = Instant::now();
            terminal
                .draw(|frame| view::draw(frame, app, now))
                .context("drawing the screen")?;
            last_draw = now;
            dirty = false;
        }
        if !event::poll(POLL).context("reading the terminal")? {
            continue;
        }
        dirty = true;
        let event::Event::Key(key) = event::read().context("reading the terminal")? else {
            continue; // resize and others: redraw
        };
        if key.kind == KeyEventKind::Release {
            continue;
        }
        match app.on_key(key, Instant::now()) {
            Action::None => {}
            Action::Stop => stop.store(true, Ordering::Relaxed),
            Action::Quit => return Ok(()),
            Action::Generate(request) => {
                stop.store(false, Ordering::Relaxed);
                requests
                    .send(request)
                    .map_err(|_| anyhow!("the generation thread stopped unexpectedly"))?;
            }
        }
    }
}
