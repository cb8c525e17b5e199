//! The WebAssembly engine and the linker of the host's interfaces, configured once at start.

use std::path::Path;

use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::factors::InstanceState;

/// Per slot, the most memory reset in place rather than returned to the kernel.
const KEEP_RESIDENT_BYTES: usize = 16 << 20;
/// Slots whose memory is returned to the kernel together.
const DECOMMIT_BATCH: usize = 32;

/// An engine for at most `max_instances` concurrent requests of at most `max_memory_bytes`
/// each; with `perfmap`, one that tells `perf` the names of the compiled functions. Compiled components are cached on disk, so a restart does not recompile: in
/// `cache_dir` if given, else where Wasmtime's user configuration says.
pub fn new_engine(
    max_instances: u32,
    max_memory_bytes: usize,
    cache_dir: Option<&Path>,
    perfmap: bool,
) -> Result<Engine> {
    let mut config = Config::new();
    if perfmap {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config.wasm_component_model(true);
    // WASI 0.3 components: async functions, streams and futures, and instances that run
    // several requests at once.
    config.wasm_component_model_async(true);
    // Epochs bound how long a request may run inside wasm.
    config.epoch_interruption(true);
    match compile_cache(cache_dir) {
        Ok(cache) => {
            config.cache(Some(cache));
        }
        Err(err) => eprintln!("warning: compilation cache disabled: {err:#}"),
    }
    let mut pool = PoolingAllocationConfig::default();
    // Each request's instance takes one slot; an app with several components per request
    // (dependencies, chaining) takes a few.
    let slots = max_instances.saturating_mul(4);
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(4))
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(slots)
        .max_memory_size(max_memory_bytes)
        // Resetting a slot with madvise flushes TLBs on every core (measured: a quarter of
        // the host's CPU under load). Where the kernel can report which pages an instance
        // touched (PAGEMAP_SCAN, Linux 6.7+), reset just those with memset and keep them
        // resident; elsewhere batch the decommits.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .decommit_batch_size(DECOMMIT_BATCH);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot configure the WebAssembly engine")
}

fn compile_cache(dir: Option<&Path>) -> Result<wasmtime::Cache> {
    let Some(dir) = dir else {
        return Ok(wasmtime::Cache::from_file(None)?);
    };
    let dir = std::path::absolute(dir)
        .with_context(|| format!("the cache directory {}", dir.display()))?;
    let mut config = wasmtime::CacheConfig::new();
    config.with_directory(dir);
    Ok(wasmtime::Cache::new(config)?)
}

/// A linker with every host interface (`factors.rs`).
pub fn new_linker(engine: &Engine) -> Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    crate::factors::add_to_linker(&mut linker)?;
    Ok(linker)
}
