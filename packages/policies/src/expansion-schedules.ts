import { inject, injectable } from 'inversify';

import { ConfigId, type ExpansionSchedule, type SafeMetaNetConfig } from '@safe-metanet/core';

/** Adds the next layer of `expansion_schedule` after each rejection until the list is exhausted. */
@injectable()
export class LayerByLayerSchedule implements ExpansionSchedule {
  readonly name = 'layer_by_layer';
  readonly order: readonly string[];

  constructor(@inject(ConfigId) config: SafeMetaNetConfig) {
    this.order = [...config.expansionSchedule];
  }

  next(scope: readonly string[]): string | undefined {
    return this.order.find((layer) => !scope.includes(layer));
  }
}

/** Keeps the scope at the first layer of `expansion_schedule`: the no-expansion ablation. */
@injectable()
export class FixedSchedule implements ExpansionSchedule {
  readonly name = 'fixed';
  readonly order: readonly string[];

  constructor(@inject(ConfigId) config: SafeMetaNetConfig) {
    this.order = config.expansionSchedule.slice(0, 1);
  }

  next(): undefined {
    return undefined;
  }
}
