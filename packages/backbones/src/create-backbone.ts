import { ConfigError } from '@safe-metanet/core';

import type { BackboneOptions, BackboneSettings } from './backbone-settings.js';
import { CnnBackbone } from './cnn-backbone.js';
import type { FrozenBackbone } from './frozen-backbone.js';
import { MlpBackbone } from './mlp-backbone.js';

/** Config names of the backbones this package builds. */
export const BACKBONE_KINDS = ['mlp', 'cnn'] as const;

/** Builds the backbone that `settings.backbone` names, with freshly initialised frozen weights. */
export function createBackbone(settings: BackboneSettings, options: BackboneOptions = {}): FrozenBackbone {
  switch (settings.backbone) {
    case 'mlp':
      return new MlpBackbone(settings, options);
    case 'cnn':
      return new CnnBackbone(settings, options);
    default:
      throw new ConfigError(
        'backbone',
        `Invalid value for 'backbone': '${settings.backbone}'; allowed: ${BACKBONE_KINDS.join(', ')}. ` +
          "Backbones of other plugin packages are built through the container (buildSafeMetaNet).",
      );
  }
}
