import * as tf from '@tensorflow/tfjs';

import { AdamConstants, AttemptAdam } from './attempt-adam.js';
import { BalancedMemory, smallMemoryWarning, type MemoryState } from './balanced-memory.js';
import { MemoryActivations } from './memory-trace.js';
import { withinAnchorBounds, type AcceptancePolicy, type GateDecision, type HeldOutMetrics, type RejectReason, type SourceDivergence } from './acceptance-policy.js';
import type { Adapter, AdapterFactory } from './adapter.js';
import type { Backbone, BackboneOutput, ForwardOptions, FrozenLayerActivations, FrozenTrace, LayerAdapters } from './backbone.js';
import type { SafeMetaNetConfig } from './config.js';
import { ConfigError, InputError, PluginFailureError, SafeMetaNetError } from './errors.js';
import type { ExpansionSchedule } from './expansion-schedule.js';
import type { Logger } from './logger.js';
import type { ProxyMetric } from './proxy-metric.js';
import { finiteOrNull, summarizeRecords, type AttemptRecord, type RunRecord, type RunSummary } from './records.js';

/** Values of one adapter variable, for checkpoints. */
export interface VariableState {
  readonly shape: readonly number[];
  /** Float32 values in row-major order. */
  readonly values: readonly number[];
}

/**
 * Everything a runner needs to continue a stream exactly: the scope, the adapter values, the records
 * so far and the stream position. The optimizer starts fresh on every attempt, so it has no state to keep,
 * and adapters are initialised from the seed and the layer index, so no random state is needed either.
 */
export interface RunnerState {
  /** Layers in scope, in the order they joined. */
  readonly scope: readonly string[];
  /** Adapter variables by layer name, in the adapter's `variables` order. */
  readonly adapters: Readonly<Record<string, readonly VariableState[]>>;
  /** Records of the batches processed so far. */
  readonly records: readonly RunRecord[];
  /** Samples processed so far. */
  readonly samplesSeen: number;
  /** Contents of the sample memory; only with `memory_size` above 0, once a batch has run. */
  readonly memory?: MemoryState;
}

/** The plugins and settings a runner is built from. */
export interface SafeMetaNetParts {
  readonly config: SafeMetaNetConfig;
  readonly backbone: Backbone;
  readonly adapterFactory: AdapterFactory;
  readonly proxy: ProxyMetric;
  readonly policy: AcceptancePolicy;
  readonly schedule: ExpansionSchedule;
  readonly logger: Logger;
}

const NO_ADAPTERS: LayerAdapters = new Map();

/** Forward options of the passes that read only the logits, so that a decoder head is not run for them. */
const LOGITS_ONLY: ForwardOptions = { reconstruction: false };

/** A batch split into the part the adapters train on and the part held out for judging. */
interface BatchSplit {
  readonly train: tf.Tensor;
  readonly heldOut?: tf.Tensor;
}

function heldOutFields(heldOut: HeldOutMetrics | undefined): Pick<AttemptRecord, 'held_out_before' | 'held_out_after'> {
  if (heldOut === undefined) {
    return {};
  }
  return { held_out_before: finiteOrNull(heldOut.metricBefore), held_out_after: finiteOrNull(heldOut.metricAfter) };
}

interface AttemptResult {
  readonly record: AttemptRecord;
  readonly gradientSteps: number;
}

/**
 * The Safe MetaNet loop. For each batch it trains the adapters in scope on the proxy metric and keeps
 * the update only when the acceptance policy accepts it. Otherwise it restores the exact previous
 * weights and widens the scope by the next layer of the schedule.
 */
export class SafeMetaNet {
  readonly config: SafeMetaNetConfig;
  readonly backbone: Backbone;
  readonly adapterFactory: AdapterFactory;
  readonly proxy: ProxyMetric;
  readonly policy: AcceptancePolicy;
  readonly schedule: ExpansionSchedule;
  readonly #logger: Logger;
  readonly #adapters = new Map<string, Adapter>();
  readonly #records: RunRecord[] = [];
  #scope: string[] = [];
  #samplesSeen = 0;
  /** Running mean of the adapted model's softmax over batches, for the on_collapse reset; undefined until a batch. */
  #meanPrediction: Float32Array | undefined;
  #collapseDetected = false;
  /** Frozen model's log-softmax on the current batch, computed at most once per step for the divergence checks. */
  #frozenLogProbabilities: tf.Tensor2D | undefined;
  /** Frozen activations of the tensors of the current step (the batch and its parts), computed once per step. */
  readonly #traces = new Map<tf.Tensor, FrozenTrace>();
  /** Recent samples balanced over the frozen model's classes, which the adapters train on; undefined with memory_size 0. */
  readonly #memory: BalancedMemory | undefined;
  /** Adam's constants as tensors, shared by every attempt's optimizer; undefined once disposed. */
  #adamConstants: AdamConstants | undefined;
  /** Frozen activations of the memory's samples, kept from step to step so that its trace needs no frozen layer. */
  readonly #memoryActivations = new MemoryActivations();
  /** The batch of the current step, whose trace supplies the frozen activations of the samples it adds to the memory. */
  #stepBatch: tf.Tensor | undefined;
  /** Whether the warning about a memory smaller than the batch was logged. */
  #warnedSmallMemory = false;

  constructor(parts: SafeMetaNetParts) {
    this.config = parts.config;
    this.backbone = parts.backbone;
    this.adapterFactory = parts.adapterFactory;
    this.proxy = parts.proxy;
    this.policy = parts.policy;
    this.schedule = parts.schedule;
    this.#logger = parts.logger;
    this.#memory = this.config.memorySize > 0 ? new BalancedMemory(this.config.memorySize) : undefined;

    this.#checkSchedule();
    this.#checkAdapters();
    const first = this.schedule.order[0];
    if (first === undefined) {
      throw new ConfigError('expansion_schedule', "Invalid value for 'expansion_schedule': []; list at least one layer.");
    }
    this.#addToScope(first);
    // Made last, so that a constructor that throws leaves no tensor behind.
    this.#adamConstants = new AdamConstants(this.config.lr);
  }

  /** Layers whose adapters are trainable, in the order they joined. */
  get scope(): readonly string[] {
    return [...this.#scope];
  }

  /** The injected adapters by layer name. */
  get adapters(): LayerAdapters {
    return this.#adapters;
  }

  /** Every batch record so far. */
  get records(): readonly RunRecord[] {
    return this.#records;
  }

  /** Totals over the records so far. */
  summary(): RunSummary {
    return summarizeRecords(this.#records);
  }

  /** Returns every trainable adapter parameter in scope. */
  scopeVariables(): tf.Variable[] {
    return this.#scope.flatMap((layer) => this.#adapters.get(layer)?.variables ?? []);
  }

  /** Returns the adapted model's logits for a batch. */
  predict(batch: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => this.backbone.forward(batch, this.#adapters, LOGITS_ONLY).logits);
  }

  /** Returns the frozen source model's logits for a batch. */
  predictSource(batch: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => this.backbone.forward(batch, NO_ADAPTERS, LOGITS_ONLY).logits);
  }

  /** Runs one batch through the gated loop and returns its record; `labels` are used only to score it. */
  step(batch: tf.Tensor, labels?: ArrayLike<number>): RunRecord {
    try {
      return this.#step(batch, labels);
    } finally {
      this.#frozenLogProbabilities?.dispose();
      this.#frozenLogProbabilities = undefined;
      for (const trace of this.#traces.values()) {
        trace.dispose();
      }
      this.#traces.clear();
      this.#stepBatch = undefined;
    }
  }

  #step(batch: tf.Tensor, labels?: ArrayLike<number>): RunRecord {
    const started = performance.now();
    this.#checkBatch(batch, labels);

    const stepIndex = this.#records.length;
    const reset = this.#resetDue(stepIndex, batch);
    if (reset) {
      this.resetAdapters();
    }
    const scopeAtStart = this.#scope.length;
    const preUpdateLogits = labels !== undefined && this.config.prediction === 'before_update' ? this.#adaptedLogits(batch) : undefined;

    const split = this.#splitBatch(this.#remember(batch));
    const attempts: AttemptRecord[] = [];
    let gradientSteps = 0;
    try {
      for (;;) {
        const result = this.#attempt(split, batch, stepIndex, attempts.length);
        attempts.push(result.record);
        gradientSteps += result.gradientSteps;
        if (result.record.accepted || result.record.reject_reason === 'non_finite') {
          break;
        }
        const next = this.schedule.next(this.#scope);
        if (next === undefined) {
          break;
        }
        this.#addToScope(next);
      }
    } finally {
      if (split.heldOut !== undefined) {
        tf.dispose([split.train, split.heldOut]);
      }
    }

    const first = attempts[0];
    const last = attempts.at(-1);
    if (first === undefined || last === undefined) {
      throw new Error('SafeMetaNet.step ran no attempt, which the loop above rules out.');
    }

    let record: RunRecord = {
      step: stepIndex,
      sample_idx: this.#samplesSeen,
      action: last.accepted ? 'accept' : 'reject',
      metric_before: first.metric_before,
      metric_after: last.metric_after,
      scope: [...this.#scope],
      scope_expanded: this.#scope.length > scopeAtStart,
      attempts: attempts.length,
      gradient_steps: gradientSteps,
      reject_reason: last.reject_reason,
      duration_ms: 0,
      prediction: this.config.prediction,
      attempt_metrics: attempts,
      batch_size: batch.shape[0] ?? 0,
      reset,
    };
    if (labels !== undefined) {
      const adapted = preUpdateLogits ?? this.#adaptedLogits(batch);
      const sourceAccuracy = tf.tidy(() => accuracyOf(this.#frozenLogits(batch), labels));
      record = { ...record, accuracy: accuracyOf(adapted, labels), source_accuracy: sourceAccuracy };
      adapted.dispose();
    }
    record = { ...record, duration_ms: performance.now() - started };

    if (this.config.reset === 'on_collapse') {
      this.#trackCollapse(batch);
    }
    this.#samplesSeen += record.batch_size;
    this.#records.push(record);
    this.#logger.info(describeRecord(record, this.proxy.name));
    return record;
  }

  /** Drops every adapter, so that the model is the frozen one again, and shrinks the scope to its first layer. */
  resetAdapters(): void {
    const first = this.schedule.order[0] as string;
    for (const adapter of this.#adapters.values()) {
      adapter.dispose();
    }
    this.#adapters.clear();
    this.#scope = [];
    this.#addToScope(first);
    this.#meanPrediction = undefined;
    this.#collapseDetected = false;
  }

  /** Returns the runner's state, to be saved in a checkpoint. */
  exportState(): RunnerState {
    const adapters: Record<string, VariableState[]> = {};
    for (const [layerName, adapter] of this.#adapters) {
      adapters[layerName] = adapter.variables.map((variable) => ({
        shape: [...variable.shape],
        values: Array.from(variable.dataSync()),
      }));
    }
    const memory = this.#memory?.exportState();
    const state = { scope: [...this.#scope], adapters, records: [...this.#records], samplesSeen: this.#samplesSeen };
    return memory === undefined ? state : { ...state, memory };
  }

  /**
   * Restores a state from exportState of a runner with the same config and backbone.
   * Raises an InputError when the state does not fit (an unknown layer, a different variable shape).
   */
  importState(state: RunnerState): void {
    for (const layerName of state.scope) {
      if (!this.schedule.order.includes(layerName)) {
        throw new InputError(`Invalid checkpoint: layer '${layerName}' in its scope is not in the expansion schedule [${this.schedule.order.join(', ')}].`);
      }
    }
    for (const layerName of state.scope) {
      if (!this.#scope.includes(layerName)) {
        this.#addToScope(layerName);
      }
    }
    // Every shape is checked before any value is assigned, so that a bad checkpoint changes no weight.
    const assignments: [tf.Variable, VariableState][] = [];
    for (const [layerName, variables] of Object.entries(state.adapters)) {
      const adapter = this.#adapters.get(layerName);
      if (adapter === undefined || adapter.variables.length !== variables.length) {
        throw new InputError(`Invalid checkpoint: the adapter of layer '${layerName}' does not match this runner's config.`);
      }
      adapter.variables.forEach((variable, index) => {
        const saved = variables[index] as VariableState;
        if (saved.shape.join(',') !== variable.shape.join(',') || saved.values.length !== variable.size) {
          throw new InputError(
            `Invalid checkpoint: adapter variable ${index} of layer '${layerName}' has shape [${saved.shape.join(', ')}], expected [${variable.shape.join(', ')}].`,
          );
        }
        assignments.push([variable, saved]);
      });
    }
    if (state.memory !== undefined) {
      if (this.#memory === undefined) {
        throw new InputError('Invalid checkpoint: it contains a sample memory, but this runner has memory_size 0; set memory_size as the checkpointed run did.');
      }
      this.#memory.importState(state.memory, this.backbone.inputShape, this.backbone.numClasses);
      this.#memoryActivations.clear();
    } else if (this.#memory !== undefined && state.records.length > 0) {
      throw new InputError(
        `Invalid checkpoint: it has no sample memory after ${state.records.length} batches, but this runner has memory_size ${this.config.memorySize}. ` +
          'A run with a memory always saves it, so the checkpoint is damaged or comes from a run with memory_size 0; start again, or set memory_size as that run did.',
      );
    }
    for (const [variable, saved] of assignments) {
      tf.tidy(() => variable.assign(tf.tensor(saved.values as number[], [...saved.shape], 'float32')));
    }
    this.#records.splice(0, this.#records.length, ...state.records);
    this.#samplesSeen = state.samplesSeen;
  }

  /** Releases every adapter, the sample memory and Adam's constants; the backbone belongs to the caller. */
  dispose(): void {
    this.#memory?.dispose();
    this.#memoryActivations.clear();
    this.#adamConstants?.dispose();
    this.#adamConstants = undefined;
    for (const adapter of this.#adapters.values()) {
      adapter.dispose();
    }
    this.#adapters.clear();
    this.#scope = [];
  }

  #resetDue(step: number, batch: tf.Tensor): boolean {
    switch (this.config.reset) {
      case 'on_drift':
        // Fresh adapters predict as the frozen model does, so only adapters that kept an update can drift.
        return this.#keptUpdateSinceReset() && !withinAnchorBounds(this.#sourceDivergence(batch), this.config);
      case 'episodic':
        return step > 0;
      case 'periodic':
        return step > 0 && step % this.config.resetEvery === 0;
      case 'on_collapse':
        return this.#collapseDetected;
      case 'none':
        return false;
    }
  }

  // Returns whether a batch accepted an update since the last reset, reading the records from the newest back.
  // After a resetAdapters call from outside the loop it may return true, which costs one check that passes.
  #keptUpdateSinceReset(): boolean {
    for (let index = this.#records.length - 1; index >= 0; index--) {
      const record = this.#records[index] as RunRecord;
      if (record.action === 'accept') {
        return true;
      }
      if (record.reset) {
        return false;
      }
    }
    return false;
  }

  // Keeps an exponential moving average (weight 0.1 per batch) of the adapted model's mean softmax. A running
  // mean whose entropy falls below collapse_threshold * ln(classes) means the predictions pile onto few classes.
  #trackCollapse(batch: tf.Tensor): void {
    const mean = tf.tidy(() => tf.softmax(this.#adaptedOutput(batch).logits).mean(0).dataSync() as Float32Array);
    const running = this.#meanPrediction ?? mean.slice();
    let entropy = 0;
    for (let index = 0; index < running.length; index++) {
      const value = 0.9 * (running[index] as number) + 0.1 * (mean[index] as number);
      running[index] = value;
      entropy -= value > 0 ? value * Math.log(value) : 0;
    }
    this.#meanPrediction = running;
    this.#collapseDetected = entropy < this.config.collapseThreshold * Math.log(running.length);
  }

  // Adds the batch to the sample memory, filed under the frozen model's classes, and returns the memory's
  // contents; without a memory, returns the batch.
  #remember(batch: tf.Tensor): tf.Tensor {
    if (this.#memory === undefined) {
      return batch;
    }
    const warning = smallMemoryWarning(this.#memory.capacity, batch.shape[0] ?? 0);
    if (warning !== undefined && !this.#warnedSmallMemory) {
      this.#warnedSmallMemory = true;
      this.#logger.warn(warning);
    }
    const classes = tf.tidy(() => this.#frozenLogits(batch).argMax(1));
    const labels = classes.dataSync();
    classes.dispose();
    const update = this.#memory.add(batch, labels);
    this.#memoryActivations.update(update.sources, update.previousCount);
    this.#stepBatch = batch;
    return this.#memory.samples ?? batch;
  }

  // Splits off the last holdout_fraction of the batch (at least one sample) for judging only. A batch of one
  // sample cannot be split, so it is trained and judged on whole.
  #splitBatch(batch: tf.Tensor): BatchSplit {
    const size = batch.shape[0] ?? 0;
    const heldCount = Math.floor(size * this.config.holdoutFraction);
    if (this.config.holdoutFraction === 0 || size < 2) {
      return { train: batch };
    }
    const held = Math.min(Math.max(heldCount, 1), size - 1);
    return { train: batch.slice(0, size - held), heldOut: batch.slice(size - held) };
  }

  // Measures the divergence on the batch of the current step, because the frozen log-softmax is cached per step.
  #sourceDivergence(batch: tf.Tensor): SourceDivergence {
    this.#frozenLogProbabilities ??= tf.keep(tf.tidy(() => tf.logSoftmax(this.#frozenLogits(batch))));
    const frozen = this.#frozenLogProbabilities;
    return tf.tidy(() => {
      const adapted = tf.logSoftmax(this.#adaptedOutput(batch).logits);
      const agreement = frozen.argMax(1).equal(adapted.argMax(1)).cast('float32').mean();
      const kl = frozen.exp().mul(frozen.sub(adapted)).sum(1).mean();
      // One read for both numbers.
      const [agreementValue, klValue] = tf.stack([agreement, kl]).dataSync();
      return { agreement: agreementValue ?? Number.NaN, kl: klValue ?? Number.NaN };
    });
  }

  #attempt(split: BatchSplit, batch: tf.Tensor, step: number, attempt: number): AttemptResult {
    const scope = [...this.#scope];
    const variables = this.scopeVariables();
    const snapshot = variables.map((variable) => tf.keep(variable.clone()));
    const restore = (): void => {
      variables.forEach((variable, index) => variable.assign(snapshot[index] as tf.Tensor));
    };
    let optimizer: AttemptAdam | undefined;

    const train = split.train;
    try {
      // The frozen layers are traced before the gradient tape starts, which would otherwise copy their inputs.
      this.#adaptedStart(train);
      const heldOutBefore = split.heldOut === undefined ? undefined : this.#measure(split.heldOut);

      this.#adamConstants ??= new AdamConstants(this.config.lr);
      optimizer = new AttemptAdam(this.#adamConstants);
      let metricBefore = Number.NaN;
      let gradientSteps = 0;
      for (let index = 0; index < this.config.numSteps; index++) {
        // The first step's forward pass runs at the snapshot weights on the same data, so the proxy value it
        // computes is the metric before the update, and no separate forward pass is needed for it.
        let metric: tf.Scalar | undefined;
        const keepMetric = (value: tf.Scalar): void => {
          metric = tf.keep(value);
        };
        const onMetric = index === 0 ? keepMetric : undefined;
        const loss = optimizer.minimize(() => this.#loss(train, variables, snapshot, onMetric), variables);
        gradientSteps++;
        if (metric !== undefined) {
          metricBefore = metric.dataSync()[0] ?? Number.NaN;
          metric.dispose();
          if (!Number.isFinite(metricBefore)) {
            loss.dispose();
            restore();
            // No update was kept and the batch gives no evidence, as when the metric is measured before any step.
            return this.#reject(scope, metricBefore, Number.NaN, 'non_finite', 0);
          }
        }
        const lossValue = loss.dataSync()[0] ?? Number.NaN;
        loss.dispose();
        if (!Number.isFinite(lossValue)) {
          restore();
          return this.#reject(scope, metricBefore, Number.NaN, 'non_finite', gradientSteps);
        }
      }

      const metricAfter = this.#measure(train);
      let heldOut: HeldOutMetrics | undefined;
      if (split.heldOut !== undefined && heldOutBefore !== undefined) {
        heldOut = { metricBefore: heldOutBefore, metricAfter: this.#measure(split.heldOut) };
      }
      const heldOutFinite = heldOut === undefined || (Number.isFinite(heldOut.metricBefore) && Number.isFinite(heldOut.metricAfter));
      if (!Number.isFinite(metricAfter) || !heldOutFinite) {
        restore();
        return this.#reject(scope, metricBefore, metricAfter, 'non_finite', gradientSteps, heldOut);
      }

      let divergence: SourceDivergence | undefined;
      const sourceDivergence = (): SourceDivergence => {
        divergence ??= this.#sourceDivergence(batch);
        return divergence;
      };
      const evidence = heldOut === undefined
        ? { metricBefore, metricAfter, step, attempt, sourceDivergence }
        : { metricBefore, metricAfter, step, attempt, heldOut, sourceDivergence };
      const decision = this.#decide(evidence);
      if (!decision.accept) {
        restore();
        return this.#reject(scope, metricBefore, metricAfter, decision.reason ?? 'no_improvement', gradientSteps, heldOut);
      }
      return {
        record: { scope, metric_before: metricBefore, metric_after: metricAfter, accepted: true, reject_reason: null, ...heldOutFields(heldOut) },
        gradientSteps,
      };
    } catch (error) {
      // Whatever threw (a plugin, a kernel), the adapters go back to the snapshot before the error leaves.
      restore();
      throw error;
    } finally {
      optimizer?.dispose();
      tf.dispose(snapshot);
    }
  }

  // Returns the frozen activations of a tensor of this step, or undefined when the backbone cannot trace and run from a layer.
  #trace(batch: tf.Tensor): FrozenTrace | undefined {
    const { traceFrozen, forwardFrom } = this.backbone;
    if (traceFrozen === undefined || forwardFrom === undefined) {
      return undefined;
    }
    let trace = this.#traces.get(batch);
    if (trace === undefined) {
      const stepBatch = this.#stepBatch;
      const compute = (): FrozenTrace => traceFrozen.call(this.backbone, batch);
      if (stepBatch !== undefined && stepBatch !== batch && batch === this.#memory?.samples) {
        // The memory's samples take their frozen activations from the batch's trace and the previous steps.
        const batchTrace = this.#trace(stepBatch) as FrozenTrace;
        trace = this.#memoryActivations.trace(batchTrace, compute, this.backbone.layers.length - 1);
      } else {
        trace = compute();
      }
      this.#traces.set(batch, trace);
    }
    return trace;
  }

  // Runs the adapted model on a tensor of this step. Layers below the lowest adapter and that layer's frozen
  // product come from the trace, because no adapter changes them; the result equals forward bitwise. A decoder
  // runs only for a proxy that declares requiresDecoder.
  #adaptedOutput(batch: tf.Tensor, options: ForwardOptions = LOGITS_ONLY): BackboneOutput {
    const start = this.#adaptedStart(batch);
    if (start === undefined || this.backbone.forwardFrom === undefined) {
      return this.backbone.forward(batch, this.#adapters, options);
    }
    return this.backbone.forwardFrom(start.activations.input, start.layerIndex, this.#adapters, start.activations.frozenOutput, options);
  }

  // Returns the lowest layer with an adapter and its frozen activations from the trace, computing them on the first call.
  #adaptedStart(batch: tf.Tensor): { readonly layerIndex: number; readonly activations: FrozenLayerActivations } | undefined {
    const trace = this.#trace(batch);
    const indices = [...this.#adapters.keys()].map((name) => this.backbone.layers.findIndex((layer) => layer.name === name));
    if (trace === undefined || indices.length === 0) {
      return undefined;
    }
    const layerIndex = Math.min(...indices);
    return { layerIndex, activations: trace.layer(layerIndex) };
  }

  #adaptedLogits(batch: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => this.#adaptedOutput(batch).logits);
  }

  // Returns the frozen model's logits on a tensor of this step. Call it inside tf.tidy: the trace owns its logits,
  // and without a trace the tidy disposes the new ones.
  #frozenLogits(batch: tf.Tensor): tf.Tensor2D {
    return this.#trace(batch)?.logits() ?? this.backbone.forward(batch, NO_ADAPTERS, LOGITS_ONLY).logits;
  }

  #reject(
    scope: readonly string[],
    metricBefore: number,
    metricAfter: number,
    reason: RejectReason,
    gradientSteps: number,
    heldOut?: HeldOutMetrics,
  ): AttemptResult {
    return {
      record: {
        scope,
        metric_before: finiteOrNull(metricBefore),
        metric_after: finiteOrNull(metricAfter),
        accepted: false,
        reject_reason: reason,
        ...heldOutFields(heldOut),
      },
      gradientSteps,
    };
  }

  #measure(batch: tf.Tensor): number {
    const metric = tf.tidy(() => this.#proxyValue(batch));
    const value = metric.dataSync()[0] ?? Number.NaN;
    metric.dispose();
    return value;
  }

  // Returns the proxy metric plus the trust-region penalty, and passes the metric alone to `onMetric`.
  #loss(
    batch: tf.Tensor,
    variables: readonly tf.Variable[],
    snapshot: readonly tf.Tensor[],
    onMetric?: (metric: tf.Scalar) => void,
  ): tf.Scalar {
    const metric = this.#proxyValue(batch);
    onMetric?.(metric);
    if (variables.length === 0 || this.config.trustRegionLambda === 0) {
      return metric;
    }
    const squares = variables.map((variable, index) => {
      const offset = this.config.trustRegion === 'from_snapshot' ? variable.sub(snapshot[index] as tf.Tensor) : variable;
      return offset.square().sum();
    });
    return metric.add(tf.addN(squares).mul(this.config.trustRegionLambda));
  }

  #proxyValue(batch: tf.Tensor): tf.Scalar {
    const output = this.#adaptedOutput(batch, { reconstruction: this.proxy.requiresDecoder });
    const inputs = { input: batch, output: this.#guardReconstruction(output) };
    try {
      return this.proxy.compute(inputs);
    } catch (error) {
      throw pluginFailure('proxy', this.proxy.name, error);
    }
  }

  // For a proxy that did not declare requiresDecoder, reading the reconstruction raises an error that names the
  // fix, in place of an undefined value the proxy might not expect.
  #guardReconstruction(output: BackboneOutput): BackboneOutput {
    if (this.proxy.requiresDecoder) {
      return output;
    }
    const name = this.proxy.name;
    return {
      logits: output.logits,
      get reconstruction(): tf.Tensor {
        throw new PluginFailureError(
          name,
          `The proxy plugin '${name}' read output.reconstruction, but it declares requiresDecoder: false, so the loop did not request one; ` +
            'set requiresDecoder to true, which also needs a backbone with a decoder head.',
        );
      },
    };
  }

  #decide(evidence: Parameters<AcceptancePolicy['decide']>[0]): GateDecision {
    try {
      return this.policy.decide(evidence);
    } catch (error) {
      throw pluginFailure('policy', this.policy.name, error);
    }
  }

  #addToScope(layerName: string): void {
    const layerIndex = this.backbone.layers.findIndex((layer) => layer.name === layerName);
    const layer = this.backbone.layers[layerIndex];
    if (layer === undefined) {
      throw unknownLayer(layerName, this.backbone);
    }
    if (!this.#adapters.has(layerName)) {
      // Each layer gets its own seed, so that the adapter of a layer does not depend on the order of expansion.
      const adapter = this.adapterFactory.create(layer, { seed: this.config.seed * 1000 + layerIndex });
      this.#adapters.set(layerName, adapter);
    }
    this.#scope.push(layerName);
  }

  #checkSchedule(): void {
    for (const layerName of this.schedule.order) {
      if (!this.backbone.layers.some((layer) => layer.name === layerName)) {
        throw unknownLayer(layerName, this.backbone);
      }
    }
  }

  // Builds and drops an adapter for every scheduled layer, so that a setting no layer can take (a LoRA rank
  // above a layer's dimensions, say) fails when the runner is built rather than when the scope reaches it.
  #checkAdapters(): void {
    for (const layerName of this.schedule.order) {
      const layer = this.backbone.layers.find((candidate) => candidate.name === layerName);
      if (layer !== undefined) {
        this.adapterFactory.create(layer, { seed: this.config.seed }).dispose();
      }
    }
  }

  #checkBatch(batch: tf.Tensor, labels: ArrayLike<number> | undefined): void {
    const expected = [-1, ...this.backbone.inputShape];
    const shape = `[${batch.shape.join(', ')}]`;
    const wanted = `[batch, ${this.backbone.inputShape.join(', ')}]`;
    if (batch.rank !== expected.length) {
      throw new InputError(
        `Invalid batch: expected rank ${expected.length} with shape ${wanted} for the ${this.backbone.kind} backbone, got rank ${batch.rank} with shape ${shape}.`,
      );
    }
    for (let axis = 1; axis < expected.length; axis++) {
      if (batch.shape[axis] !== expected[axis]) {
        throw new InputError(`Invalid batch: expected shape ${wanted}, got ${shape}; axis ${axis} differs.`);
      }
    }
    const size = batch.shape[0] ?? 0;
    if (size === 0) {
      throw new InputError(`Invalid batch: it is empty (shape ${shape}); pass at least one sample.`);
    }
    if (labels !== undefined && labels.length !== size) {
      throw new InputError(`Invalid labels: ${labels.length} labels for a batch of ${size} samples; pass one label per sample.`);
    }
  }
}

function unknownLayer(layerName: string, backbone: Backbone): ConfigError {
  const valid = backbone.layers.map((layer) => layer.name).join(', ');
  return new ConfigError(
    'expansion_schedule',
    `Invalid value for 'expansion_schedule': the ${backbone.kind} backbone has no layer '${layerName}'. Valid layers: ${valid}.`,
  );
}

function pluginFailure(kind: string, name: string, error: unknown): SafeMetaNetError {
  if (error instanceof SafeMetaNetError) {
    return error;
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new PluginFailureError(name, `The ${kind} plugin '${name}' failed: ${reason}`, { cause: error });
}

/** Returns the share of rows whose highest logit is at the label's index. */
export function accuracyOf(logits: tf.Tensor2D, labels: ArrayLike<number>): number {
  const predicted = tf.tidy(() => logits.argMax(1).dataSync());
  let correct = 0;
  for (let index = 0; index < predicted.length; index++) {
    if (predicted[index] === labels[index]) {
      correct++;
    }
  }
  return predicted.length === 0 ? 0 : correct / predicted.length;
}

function formatMetric(value: number | null): string {
  return value === null ? 'non-finite' : value.toFixed(4);
}

/** Formats a record as one log line: action, metric before and after, scope, expansion. */
export function describeRecord(record: RunRecord, metricName: string): string {
  const parts = [
    record.reset ? `step ${record.step} (after a reset)` : `step ${record.step}`,
    record.action === 'accept' ? 'accept' : `reject (${record.reject_reason ?? 'no_improvement'})`,
    `${metricName} ${formatMetric(record.metric_before)} -> ${formatMetric(record.metric_after)}`,
    `scope [${record.scope.join(', ')}]`,
    `expanded ${record.scope_expanded}`,
    `attempts ${record.attempts}`,
  ];
  if (record.accuracy !== undefined && record.source_accuracy !== undefined) {
    parts.push(`accuracy ${(record.accuracy * 100).toFixed(1)}% (frozen ${(record.source_accuracy * 100).toFixed(1)}%)`);
  }
  return parts.join(' | ');
}
