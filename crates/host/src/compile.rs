//! Compiling an app's wasm files: each file (or each component with its dependencies composed
//! in, `link::compose`) once however many components use it, and not at all on a reload if
//! none of its files changed. A core wasm module is made a component
//! first, as Spin does when it loads one (`spin-componentize`): modules built with
//! wit-bindgen for the component model (the `component-type` custom sections that name
//! their world) are encoded with the WASI 0.1 reactor adapter, WASI 0.1 commands with the
//! command adapter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{Parser, Payload};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::manifest::Dependency;

/// Every component compiled for an app, with its files' stamps when they were read.
pub type Compiled = HashMap<Source, (Vec<FileStamp>, Component)>;

/// What a compiled component was made from: its wasm file, then those of the dependencies
/// composed into it, each with its key and the export it is wired by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    files: Vec<PathBuf>,
    wiring: Vec<(String, Option<String>)>,
}

/// A wasm file to compile; `what` names it in errors ("component `x`").
pub struct WasmFile<'a> {
    pub what: &'a str,
    pub path: &'a Path,
}

/// A file's size and modification time: what tells a rebuilt wasm file from the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    /// The stamp of the file at `path`; `None` if there is no file there.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path)
            .ok()
            .filter(std::fs::Metadata::is_file)?;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// Compiles the wasm files of one load of an app.
pub struct Compiler<'a> {
    engine: &'a Engine,
    compiled: Compiled,
    /// What the running app compiled (on a reload).
    previous: Option<&'a Compiled>,
}

impl<'a> Compiler<'a> {
    pub fn new(engine: &'a Engine, previous: Option<&'a Compiled>) -> Self {
        Self {
            engine,
            compiled: HashMap::new(),
            previous,
        }
    }

    /// The compiled component at `path`; `what` names it in errors ("component `x`"),
    /// `build` is its build command, for the hint when the file is missing.
    pub fn compile(&mut self, what: &str, path: &Path, build: Option<&str>) -> Result<Component> {
        self.compile_composed(what, WasmFile { what, path }, &[], build)
    }

    /// The compiled component `id`, its file `main` with `deps` composed into it
    /// (`link::compose`).
    pub fn compile_composed(
        &mut self,
        id: &str,
        main: WasmFile<'_>,
        deps: &[(&Dependency, WasmFile<'_>)],
        build: Option<&str>,
    ) -> Result<Component> {
        let source = Source {
            files: std::iter::once(main.path)
                .chain(deps.iter().map(|(_, file)| file.path))
                .map(Path::to_path_buf)
                .collect(),
            wiring: deps
                .iter()
                .map(|(dep, _)| (dep.key.clone(), dep.export.clone()))
                .collect(),
        };
        if let Some((_, compiled)) = self.compiled.get(&source) {
            return Ok(compiled.clone());
        }
        let stamps: Option<Vec<FileStamp>> =
            source.files.iter().map(|f| FileStamp::of(f)).collect();
        let unchanged = self
            .previous
            .and_then(|previous| previous.get(&source))
            .filter(|(before, _)| Some(before) == stamps.as_ref());
        let compiled = match unchanged {
            Some((_, compiled)) => compiled.clone(),
            None => {
                let wasm = load(&main, build)?;
                let wasm = if deps.is_empty() {
                    wasm
                } else {
                    let deps = deps
                        .iter()
                        .map(|(dep, file)| Ok((*dep, load(file, build)?)))
                        .collect::<Result<Vec<_>>>()?;
                    crate::link::compose(id, &wasm, &deps)?
                };
                Component::new(self.engine, &wasm)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!(
                            "{}: {} is not a valid component",
                            main.what,
                            main.path.display()
                        )
                    })?
            }
        };
        // A file that vanished while it was read is read again next time.
        if let Some(stamps) = stamps {
            self.compiled.insert(source, (stamps, compiled.clone()));
        }
        Ok(compiled)
    }

    /// What was compiled, for the next reload.
    pub fn finish(self) -> Compiled {
        self.compiled
    }
}

/// A file's wasm, as a component.
fn load(file: &WasmFile<'_>, build: Option<&str>) -> Result<Vec<u8>> {
    let wasm = read_wasm(file.what, file.path, build)?;
    let made = match componentize(&wasm) {
        Ok(std::borrow::Cow::Borrowed(_)) => None,
        Ok(std::borrow::Cow::Owned(component)) => Some(component),
        Err(err) => {
            return Err(err.context(format!(
                "{}: {} is a module that cannot be made a component",
                file.what,
                file.path.display()
            )))
        }
    };
    Ok(made.unwrap_or(wasm))
}

/// Reads a component's wasm; `what` names it in errors ("component `products`").
fn read_wasm(what: &str, source: &Path, build_command: Option<&str>) -> Result<Vec<u8>> {
    match std::fs::read(source) {
        Ok(bytes) => Ok(bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let hint = match build_command {
                Some(command) => format!("build it with `{command}`, or run `up --build`"),
                None => "build it first".to_owned(),
            };
            bail!("{what}: {} does not exist: {hint}", source.display())
        }
        Err(err) => Err(err).with_context(|| format!("{what}: cannot read {}", source.display())),
    }
}

/// `wasm` as a component: as it is if it is one, else the module encoded as one.
fn componentize(wasm: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if !Parser::is_core_wasm(wasm) {
        // A component, or not wasm at all: `Component::new` says which.
        return Ok(wasm.into());
    }
    let adapter = match ModuleShape::of(wasm)? {
        ModuleShape::ComponentModel => WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        ModuleShape::WasiCommand => WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        ModuleShape::Other => bail!(
            "it has neither the component-type sections of a module built for the component \
             model (wit-bindgen) nor a WASI command's `_start`: Spin 1.x modules are not \
             supported by this host; rebuild it with a current Spin SDK"
        ),
    };
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(wasm)?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter)?
        .encode()?;
    Ok(component.into())
}

/// What kind of core module a file is, as Spin tells them apart.
#[derive(Debug, PartialEq, Eq)]
enum ModuleShape {
    /// Built for the component model: it names its world in `component-type` sections (or
    /// exports `cabi_realloc`).
    ComponentModel,
    /// A WASI 0.1 command (`_start`).
    WasiCommand,
    Other,
}

impl ModuleShape {
    fn of(wasm: &[u8]) -> Result<Self> {
        let (mut bindgen, mut start) = (false, false);
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::CustomSection(section) if section.name().starts_with("component-type") => {
                    bindgen = true;
                }
                Payload::ExportSection(exports) => {
                    for export in exports {
                        match export?.name {
                            "cabi_realloc" | "canonical_abi_realloc" => bindgen = true,
                            "_start" => start = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(match (bindgen, start) {
            (true, _) => Self::ComponentModel,
            (false, true) => Self::WasiCommand,
            (false, false) => Self::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_without_component_type_sections_or_start_is_refused_by_name() {
        // The smallest module: magic and version.
        let module = b"\0asm\x01\0\0\0";
        assert_eq!(ModuleShape::of(module).unwrap(), ModuleShape::Other);
        let err = format!("{:#}", componentize(module).unwrap_err());
        assert!(err.contains("Spin 1.x"), "{err}");
    }

    #[test]
    fn a_component_is_left_as_it_is() {
        // The smallest component: magic and the component layer's version.
        let component = b"\0asm\x0d\0\x01\0";
        assert!(matches!(
            componentize(component).unwrap(),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
