import { effectivePluginNames, toSnakeCase, type RunSummary, type SafeMetaNetConfig } from '@safe-metanet/core';

/** Formats the config as the header of a run: one `key: value` line per setting. */
export function formatHeader(title: string, config: SafeMetaNetConfig, extras: Record<string, unknown> = {}): string {
  const names = effectivePluginNames(config);
  const settings: Record<string, unknown> = { ...toSnakeCase(config), ...extras };
  const lines = [`${title}`, `  plugins: backbone=${names.backbone} adapter=${names.adapter} proxy=${names.proxy} policy=${names.policy} expansion=${names.expansion}`];
  for (const [key, value] of Object.entries(settings)) {
    lines.push(`  ${key}: ${Array.isArray(value) ? `[${value.join(', ')}]` : String(value)}`);
  }
  return `${lines.join('\n')}\n`;
}

function percent(value: number | undefined): string {
  return value === undefined ? 'n/a' : `${(value * 100).toFixed(2)}%`;
}

function metric(value: number | null): string {
  return value === null ? 'non-finite' : value.toFixed(4);
}

/** Formats a run summary as a short block of lines. */
export function formatSummary(summary: RunSummary, metricName: string): string {
  const lines = [
    'Summary',
    `  steps: ${summary.total_steps} (accepted ${summary.accepted}, rejected ${summary.rejected}, expanded ${summary.expanded}, non-finite ${summary.non_finite}, resets ${summary.resets})`,
    `  ${metricName}: first ${metric(summary.first_metric)}, last ${metric(summary.last_metric)}`,
    `  final scope: [${summary.final_scope.join(', ')}]`,
  ];
  if (summary.adapted_accuracy !== undefined) {
    lines.push(`  accuracy: adapted ${percent(summary.adapted_accuracy)}, frozen source ${percent(summary.source_accuracy)}`);
  }
  return `${lines.join('\n')}\n`;
}
