// The benchmark rows: each names a config for our runner and the matching settings of the PyTorch reference.
// The core import is the same dist module that load.mjs imports, so there is one copy of core and of tfjs.
import { PROTOTYPE_SETTINGS } from '../../packages/core/dist/index.js';

const MODELS = {
  mlp: { backbone: 'mlp', input_dim: 784, hidden_dim: 256, num_layers: 3, output_dim: 10 },
  cnn: { backbone: 'cnn', image_size: 28, image_channels: 1, hidden_dim: 32, num_layers: 3, output_dim: 10 },
};

const ADAPTERS = {
  lora: { adapter_type: 'lora', lora_rank: 4 },
  adapter: { adapter_type: 'linear_adapter', adapter_bottleneck: 8 },
};

// `last` keeps the scope at the last layer, and most steps accept. `full` rejects every attempt (the metric
// cannot fall by 1e6), so each step tries the last layer, then the last two, then all three. The episodic
// reset shrinks the scope back to the last layer (with fresh adapters) before each step, which is what
// makes every step take the 3 attempts; without it the scope stays at three layers after the first step.
const SCOPES = {
  last: { disable_scope_expansion: true, rollback_threshold: 0 },
  full: { rollback_threshold: 1e6, reset: 'episodic' },
};

const BATCHES = [64, 1];

function matches(name, filter) {
  return filter === undefined || name.includes(filter);
}

/** Returns the step rows, named `model-bBATCH-adapter-scope`; `quick` keeps batch 64 only. */
export function stepRows({ quick = false, filter } = {}) {
  const rows = [];
  for (const [model, modelSettings] of Object.entries(MODELS)) {
    for (const batch of quick ? [64] : BATCHES) {
      for (const [adapter, adapterSettings] of Object.entries(ADAPTERS)) {
        for (const [scope, scopeSettings] of Object.entries(SCOPES)) {
          const name = `${model}-b${batch}-${adapter}-${scope}`;
          if (!matches(name, filter)) {
            continue;
          }
          rows.push({
            name,
            batch,
            // The timed step is the prototype's: entropy, the threshold gate and no reset unless the scope sets one.
            settings: {
              ...modelSettings,
              ...adapterSettings,
              ...PROTOTYPE_SETTINGS,
              ...scopeSettings,
              seed: 0,
              lr: 1e-3,
              num_steps: 1,
              trust_region_lambda: 0.01,
            },
            torch: { model, batch, adapter, scope, rank: 4, alpha: 4, bottleneck: 8, lr: 1e-3, lambda: 0.01, threshold: scopeSettings.rollback_threshold },
          });
        }
      }
    }
  }
  return rows;
}

/** Returns the frozen-inference rows (batch 64, no adapters). */
export function inferenceRows({ filter } = {}) {
  return Object.entries(MODELS)
    .map(([model, settings]) => ({ name: `${model}-b64-frozen`, batch: 64, settings, torch: { model, batch: 64 } }))
    .filter((row) => matches(row.name, filter));
}
