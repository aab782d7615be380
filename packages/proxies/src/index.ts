export { EntropyProxy } from './entropy-proxy.js';
export { InfoMaxProxy } from './infomax-proxy.js';
export { proxiesModule } from './proxies-module.js';
export { ReconstructionProxy } from './reconstruction-proxy.js';
