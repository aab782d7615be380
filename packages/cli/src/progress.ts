/** Shows a one-line progress bar on a terminal; does nothing when standard error is not a TTY. */
export class ProgressBar {
  readonly #label: string;
  readonly #total: number;
  readonly #enabled: boolean;
  #lastDrawn = 0;

  constructor(label: string, total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#label = label;
    this.#total = Math.max(total, 1);
    this.#enabled = stream.isTTY === true && process.env['CI'] === undefined;
  }

  /** Redraws the bar at `done` of `total`, at most every 100 ms; `detail` follows the percentage. */
  update(done: number, detail = ''): void {
    if (!this.#enabled) {
      return;
    }
    const now = Date.now();
    if (now - this.#lastDrawn < 100 && done < this.#total) {
      return;
    }
    this.#lastDrawn = now;
    const width = 30;
    const share = Math.min(done / this.#total, 1);
    const filled = Math.round(share * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    process.stderr.write(`\r${this.#label} [${bar}] ${(share * 100).toFixed(0).padStart(3)}% ${detail}\u001b[K`);
  }

  /** Clears the bar's line. */
  finish(): void {
    if (this.#enabled) {
      process.stderr.write('\r\u001b[K');
    }
  }
}
