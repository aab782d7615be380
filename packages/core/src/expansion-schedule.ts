/** The order in which layers join the editable scope. */
export interface ExpansionSchedule {
  /** Config name (`expansion`). */
  readonly name: string;
  /** Layers in the order they may join the scope; the first one is the initial scope. */
  readonly order: readonly string[];
  /** Returns the next layer to add after a rejection, or undefined when the scope may not grow. */
  next(scope: readonly string[]): string | undefined;
}
