import type { ContainerModule } from 'inversify';

import { adaptersModule } from '@safe-metanet/adapters';
import { backbonesModule } from '@safe-metanet/backbones';
import { policiesModule } from '@safe-metanet/policies';
import { proxiesModule } from '@safe-metanet/proxies';

/** Returns the container modules of the standard plugin packages. */
export function standardModules(): ContainerModule[] {
  return [backbonesModule, adaptersModule, proxiesModule, policiesModule];
}
