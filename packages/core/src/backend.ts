import * as tf from '@tensorflow/tfjs';

import { BACKENDS, type BackendName } from './config.js';
import { ConfigError } from './errors.js';
import type { Logger } from './logger.js';
import { registerWasmKernels } from './wasm-kernels.js';

/** A backend that selectBackend can activate. */
export type ActiveBackend = Exclude<BackendName, 'auto'>;

// tfjs-node is an optional dependency, so its name is kept out of the static imports and type checking.
const TFJS_NODE = '@tensorflow/tfjs-node';

async function activateTensorflow(): Promise<void> {
  await import(TFJS_NODE);
  if (!(await tf.setBackend('tensorflow'))) {
    throw new Error('the tensorflow backend did not initialise');
  }
}

async function activateWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  registerWasmKernels();
  if (!(await tf.setBackend('wasm'))) {
    throw new Error('the wasm backend did not initialise');
  }
}

async function activateCpu(): Promise<void> {
  // The cpu backend prints a banner suggesting tfjs-node on first use in Node.js; production mode silences it.
  tf.env().set('PROD', true);
  if (!(await tf.setBackend('cpu'))) {
    throw new Error('the cpu backend did not initialise');
  }
}

const ACTIVATORS: Record<ActiveBackend, () => Promise<void>> = {
  tensorflow: activateTensorflow,
  wasm: activateWasm,
  cpu: activateCpu,
};

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // tfjs-node's message names the full path of the missing addon; the reason is what matters in a log line.
  if (message.includes('tfjs_binding.node')) {
    return 'its native addon tfjs_binding.node is not built';
  }
  return message.split('\n').find((line) => line.trim().length > 0)?.trim() ?? 'unknown error';
}

/**
 * Activates a tensor backend and logs the choice in one line. `auto` tries tensorflow (tfjs-node's
 * native addon), then wasm, then cpu; a named backend that fails to load is a ConfigError.
 */
export async function selectBackend(preference: BackendName, logger: Logger): Promise<ActiveBackend> {
  // TypeScript callers cannot pass another name, but JavaScript callers and parsed input can.
  if (!(BACKENDS as readonly string[]).includes(preference)) {
    throw new ConfigError('backend', `Invalid value for 'backend': ${JSON.stringify(preference)}; expected one of ${BACKENDS.join(', ')}.`);
  }
  if (preference !== 'auto') {
    try {
      await ACTIVATORS[preference]();
    } catch (error) {
      throw new ConfigError(
        'backend',
        `Invalid value for 'backend': '${preference}' failed to load (${firstLine(error)}). Use backend: auto to fall back.`,
        { cause: error },
      );
    }
    logger.info(`backend: ${preference} (requested)`);
    return preference;
  }

  const skipped: string[] = [];
  for (const name of ['tensorflow', 'wasm', 'cpu'] as const) {
    try {
      await ACTIVATORS[name]();
      const note = skipped.length === 0 ? '' : `; ${skipped.join('; ')}`;
      logger.info(`backend: ${name}${note}`);
      return name;
    } catch (error) {
      skipped.push(`${name} unavailable (${firstLine(error)})`);
    }
  }
  throw new Error(`No tensor backend could be loaded: ${skipped.join('; ')}.`);
}
