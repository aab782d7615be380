/**
 * Registers the kernels that the wasm backend of tfjs 4.22.0 lacks or gets wrong:
 * Conv2DBackpropFilter (missing) and MaxPoolGrad (drops windows whose maximum is at most 0).
 */
export function registerWasmKernels(): void {
  // TODO: implement
}
